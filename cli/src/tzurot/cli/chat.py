"""`tzurot chat`: talk to a personality through the gateway, as a Discord user would."""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

import grpc

from tzurot.cli.gateway_client import CliUser, GatewayClient
from tzurot.cli.speech import cli_text
from tzurot.runtime.errors import from_rpc_error


async def send_message(
    client: GatewayClient, user: CliUser, personality: str, content: str, out: TextIO
) -> bool:
    """Streams one answer to `out`; returns False (after printing why) when it failed."""
    try:
        async for event in client.chat_turn(user, personality, content):
            if event.HasField("accepted"):
                out.write(f"{event.accepted.personality.display_name}> ")
            elif event.HasField("chunk"):
                out.write(event.chunk.text)
            out.flush()
    except grpc.aio.AioRpcError as exc:
        err = from_rpc_error(exc)
        out.write(f"\n[{err.code.name.lower()}] {cli_text(err.message)}\n")
        return False
    out.write("\n")
    return True


async def repl(client: GatewayClient, user: CliUser, personality: str) -> None:
    """Reads lines until EOF or /quit. Ctrl-C during an answer cancels only that answer."""
    loop = asyncio.get_running_loop()
    print(f"Talking to {personality} as {user.name}. /quit or Ctrl-D to leave.")
    while True:
        try:
            line = await loop.run_in_executor(None, _prompt)
        except (EOFError, KeyboardInterrupt):
            print()
            return
        if line.strip() in ("/quit", "/exit"):
            return
        if not line.strip():
            continue
        task = asyncio.ensure_future(send_message(client, user, personality, line, sys.stdout))
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            task.cancel()
            print("\n(cancelled: this turn was not kept)")


def _prompt() -> str:
    return input("you> ")
