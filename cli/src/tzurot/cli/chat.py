"""`tzurot chat`: talk to a personality through the gateway, as a Discord user would."""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

import grpc

from tzurot.cli.gateway_client import CliUser, GatewayClient
from tzurot.cli.prompt import TerminalPrompt
from tzurot.cli.settings import CliSettings
from tzurot.cli.speech import rpc_failure


async def stream_answer(
    client: GatewayClient, user: CliUser, personality: str, content: str, out: TextIO
) -> None:
    """Streams one answer to `out`. A failed (or cancelled) call ends the line it began and
    raises: its reason is the caller's to tell (on stderr, for `chat -m`)."""
    began = False
    try:
        async for event in client.chat_turn(user, personality, content):
            if event.HasField("accepted"):
                out.write(f"{event.accepted.personality.display_name}> ")
                began = True
            elif event.HasField("chunk"):
                out.write(event.chunk.text)
                began = True
            out.flush()
    except BaseException:
        if began:
            out.write("\n")
            out.flush()
        raise
    out.write("\n")


async def send_message(
    client: GatewayClient, user: CliUser, personality: str, content: str, out: TextIO
) -> bool:
    """Streams one answer to `out`; returns False (after printing why there) when it failed."""
    try:
        await stream_answer(client, user, personality, content, out)
    except grpc.aio.AioRpcError as exc:
        line, _ = rpc_failure(exc, client.settings.gateway_named)
        out.write(f"{line}\n")
        return False
    return True


def repl(settings: CliSettings, user: CliUser, personality: str) -> int:
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
                    runner.run(send_message(client, user, personality, line, sys.stdout))
                except KeyboardInterrupt:
                    print("(cancelled: this turn was not kept)", flush=True)
        finally:
            runner.run(client.close())


async def _connect(settings: CliSettings) -> GatewayClient:
    """The client, made on the runner's loop (its channel belongs to that loop)."""
    return GatewayClient(settings)
