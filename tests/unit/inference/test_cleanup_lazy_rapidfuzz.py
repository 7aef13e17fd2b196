"""rapidfuzz (the near-repeat checks' LCS bound, `cleanup._lcs_length`) loads on the first check,
not when inference starts: its import was most of `cleanup`'s, 8-15 ms of inference's start."""

import subprocess
import sys

PROBE = """
import sys
import tzurot.inference.__main__
print("AT START", "rapidfuzz" in sys.modules)
from tzurot.inference.cleanup import repeats
print("REPEATS", repeats("the same answer again", ["The same answer again!"]))
print("AFTER", "rapidfuzz" in sys.modules)
"""


def test_inference_starts_without_rapidfuzz_and_loads_it_on_the_first_check() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert out.splitlines()[-3:] == ["AT START False", "REPEATS True", "AFTER True"]
