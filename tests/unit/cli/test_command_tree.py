"""The `tzurot` command tree: every command and group, in the order help lists them.

The commands live in modules by job (`up_command`, `chat_command`, `wallet_commands`, ...);
each registers on the typer apps of `cli_app` when `__main__` imports it, so the order of those
imports is the order `tzurot --help` shows."""

from __future__ import annotations

import os
import subprocess
import sys

import typer.main

from tzurot.cli.__main__ import app

TOP = ["up", "chat", "certs", "migrate", "wallet", "keys", "import", "admin"]
GROUPS = {
    "wallet": ["set", "test", "list", "remove"],
    "keys": ["add-version", "rotate"],
    "import": ["shapes"],
}


def _listed(help_text: str) -> list[str]:
    """The command names under `Commands:` in plain (no rich) help."""
    section = help_text.split("Commands:\n", 1)[1]
    return [line.split()[0] for line in section.splitlines() if line.startswith("  ")]


def test_help_lists_every_command_in_order() -> None:
    result = subprocess.run(  # our own interpreter and module, no shell
        [sys.executable, "-m", "tzurot.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "COLUMNS": "100"},
    )
    assert _listed(result.stdout) == TOP


def test_every_group_holds_its_commands_in_order() -> None:
    root = typer.main.get_command(app)
    for name, commands in GROUPS.items():
        group = root.commands[name]  # type: ignore[attr-defined]  # a TyperGroup
        assert list(group.commands) == commands, name
