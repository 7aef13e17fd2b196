"""The real `tzurot` command against a test's mesh, as a terminal user runs it: a process of
our own interpreter and module (no shell, no controlling terminal), as the operator's `cli`
identity over mTLS (test_cli_chat_files.py, test_wallet_unchecked.py,
test_wallet_keyless_provider.py)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from tzurot.testing.discord_e2e import World


async def tzurot(
    world: World, *args: str, stdin: str = "", cwd: Path | None = None, within: float = 60
) -> tuple[int, str, str]:
    """`tzurot *args` fed `stdin`, run in `cwd` against the mesh's gateway (this test's loop
    keeps serving it meanwhile): its exit code, stdout and stderr, or TimeoutError after
    `within` seconds. No TZUROT_ variable of the test's own environment reaches it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TZUROT_")}
    env |= {
        "TZUROT_GATEWAY_ADDR": world.mesh.gateway_addr,
        "TZUROT_CLI_TLS_DIR": str(world.mesh.pki / "cli"),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,  # our own interpreter and module, no shell
        "-m",
        "tzurot.cli",
        *args,
        env=env,
        cwd=cwd,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # no controlling terminal
    )
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), within)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
