"""`tzurot --help` loads no gRPC, protobuf, pydantic, structlog or SQLAlchemy, and `tzurot chat
-m` only what a turn needs (gRPC and the stubs; no pydantic, structlog, rich, openai,
cryptography): they
start in well under a second (figures: bench `cli_start`, docs/PERFORMANCE.md). What is
asserted is the set of modules loaded, not a time. The CLI speaks CLI, not Discord."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tzurot.cli.speech import cli_text
from tzurot.runtime.tls import generate_dev_pki
from tzurot.testing.processes import free_port

HEAVY = (
    "rich",
    "grpc",
    "google.protobuf",
    "structlog",
    "sqlalchemy",
    "tzurot.v1",
    "tzurot.runtime.server",
    "pydantic",
    "pydantic_settings",
    "openai",
    "discord",
)
CHAT_HEAVY = (
    "pydantic",
    "pydantic_settings",
    "structlog",
    "rich",
    "openai",
    "sqlalchemy",
    "discord",
    "yaml",
    "cryptography",  # certificates are loaded with the standard library's ssl
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


def _loaded(
    args: list[str], heavy: tuple[str, ...] = HEAVY, env: dict[str, str] | None = None
) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=args, heavy=heavy)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=env,
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("LOADED"))
    return line.split()[1:]


@pytest.mark.parametrize("args", [["--help"], ["wallet", "--help"], ["chat", "--help"]])
def test_help_loads_nothing_heavy(args: list[str]) -> None:
    assert _loaded(args) == []


def test_chat_message_loads_only_what_a_turn_needs(tmp_path: Path) -> None:
    """A whole `tzurot chat lilith -m hi` (here against a port nothing listens on, so it ends
    UNAVAILABLE once the TLS channel has tried): settings, typer's option parsing, the gRPC
    channel and the call load none of `CHAT_HEAVY`."""
    generate_dev_pki(tmp_path, ["gateway", "cli"])
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TZUROT_")},
        "TZUROT_GATEWAY_ADDR": f"127.0.0.1:{free_port()}",
        "TZUROT_CLI_TLS_DIR": str(tmp_path / "cli"),
    }
    assert _loaded(["chat", "lilith", "-m", "hi"], CHAT_HEAVY, env) == []
    # The probe really went as far as the call.
    assert "grpc" in _loaded(["chat", "lilith", "-m", "hi"], ("grpc", "tzurot.v1"), env)


def test_discord_advice_reads_as_cli_commands() -> None:
    message = "no API key for openrouter; add one with /wallet set openrouter"
    assert cli_text(message) == (
        "no API key for openrouter; add one with tzurot wallet set openrouter"
    )
    assert cli_text("see https://x.y/wallet set") == "see https://x.y/wallet set"
    assert cli_text("/character create is Discord-only") == "/character create is Discord-only"
