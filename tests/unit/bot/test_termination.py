"""SIGTERM stops the bot as Ctrl-C does: its answers in flight finish, then it disconnects.

Run in a child process of its own (a signal is process-wide): a stand-in for the bot whose
`close` takes a moment, as letting an answer finish does."""

from __future__ import annotations

import asyncio
import signal
import sys

CHILD = """
import asyncio, sys
from tzurot.bot.__main__ import run_until_terminated

class Bot:
    def __init__(self):
        self.stopped = asyncio.Event()

    async def start(self, token):
        print("connected", flush=True)
        await self.stopped.wait()

    async def close(self):
        await asyncio.sleep(0.2)  # an answer in flight finishing
        print("answers finished", flush=True)
        self.stopped.set()

asyncio.run(run_until_terminated(Bot(), "token"))
print("stopped", flush=True)
"""


async def test_sigterm_lets_the_answers_in_flight_finish_then_stops() -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, stdout=asyncio.subprocess.PIPE
    )
    assert child.stdout is not None
    assert await asyncio.wait_for(child.stdout.readline(), 30) == b"connected\n"
    child.send_signal(signal.SIGTERM)
    out = await asyncio.wait_for(child.stdout.read(), 30)
    assert await child.wait() == 0
    lines = out.decode().splitlines()
    assert "bot.terminating" in lines[0]  # structlog's default: stdout
    assert lines[1:] == ["answers finished", "stopped"]
