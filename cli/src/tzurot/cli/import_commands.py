"""`tzurot import`: bring personalities in from elsewhere (a shapes.inc backup)."""

# ruff: noqa: PLC0415 - commands import their heavy modules inside their bodies, so
# `tzurot --help` and `tzurot chat -m` start fast (tests/unit/cli/test_lazy_start.py)

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from tzurot.cli.cli_app import import_app
from tzurot.cli.command_errors import _run


@import_app.command("shapes")
def import_shapes(  # noqa: PLR0917  # typer: one parameter per option
    folder: Annotated[
        Path | None, typer.Argument(help="The backup folder of one personality.")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="The configuration JSON, by path.")] = None,
    memories: Annotated[Path | None, typer.Option(help="The memory summaries JSON.")] = None,
    history: Annotated[Path | None, typer.Option(help="The chat history JSON.")] = None,
    user_map: Annotated[
        Path | None,
        typer.Option(help="JSON/YAML: shapes.inc user id -> Discord user id."),
    ] = None,
    alias: Annotated[list[str] | None, typer.Option(help="An alias (repeatable).")] = None,
    owner: Annotated[
        str, typer.Option(help="Discord id of the owner (default: TZUROT_BOT_OWNER_ID).")
    ] = "",
    dry_run: Annotated[bool, typer.Option(help="Validate and count; change nothing.")] = False,
    history_channel: Annotated[
        str,
        typer.Option(
            help="Discord channel (or thread) id whose conversation the chat history continues "
            "(default: the personality's legacy conversation, in no channel's prompt)."
        ),
    ] = "",
) -> None:
    """Import a shapes.inc backup: the personality, its settings, memories and chat history."""
    from rich.progress import Progress

    from tzurot.cli.gateway_client import GatewayClient
    from tzurot.cli.settings import CliSettings
    from tzurot.cli.shapes_import import BackupError, read_backup, read_user_map
    from tzurot.cli.shapes_import import import_shapes as run_import
    from tzurot.cli.terminal_text import one_line

    try:
        backup = read_backup(folder, config=config, memories=memories, history=history)
        mapping = read_user_map(user_map)
    except BackupError as exc:
        print(f"tzurot: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None

    async def _main() -> int:
        async with GatewayClient(CliSettings.from_env()) as client:
            with Progress(transient=False) as bar:
                task = bar.add_task("memories", total=len(backup.memories) or 1)
                chat = bar.add_task("chat history", total=len(backup.history) or 1)
                summary = await run_import(
                    client.stub,
                    backup,
                    user_map=mapping,
                    aliases=alias or [],
                    owner=owner,
                    dry_run=dry_run,
                    progress=lambda done, total: bar.update(task, completed=done, total=total or 1),
                    history_channel=history_channel,
                    history_progress=lambda done, total: bar.update(
                        chat, completed=done, total=total or 1
                    ),
                )
        verb = "Would import" if dry_run else ("Created" if summary.created else "Updated")
        # What the gateway says (the slug, settings, warnings) is printed without controls.
        print(f"{verb} personality {one_line(summary.slug)!r} (avatar: {summary.avatar}).")
        for line in summary.settings:
            print(f"  setting {one_line(line)}")
        for warning in summary.warnings:
            print(f"  warning: {one_line(warning)}")
        print(
            f"Memories: {summary.imported} {'to import' if dry_run else 'imported'}, "
            f"{summary.skipped} already there; {summary.mapped} for mapped users, "
            f"{summary.shared} to the shared scope."
        )
        if summary.split:
            print(
                f"  {summary.split} summaries longer than a memory may hold "
                f"{'would be' if dry_run else 'were'} split into {summary.split_parts} memories."
            )
        print(
            f"Chat history: {summary.history_messages} messages, {summary.history_exchanges} "
            f"exchanges {'to import' if dry_run else 'imported'}, {summary.history_skipped} "
            f"already there (conversation {one_line(summary.history_channel) or '-'})."
        )
        return 0

    raise typer.Exit(_run(_main()))
