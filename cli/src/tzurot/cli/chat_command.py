"""`tzurot chat`: talk to a personality through the gateway, or send one message."""

# ruff: noqa: PLC0415 - commands import their heavy modules inside their bodies, so
# `tzurot --help` and `tzurot chat -m` start fast (tests/unit/cli/test_lazy_start.py)

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from tzurot.cli.cli_app import UserOption, _settings, _user, app
from tzurot.cli.command_errors import _guarded, _run
from tzurot.cli.paths import DEFAULT_FILES_DIR


@app.command()
def chat(
    personality: Annotated[str, typer.Argument(help="Name or alias of the personality.")],
    user: UserOption = "",
    message: Annotated[
        str | None,
        typer.Option(
            "--message",
            "-m",
            help="Send one message and exit: the answer on standard output (then its footer "
            "and a `file: <path>` line per file it carries), an error as one line on standard "
            "error (exit 1; 2 when its files cannot be saved; 3 when the gateway cannot be "
            "reached).",
        ),
    ] = None,
    files_dir: Annotated[
        Path,
        typer.Option(
            help="Where the files an answer carries (generated images) are saved, made when "
            "missing; an existing file is never replaced (a numbered name is used). "
            "[default: the current folder]",
            show_default=False,
        ),
    ] = DEFAULT_FILES_DIR,
    show_reasoning: Annotated[
        bool,
        typer.Option(
            "--show-reasoning",
            help="Print the model's reasoning under each answer, if any; only shown, not kept "
            "(your keep_reasoning setting keeps it for Inspect). Needs a gateway released after "
            "0.1.0: an older one ignores the flag and sends no reasoning.",
        ),
    ] = False,
) -> None:
    """Talk to a personality through the gateway (history is kept, as in Discord).

    An answer is confirmed delivered (kept in history) only once its files are saved."""
    who = _user(user)
    if message is None:
        from tzurot.cli.chat import repl

        raise typer.Exit(
            _guarded(
                lambda: repl(
                    _settings(),
                    who,
                    personality,
                    files_dir=files_dir,
                    show_reasoning=show_reasoning,
                )
            )
        )

    from tzurot.cli.chat import stream_answer
    from tzurot.cli.gateway_client import GatewayClient

    async def _main() -> int:
        async with GatewayClient(_settings()) as client:
            await stream_answer(
                client,
                who,
                personality,
                message,
                sys.stdout,
                files_dir=files_dir,
                show_reasoning=show_reasoning,
            )
        return 0

    raise typer.Exit(_run(_main()))
