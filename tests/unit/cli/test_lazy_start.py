"""`tzurot --help` loads no gRPC, protobuf, structlog or SQLAlchemy: it starts in well under a
second (figures: bench `cli_start`). The CLI speaks CLI, not Discord."""

import subprocess
import sys

import pytest

from tzurot.cli.speech import cli_text

HEAVY = (
    "rich",
    "grpc",
    "google.protobuf",
    "structlog",
    "sqlalchemy",
    "tzurot.v1",
    "tzurot.runtime.server",
)

PROBE = """
import sys
from tzurot.cli.__main__ import app
try:
    app({args!r})
except SystemExit:
    pass
print("LOADED", " ".join(m for m in {heavy!r} if m in sys.modules))
"""


def _loaded(args: list[str]) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=args, heavy=HEAVY)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("LOADED"))
    return line.split()[1:]


@pytest.mark.parametrize("args", [["--help"], ["wallet", "--help"], ["chat", "--help"]])
def test_help_loads_nothing_heavy(args: list[str]) -> None:
    assert _loaded(args) == []


def test_discord_advice_reads_as_cli_commands() -> None:
    message = "no API key for openrouter; add one with /wallet set openrouter"
    assert cli_text(message) == (
        "no API key for openrouter; add one with tzurot wallet set openrouter"
    )
    assert cli_text("see https://x.y/wallet set") == "see https://x.y/wallet set"
    assert cli_text("/character create is Discord-only") == "/character create is Discord-only"
