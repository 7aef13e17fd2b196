"""Figure 1 (first cut): one chat turn through the whole mesh against an instant fake provider.

Generate (gateway → inference → keyvault, memory, provider → back) plus ConfirmDelivery
(gateway → memory), as `tzurot chat` and the bot do it, measured at the gateway's client.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from pathlib import Path

from bench.results import Figure, summarise
from tzurot.cli.localdb import create_database, local_postgres
from tzurot.testing.e2e import NO_RATE_LIMITS, Harness, converse, echo_mesh, request, set_key
from tzurot.v1 import gateway_pb2 as gw


async def run(turns: int) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="tzbench-", dir="/tmp") as tmp:
        root = Path(tmp)
        with local_postgres(root / "pg", delete_on_exit=True) as server_url:
            database_url = create_database(server_url, f"bench_{uuid.uuid4().hex[:8]}")
            async with echo_mesh(database_url, root, gateway=NO_RATE_LIMITS) as h:
                h.provider.reply = "a short instant answer"
                await set_key(h)
                for _ in range(5):  # warm connections and caches
                    await converse(h, request("warm up", channel="warm"))
                first_chunk: list[float] = []
                whole: list[float] = []
                for n in range(turns):
                    started = time.perf_counter()
                    seen_chunk = False
                    job_id = ""
                    async for event in h.bot.Generate(request(f"message {n}", channel="bench")):
                        if event.HasField("chunk") and not seen_chunk:
                            first_chunk.append((time.perf_counter() - started) * 1000)
                            seen_chunk = True
                        if event.HasField("accepted"):
                            job_id = event.accepted.job_id
                    await converse_confirm(h, job_id)
                    whole.append((time.perf_counter() - started) * 1000)
    return [
        summarise("chat turn (generate + confirm)", whole, history="grows to turns"),
        summarise("first chunk at the client", first_chunk),
    ]


async def converse_confirm(h: Harness, job_id: str) -> None:
    await h.bot.ConfirmDelivery(
        gw.ConfirmDeliveryRequest(job_id=job_id, message_ids=[f"reply-{job_id}"])
    )
