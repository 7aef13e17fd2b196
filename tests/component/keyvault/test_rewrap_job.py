"""`python -m tzurot.keyvault.rewrap`, run as the key-rotation CronJob runs it.

Settings come the Kubernetes way: the database URL as a file in TZUROT_SECRETS_DIR (a mounted
Secret) and the master key ring in TZUROT_MASTER_KEY_FILE.
"""

import base64
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.keyvault.crypto import MasterKeyRing
from tzurot.keyvault.service import KeyVault
from tzurot.keyvault.store import PostgresKeyStore
from tzurot.keyvault.tables import api_keys

from .conftest import KEY_V1, KEY_V2

pytestmark = pytest.mark.component


def run_rewrap(tmp_path: Path, url: str, ring_text: str) -> subprocess.CompletedProcess[str]:
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir(exist_ok=True)
    (secrets_dir / "TZUROT_DATABASE_URL").write_text(url)
    master = tmp_path / "master.key"
    master.write_text(ring_text)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "TZUROT_SECRETS_DIR": str(secrets_dir),
        "TZUROT_MASTER_KEY_FILE": str(master),
        "TZUROT_TLS_DIR": str(tmp_path / "unused-tls"),
        "TZUROT_REWRAP_BATCH_SIZE": "3",
        "TZUROT_LOG_FORMAT": "json",
    }
    return subprocess.run(  # our own interpreter and module, no shell
        [sys.executable, "-m", "tzurot.keyvault.rewrap"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_rewrap_job_moves_every_key_to_the_newest_master_key(
    engine: AsyncEngine, vault_url: str, ring_v1: MasterKeyRing, tmp_path: Path
) -> None:
    old = KeyVault(PostgresKeyStore(engine), ring_v1, caller=lambda: "gateway")
    planted = [f"sk-or-v1-rotation-{i}-{uuid.uuid4().hex}" for i in range(7)]
    for key in planted:
        await old.put_key(str(uuid.uuid4()), "openrouter", SecretStr(key))
    ring_text = "".join(
        f"{version}:{base64.b64encode(key).decode()}\n"
        for version, key in ((1, KEY_V1), (2, KEY_V2))
    )

    result = run_rewrap(tmp_path, vault_url, ring_text)

    assert result.returncode == 0, result.stderr
    async with engine.connect() as conn:
        versions = set((await conn.execute(sa.select(api_keys.c.master_key_version))).scalars())
    assert versions == {2}
    output = result.stdout + result.stderr
    assert '"rewrapped": 7' in output
    for secret in (*planted, base64.b64encode(KEY_V2).decode(), vault_url):
        assert secret not in output
    # Nothing stale any more: a second run is a no-op that still succeeds.
    again = run_rewrap(tmp_path, vault_url, ring_text)
    assert again.returncode == 0, again.stderr
    assert '"rewrapped": 0' in again.stdout + again.stderr
