"""`python -m bench.provider`: the instant fake LLM provider in a process of its own.

The as-deployed rate figure (`bench.deployed`) points inference at it, so its CPU is the
provider's own and not the driver's or a service's. It accepts the bench users' key
(`tzurot.testing.e2e.USER_KEY`), answers each turn with `bench.load.marked_answer` (so no
two answers are alike), prints its base URL on one line, and runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

from bench.load import marked_answer
from tzurot.testing.e2e import USER_KEY
from tzurot.testing.fake_provider import FakeProvider


async def _serve() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with FakeProvider(valid_keys={USER_KEY}, reply=marked_answer) as fake:
        print(fake.base_url, flush=True)
        while not stop.is_set():
            fake.requests.clear()  # the fake records every request; a long sweep needs none
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 5.0)


if __name__ == "__main__":
    asyncio.run(_serve())
