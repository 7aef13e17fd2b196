"""The `tzurot` console script: a Ctrl-C while the CLI still loads ends it quietly.

The command line (`__main__`) imports typer and its own modules first, a tenth of a second or
more; a Ctrl-C then was Python's KeyboardInterrupt traceback. Here the import runs inside a
handler and ends as a Ctrl-C does once the command runs: nothing printed, exit 130 (typer,
`_guarded`), 0 for `up` (stopping is what Ctrl-C is for there). This module imports nothing
itself, so the start costs what it did.
"""

from __future__ import annotations

import sys

EXIT_INTERRUPTED = 130
"""Ctrl-C (speech.EXIT_INTERRUPTED; that module is not loaded this early)."""


def main() -> int:
    try:
        from tzurot.cli.__main__ import main as cli_main  # noqa: PLC0415 - the point of this module

        cli_main()
    except KeyboardInterrupt:
        return 0 if sys.argv[1:2] == ["up"] else EXIT_INTERRUPTED
    return 0
