"""The CLI speaks CLI: a message written for Discord names the matching `tzurot` command.

Services word their advice for the bot (`/wallet set openrouter`); the terminal user needs
`tzurot wallet set openrouter`. Only commands the CLI has are rewritten.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from tzurot.cli.terminal_text import one_line

if TYPE_CHECKING:
    import grpc

CLI_COMMANDS = ("wallet set", "wallet list", "wallet remove", "wallet test", "chat")
"""The Discord commands the CLI has too (tests/unit/cli checks that each exists)."""
_SLASH = re.compile(r"(?<![\w/])/(" + "|".join(re.escape(c) for c in CLI_COMMANDS) + r")\b")

EXIT_REFUSED = 1
"""The mesh answered: it refused or failed the request (the reason is printed)."""
EXIT_USAGE = 2
"""Bad usage or local setup: an unknown option, missing certificates, a malformed setting."""
EXIT_UNREACHABLE = 3
"""The mesh could not be reached: not started (yet), another address, other certificates."""
EXIT_INTERRUPTED = 130
"""Ctrl-C."""


def cli_text(message: str) -> str:
    """`message` with Discord slash commands the CLI also has written as CLI commands."""
    return _SLASH.sub(r"tzurot \1", message)


def rpc_failure(exc: grpc.RpcError, target: str) -> tuple[str, int]:
    """One line (without the `tzurot: ` prefix) and the exit code for a failed call.

    `target` names what was called ("the gateway at 127.0.0.1:15051 (TZUROT_GATEWAY_ADDR)"):
    a call that never reached it says so, with gRPC's last error cut to its cause. What the
    mesh said is printed without terminal controls, on one line (terminal_text)."""
    from tzurot.runtime.errors import from_rpc_error, is_unreachable  # noqa: PLC0415 - on failure

    if is_unreachable(exc):
        cause = one_line(exc.details() or "")
        if "last error: UNKNOWN: " in cause:  # "...; last error: UNKNOWN: ipv4:host:port: why"
            cause = cause.rsplit("last error: UNKNOWN: ", 1)[1].split(": ", 1)[-1]
        hint = (
            "are its certificates this mesh's (TZUROT_CLI_TLS_DIR)?"
            if "handshake" in cause.lower()
            else "is the mesh up (`tzurot up`)?"
        )
        line = f"[unavailable] cannot reach {target}; {hint}"
        return (f"{line} ({cause})" if cause else line), EXIT_UNREACHABLE
    err = from_rpc_error(exc)
    return f"[{err.code.name.lower()}] {one_line(cli_text(err.message))}", EXIT_REFUSED
