"""`tzurot chat`: talk to a personality through the gateway, as a Discord user would."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path
from typing import TextIO

import grpc

from tzurot.cli.answer_files import FilesNotSaved, save_files
from tzurot.cli.gateway_client import CliUser, GatewayClient
from tzurot.cli.paths import DEFAULT_FILES_DIR
from tzurot.cli.prompt import TerminalPrompt
from tzurot.cli.settings import CliSettings
from tzurot.cli.speech import cli_text, rpc_failure
from tzurot.cli.terminal_text import StreamFilter, one_line, printable
from tzurot.v1 import gateway_pb2 as gw


async def stream_answer(
    client: GatewayClient,
    user: CliUser,
    personality: str,
    content: str,
    out: TextIO,
    *,
    files_dir: Path = DEFAULT_FILES_DIR,
    show_reasoning: bool = False,
) -> None:
    """Streams one answer to `out`, then what it carries: a line saying it was cut at the
    model's length limit, if it was; the model's reasoning when `show_reasoning` asks for it
    (and the model gave any); its footer (a line of its own) and its files, saved into
    `files_dir` (one `file: <path>` line each). A failed (or cancelled)
    call ends the line it began and raises: its reason is the caller's to tell (on stderr,
    for `chat -m`). What the mesh sends is printed without terminal controls (terminal_text).

    The turn is confirmed delivered (kept in history) only once the files are saved: files
    that cannot be raise FilesNotSaved (its `job_id` set) and the turn is not confirmed."""
    began = False
    text = StreamFilter()  # the answer's chunks: a sequence may be cut between two
    try:
        # aclosing: a failure while the answer's files are saved closes the turn at once,
        # unconfirmed (chat_turn confirms only when asked for the event after `finished`).
        turn_events = client.chat_turn(user, personality, content, show_reasoning=show_reasoning)
        async with contextlib.aclosing(turn_events) as turn:
            async for event in turn:
                if event.HasField("accepted"):
                    out.write(f"{one_line(event.accepted.personality.display_name)}> ")
                    began = True
                elif event.HasField("chunk"):
                    out.write(text.feed(event.chunk.text))
                    began = True
                elif event.HasField("finished"):
                    out.write(f"{text.finish()}\n")
                    began = False
                    _show_carried(event.finished, out, files_dir)
                out.flush()
    except BaseException:
        if began:
            out.write("\n")
            out.flush()
        raise
    if began:  # a stream without `finished` (an older gateway's)
        out.write(f"{text.finish()}\n")


CUT_OFF_LINE = "(cut off: the model reached its length limit)"
REASONING_HEADER = "reasoning:"


def _show_carried(finished: gw.GenerationFinished, out: TextIO, files_dir: Path) -> None:
    """Under the answer: whether it was cut off, its reasoning (indented under a header),
    its footer, then each file saved and its path."""
    if finished.finish_reason == "length":
        out.write(f"{CUT_OFF_LINE}\n")
    reasoning = printable(finished.reasoning).strip()
    if reasoning:
        indented = "\n".join(f"  {line}" for line in reasoning.splitlines())
        out.write(f"{REASONING_HEADER}\n{indented}\n")
    footer = cli_text(one_line(finished.footer).strip())  # "/wallet set" as "tzurot wallet set"
    if footer:
        out.write(f"{footer}\n")

    def shown(path: Path) -> None:
        out.write(f"file: {path}\n")
        out.flush()

    try:
        save_files(finished.files, files_dir, shown)
    except FilesNotSaved as exc:
        exc.job_id = finished.job_id
        raise


async def send_message(
    client: GatewayClient,
    user: CliUser,
    personality: str,
    content: str,
    out: TextIO,
    *,
    files_dir: Path = DEFAULT_FILES_DIR,
    show_reasoning: bool = False,
) -> bool:
    """Streams one answer to `out`; returns False (after printing why there) when it failed."""
    try:
        await stream_answer(
            client,
            user,
            personality,
            content,
            out,
            files_dir=files_dir,
            show_reasoning=show_reasoning,
        )
    except grpc.aio.AioRpcError as exc:
        line, _ = rpc_failure(exc, client.settings.gateway_named)
        out.write(f"{line}\n")
        return False
    except FilesNotSaved as exc:
        out.write(f"{exc.explained()}\n")
        return False
    return True


def repl(
    settings: CliSettings,
    user: CliUser,
    personality: str,
    *,
    files_dir: Path = DEFAULT_FILES_DIR,
    show_reasoning: bool = False,
) -> int:
    """Reads lines until EOF, /quit or Ctrl-C at the prompt; Ctrl-C during an answer cancels
    only that answer. Returns the exit code.

    Lines are read on the main thread and each turn runs on one event loop kept for the whole
    conversation (asyncio.Runner): Ctrl-C at the prompt is a plain KeyboardInterrupt (a line
    read in a thread would keep the process waiting for it at exit), and Runner cancels the
    turn it interrupts, every time. The prompt (`TerminalPrompt`) sees a Ctrl-C whenever it
    comes."""
    with asyncio.Runner() as runner, TerminalPrompt() as prompt:
        client = runner.run(_connect(settings))
        try:
            print(f"Talking to {personality} as {user.name}. /quit, Ctrl-D or Ctrl-C to leave.")
            while True:
                try:
                    line = prompt.read_line("you> ")
                except (EOFError, KeyboardInterrupt):
                    print()
                    return 0
                if line.strip() in ("/quit", "/exit"):
                    return 0
                if not line.strip():
                    continue
                try:
                    runner.run(
                        send_message(
                            client,
                            user,
                            personality,
                            line,
                            sys.stdout,
                            files_dir=files_dir,
                            show_reasoning=show_reasoning,
                        )
                    )
                except KeyboardInterrupt:
                    print("(cancelled: this turn was not kept)", flush=True)
        finally:
            runner.run(client.close())


async def _connect(settings: CliSettings) -> GatewayClient:
    """The client, made on the runner's loop (its channel belongs to that loop)."""
    return GatewayClient(settings)
