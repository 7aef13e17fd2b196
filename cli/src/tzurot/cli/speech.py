"""The CLI speaks CLI: a message written for Discord names the matching `tzurot` command.

Services word their advice for the bot (`/wallet set openrouter`); the terminal user needs
`tzurot wallet set openrouter`. Only commands the CLI has are rewritten.
"""

from __future__ import annotations

import re

_CLI_COMMANDS = ("wallet set", "wallet list", "wallet remove", "wallet test", "chat")
_SLASH = re.compile(r"(?<![\w/])/(" + "|".join(re.escape(c) for c in _CLI_COMMANDS) + r")\b")


def cli_text(message: str) -> str:
    """`message` with Discord slash commands the CLI also has written as CLI commands."""
    return _SLASH.sub(r"tzurot \1", message)
