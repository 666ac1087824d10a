"""Coverage-guided fuzzing of rawpacer's parsers with atheris (libFuzzer): only ValueError may escape.

Run by tests/unit/test_fuzz.py with a bounded number of inputs; by hand, for longer:
    .venv/bin/python tests/unit/fuzz_parsers.py -max_total_time=300 /tmp/corpus tests/unit/corpus/parse
(the first directory collects new inputs; the committed seed corpus stays small). The seeds cover
IPv4, IPv6 (with and without the Fragment header) and 802.1Q-tagged frames.
"""

import sys

import atheris

with atheris.instrument_imports():
    from rawpacer import headers


def one_input(data: bytes) -> None:
    """Every parser, and reassembly from the table-built headers, on the same bytes: a result or a
    ValueError, never anything else."""
    for parse in (headers.parse_frame, headers.parse_packet):
        try:
            parse(data)
        except ValueError:
            pass
    for ethernet in (True, False):
        for read in (headers.parse_fragment, lambda d, ethernet: headers.reassemble([d], ethernet=ethernet)):
            try:
                read(data, ethernet=ethernet)
            except ValueError:
                pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
