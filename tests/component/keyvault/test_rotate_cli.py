"""`tzurot keys rotate` against a running keyvault: new version in the file, every key moved."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import shutil
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.cli.keys import add_master_key_version
from tzurot.keyvault.app import start_keyvault
from tzurot.keyvault.config import KeyVaultSettings
from tzurot.keyvault.masterkey import load_master_key_ring
from tzurot.keyvault.service import KeyVault
from tzurot.keyvault.store import PostgresKeyStore
from tzurot.keyvault.tables import api_keys, audit_log
from tzurot.runtime.errors import StartupError

pytestmark = pytest.mark.component


def test_add_version_upgrades_a_single_key_and_keeps_every_version(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    first = base64.b64encode(secrets.token_bytes(32)).decode()
    path.write_text(f"# dev key\n{first}\n")
    assert add_master_key_version(path) == 2
    assert add_master_key_version(path) == 3
    lines = path.read_text().splitlines()
    assert lines[:2] == ["# dev key", f"1:{first}"]
    assert [line.split(":")[0] for line in lines[1:]] == ["1", "2", "3"]
    assert load_master_key_ring(None, path).versions == (1, 2, 3)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    path.write_text("garbage without a version\nsecond line\n")
    with pytest.raises(StartupError, match="not <version>:<key>"):
        add_master_key_version(path)


async def test_rotate_adds_a_version_and_rewraps_every_key(
    vault_url: str, engine: AsyncEngine, pki: Path, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "certs").mkdir(parents=True)
    shutil.copytree(pki / "cli", data_dir / "certs" / "cli")
    key_file = data_dir / "master.key"
    key_file.write_text(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
    app = await start_keyvault(
        KeyVaultSettings(
            listen="127.0.0.1:0",
            tls_dir=pki / "keyvault",
            database_url=SecretStr(vault_url),
            master_key_file=key_file,
        )
    )
    try:
        writer = KeyVault(
            PostgresKeyStore(engine),
            load_master_key_ring(None, key_file),
            caller=lambda: "gateway",
        )
        keys = {str(uuid.uuid4()): f"sk-rotate-{i:03d}-xxxxxxxxxx" for i in range(12)}
        for uid, key in keys.items():
            await writer.put_key(uid, "openrouter", SecretStr(key))

        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tzurot.cli",
            "keys",
            "rotate",
            "--data-dir",
            str(data_dir),
            "--keyvault-addr",
            f"127.0.0.1:{app.port}",
            "--batch-size",
            "5",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "COLUMNS": "100"},
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
    finally:
        await app.stop()
    assert process.returncode == 0, err.decode()
    assert "Added master key version 2" in out.decode()
    assert "All 12 stale keys now use master key version 2." in out.decode()
    ring = load_master_key_ring(None, key_file)
    assert ring.versions == (1, 2)
    async with engine.connect() as conn:
        versions = set((await conn.execute(sa.select(api_keys.c.master_key_version))).scalars())
        audited = (
            await conn.execute(
                sa.select(audit_log.c.caller, audit_log.c.outcome).where(
                    audit_log.c.method == "RewrapKeys"
                )
            )
        ).all()
    assert versions == {2}
    assert [tuple(row) for row in audited] == [("cli", "ok")]
    reader = KeyVault(PostgresKeyStore(engine), ring, caller=lambda: "inference")
    for uid, key in keys.items():
        assert (await reader.decrypt(uid, "openrouter")).get_secret_value() == key
