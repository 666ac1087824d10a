"""DUT setup scripts: commands read one a line (blanks and # comments skipped), {in}/{out} replaced
shell-quoted, the plan apply() runs in order, and every unreadable or empty script refused in one line."""

from __future__ import annotations

import pytest

from rawpacer.dut import parse_profiles, read_script, script_lines
from rawpacer.dut.apply import Step, steps
from rawpacer.dut.script import render
from rawpacer.errors import UsageError

SCRIPT = """\
# shape the egress, then look

tc qdisc replace dev {out} root pfifo limit 10
   ip link set {in} mtu 1400   # the writer's side
tc -s qdisc show dev {out} | head -1
"""


COMMANDS = (
    "tc qdisc replace dev {out} root pfifo limit 10",
    "ip link set {in} mtu 1400   # the writer's side",
    "tc -s qdisc show dev {out} | head -1",
)


def test_a_script_is_its_command_lines(tmp_path):
    path = tmp_path / "setup.sh"
    path.write_text(SCRIPT)
    assert read_script(str(path)) == COMMANDS


def test_lines_from_python_read_as_a_script_does():
    assert script_lines(SCRIPT.splitlines()) == script_lines([SCRIPT]) == COMMANDS


def test_placeholders_become_the_interfaces_shell_quoted():
    assert render("tc qdisc show dev {out}; ip link show {in}", "rpd0", "rpd1") == (
        "tc qdisc show dev rpd1; ip link show rpd0"
    )
    assert render("echo {out}", "rpd0", "odd name") == "echo 'odd name'"


def test_other_braces_stay():
    assert render("awk '{print $1}' /proc/net/dev", "rpd0", "rpd1") == "awk '{print $1}' /proc/net/dev"


def test_the_plan_runs_profiles_as_argv_then_script_lines_through_sh():
    plan = steps("rpd0", "rpd1", parse_profiles(["tbf:20mbit", "drop:0.5"]), ["tc qdisc show dev {out} | cat"])
    assert [step.line for step in plan] == [
        "tc qdisc replace dev rpd1 root tbf rate 20mbit burst 32768 latency 20ms",
        "nft -f /dev/stdin < ruleset of 1 rule",
        "tc qdisc show dev rpd1 | cat",
    ]
    assert plan[0].argv[:2] == ("tc", "qdisc") and plan[0].stdin is None
    assert plan[1].argv == ("nft", "-f", "/dev/stdin") and plan[1].stdin and "rawpacer drop" in plan[1].stdin
    assert plan[2] == Step("tc qdisc show dev rpd1 | cat", ("sh", "-c", "tc qdisc show dev rpd1 | cat"))


def test_nothing_to_run_is_an_empty_plan():
    assert steps("rpd0", "rpd1", (), ()) == []


def test_a_missing_script_is_one_line(tmp_path):
    path = tmp_path / "nope.sh"
    with pytest.raises(UsageError, match=rf"^DUT setup script '{path}' cannot be read: No such file or directory$"):
        read_script(str(path))


def test_a_directory_is_not_a_script(tmp_path):
    with pytest.raises(UsageError, match="is a directory; give a file with one command a line$"):
        read_script(str(tmp_path))


def test_a_binary_file_is_not_a_script(tmp_path):
    path = tmp_path / "blob"
    path.write_bytes(b"\xff\xfe\x00tc")
    with pytest.raises(UsageError, match="is not UTF-8 text"):
        read_script(str(path))


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n   # and another\n"])
def test_a_script_without_commands_is_refused(tmp_path, text):
    path = tmp_path / "empty.sh"
    path.write_text(text)
    with pytest.raises(UsageError, match=r"has no command \(only blank lines and # comments\)$"):
        read_script(str(path))


def test_lines_without_commands_are_refused():
    with pytest.raises(UsageError, match="hold no command"):
        script_lines(["", "# nothing"])


def test_lines_must_be_a_list_of_text():
    with pytest.raises(UsageError, match="not one string"):
        script_lines("tc qdisc show")
    with pytest.raises(UsageError, match="is not text"):
        script_lines(["true", 3])  # type: ignore[list-item]
