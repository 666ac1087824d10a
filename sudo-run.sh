#!/usr/bin/env bash
# rawpacer's one entry point: set up on first use (Debian packages, .venv, the package), then run.
#   sudo ./sudo-run.sh compare [options]   the side-by-side benchmark of every writer
#   sudo ./sudo-run.sh test [pytest args]  the whole test suite
#   sudo ./sudo-run.sh notebook            JupyterLab in the project's environment
#   sudo ./sudo-run.sh WORD ...            any other rawpacer subcommand (send, rfc2544, doctor, cleanup)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        exec sudo -- "$here/sudo-run.sh" "$@"
    fi
    echo "sudo-run.sh: rawpacer needs root (raw sockets, network namespaces) and sudo is not installed: run it as root." >&2
    exit 2
fi

venv="$here/.venv"
stamp="$venv/.rawpacer-installed"
say() { printf 'sudo-run.sh: %s\n' "$*" >&2; }

# Debian packages: python3-venv for .venv, gcc and python3-dev for the small C extensions,
# iproute2 for ip(8) and tc(8), nftables for the DUT profiles (--dut police, drop, rules, conntrack),
# tcpdump to read pcaps back, golang-go for `compare --with-go`, and the
# peers the benchmarks measure rawpacer against: netsniff-ng (trafgen), iperf3, sockperf and tcpreplay.
apt_packages() {
    local missing=()
    command -v ip >/dev/null 2>&1 || missing+=(iproute2)
    command -v tcpdump >/dev/null 2>&1 || missing+=(tcpdump)
    command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || missing+=(nftables)
    command -v go >/dev/null 2>&1 || [ -x /usr/lib/go/bin/go ] || missing+=(golang-go)
    command -v trafgen >/dev/null 2>&1 || missing+=(netsniff-ng)
    command -v iperf3 >/dev/null 2>&1 || missing+=(iperf3)
    command -v sockperf >/dev/null 2>&1 || missing+=(sockperf)
    command -v tcpreplay >/dev/null 2>&1 || missing+=(tcpreplay)
    python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
    command -v cc >/dev/null 2>&1 || missing+=(gcc)
    python3 -c 'import os, sysconfig; assert os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))' \
        >/dev/null 2>&1 || missing+=(python3-dev)
    [ "${#missing[@]}" -eq 0 ] && return 0
    if ! command -v apt-get >/dev/null 2>&1; then
        say "missing ${missing[*]} and no apt-get here: install them by hand"
        return 0
    fi
    say "installing Debian packages: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# OpenSSH's server for the two-host tests (tests/system/test_remote.py start `sshd -D -f CONFIG`
# inside a namespace): only the binary is wanted, so a policy-rc.d that refuses every start
# (invoke-rc.d's protocol, exit 101) stands during the install when the host has none of its own,
# and no sshd service starts on the host.
sshd_binary() {
    command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || ! command -v apt-get >/dev/null 2>&1 && return 0
    local policy=/usr/sbin/policy-rc.d made=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made=1
    fi
    say "installing openssh-server for the two-host tests (no sshd service is started)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-server >/dev/null || true
    [ -n "$made" ] && rm -f "$policy"
    if command -v systemctl >/dev/null 2>&1; then systemctl disable --now ssh.service ssh.socket >/dev/null 2>&1 || true; fi
}

python_env() {
    local want
    want="$(find "$here/rawpacer" -name '*.[ch]' | sort | xargs cat "$here/pyproject.toml" "$here/setup.py" | sha256sum | cut -d' ' -f1)"
    if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    [ -x "$venv/bin/python" ] || { say "creating $venv"; python3 -m venv "$venv"; }
    say "installing rawpacer and its dependencies into .venv (log: .venv/install.log)"
    if ! { "$venv/bin/python" -m pip install -q --upgrade pip \
           && "$venv/bin/python" -m pip install -q -e "$here[dev]"; } >"$venv/install.log" 2>&1; then
        tail -n 20 "$venv/install.log" >&2
        say "installation failed; the whole log is in .venv/install.log"
        exit 1
    fi
    echo "$want" >"$stamp"
}

# The package's bytecode, refreshed where a source changed (0.2 s when none did). Python reads .pyc
# files even where PYTHONDONTWRITEBYTECODE stops it writing them, so every Python process a run starts
# (the CLI, a remote agent, a notebook's kernel) skips compiling rawpacer's ~180 modules: measured,
# `rawpacer send --help` took 1.30 s without them and 0.77 s with them.
bytecode() {
    "$venv/bin/python" -m compileall -q -j0 "$here/rawpacer" >/dev/null || say "could not compile rawpacer's bytecode (runs start slower)"
}

# One set-up at a time: two first runs at once must not install into the same .venv together.
exec 9>"$here/.sudo-run.lock"
flock 9
apt_packages
python_env
bytecode
flock -u 9
export PATH="$venv/bin:$PATH:/usr/lib/go/bin"
cd "$here"

cmd="${1:-}"
[ "$#" -gt 0 ] && shift
case "$cmd" in
    test)
        sshd_binary
        exec "$venv/bin/python" -m pytest "$@"
        ;;
    notebook)
        if ! "$venv/bin/python" -c 'import jupyterlab' >/dev/null 2>&1; then
            say "installing JupyterLab into .venv (log: .venv/install.log)"
            "$venv/bin/python" -m pip install -q -e "$here[dev,notebook]" >"$venv/install.log" 2>&1 \
                || { tail -n 20 "$venv/install.log" >&2; exit 1; }
        fi
        exec "$venv/bin/jupyter" lab --allow-root --no-browser --notebook-dir "$here/notebooks" "$@"
        ;;
    "")
        echo "usage: sudo ./sudo-run.sh compare|test|notebook|send|rfc2544|doctor|cleanup [options]" >&2
        exit 2
        ;;
    *)
        exec "$venv/bin/rawpacer" "$cmd" "$@"
        ;;
esac
