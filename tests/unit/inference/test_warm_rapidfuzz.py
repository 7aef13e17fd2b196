"""Inference's warm-up, in its thread beside the first requests, also loads rapidfuzz for the
near-repeat check (`cleanup._lcs_length`, review 355 L8): the first turn with recent replies no
longer imports it (~8 ms) on the event loop. Inference still starts without it
(test_cleanup_lazy_rapidfuzz.py)."""

import subprocess
import sys

PROBE = """
import asyncio
import sys
import tzurot.inference.__main__
from tzurot.inference.warm import warm_up

async def main():
    print("BEFORE", "rapidfuzz" in sys.modules)
    encoding = await warm_up([])
    print("ENCODED", encoding.name)
    print("AFTER", "rapidfuzz" in sys.modules)

asyncio.run(main())
"""


def test_the_warm_up_loads_rapidfuzz_off_the_request_path() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert out.splitlines()[-3:] == ["BEFORE False", "ENCODED o200k_base", "AFTER True"]
