"""A client channel's gRPC threads leave SIGINT and SIGTERM to the main thread.

Otherwise the kernel may hand Ctrl-C to one of them, and a main thread blocked in a read
(the CLI's `you>` prompt) never sees it. Checked in a fresh process: gRPC starts its threads
with the first channel of a process, and this test process has made channels already.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")

OPEN_A_CHANNEL = """
import asyncio, pathlib, sys
from tzurot.runtime.client import secure_channel
from tzurot.runtime.tls import load_tls

async def main() -> None:
    channel = secure_channel(
        "127.0.0.1:9", load_tls(pathlib.Path(sys.argv[1])), server_identity="gateway",
        default_timeout=1.0,
    )
    main_thread = pathlib.Path("/proc/thread-self").resolve().name
    for task in sorted(pathlib.Path("/proc/self/task").iterdir()):
        fields = dict(
            line.split(":\\t", 1) for line in (task / "status").read_text().splitlines()
        )
        role = "main" if task.name == main_thread else fields["Name"].strip()
        print(role, fields["SigBlk"].strip())
    await channel.close()

asyncio.run(main())
"""


def _blocked(mask_hex: str) -> set[signal.Signals]:
    mask = int(mask_hex, 16)
    return {sig for sig in (signal.SIGINT, signal.SIGTERM) if mask & (1 << (sig - 1))}


def test_only_the_main_thread_takes_interrupts(pki: Path) -> None:
    shown = subprocess.run(
        [sys.executable, "-c", OPEN_A_CHANNEL, str(pki / "cli")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split("\n")
    threads = [line.split() for line in shown if line]
    assert len(threads) > 1, shown  # gRPC started threads
    for role, mask in threads:
        expected = set() if role == "main" else {signal.SIGINT, signal.SIGTERM}
        assert _blocked(mask) == expected, (role, shown)
