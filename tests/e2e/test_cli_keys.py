"""Master key rotation through the real `tzurot` console script, against a running keyvault
that reads its master key file as `tzurot up` makes it (.data/master.key).

- `tzurot keys add-version` then `tzurot keys rotate --no-add-version`, and `tzurot keys
  rotate` adding the version itself: every key stored before still decrypts (keyvault's
  Decrypt, as inference), every row is on the newest version, the progress is reported, and
  neither a user's key nor the master key appears in any output.
- `tzurot admin keys resume`: a `tzurot admin keys rotate` interrupted by Ctrl-C part way
  (rows held by another transaction stop it there for certain) is finished by `resume`, which
  re-wraps only the keys still on the older version.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from tzurot.cli.mesh import ensure_master_key
from tzurot.cli.migrate import migrate_all
from tzurot.db.engine import create_engine
from tzurot.keyvault.app import KeyVaultApp, start_keyvault
from tzurot.keyvault.config import KeyVaultSettings
from tzurot.runtime.tls import SERVICE_IDENTITIES, generate_dev_pki
from tzurot.testing.channels import channels_to
from tzurot.testing.postgres import DatabaseFactory
from tzurot.v1 import keyvault_pb2 as kv
from tzurot.v1 import keyvault_pb2_grpc as kv_grpc

pytestmark = pytest.mark.e2e

TZUROT = Path(sys.executable).parent / "tzurot"
"""The console script, as installed (what an operator types)."""


async def start(*args: str, env: dict[str, str] | None, cwd: Path) -> asyncio.subprocess.Process:
    """The console script in a process (this test's loop keeps serving keyvault meanwhile)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TZUROT_")}
    return await asyncio.create_subprocess_exec(
        str(TZUROT),
        *args,
        env={**clean, "COLUMNS": "100", **(env or {})},
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # no controlling terminal
    )


async def tzurot(*args: str, env: dict[str, str] | None = None, cwd: Path) -> tuple[int, str, str]:
    """Exit code, standard output and standard error of one `tzurot` command."""
    process = await start(*args, env=env, cwd=cwd)
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@dataclass
class Vault:
    app: KeyVaultApp
    data_dir: Path
    database_url: str
    keys: dict[str, str]
    """user id -> the openrouter key stored for them before any rotation."""

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.app.port}"

    @property
    def master_key_file(self) -> Path:
        return self.data_dir / "master.key"

    async def tzurot(self, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
        return await tzurot(*args, env=env, cwd=self.data_dir.parent)

    async def start(
        self, *args: str, env: dict[str, str] | None = None
    ) -> asyncio.subprocess.Process:
        return await start(*args, env=env, cwd=self.data_dir.parent)

    def admin_env(self) -> dict[str, str]:
        """What `tzurot admin` reads locally: the keyvault's address, the cli certificate."""
        return {
            "TZUROT_KEYVAULT_ADDR": self.addr,
            "TZUROT_CLI_TLS_DIR": str(self.data_dir / "certs" / "cli"),
            "PYTHONUNBUFFERED": "1",  # each progress line as it is printed
        }

    async def versions(self) -> list[int]:
        """Every stored key's master key version."""
        engine = create_engine(self.database_url)
        try:
            async with engine.connect() as conn:
                found = await conn.scalars(sa.text("select master_key_version from vault.api_keys"))
                return sorted(found)
        finally:
            await engine.dispose()

    async def decrypted(self) -> dict[str, str]:
        """Every stored key, as inference reads it now."""
        async with channels_to("keyvault", self.data_dir / "certs") as open_channel:
            stub = kv_grpc.KeyVaultServiceStub(open_channel(self.app.port, "inference"))
            found = {}
            for user in self.keys:
                reply = await stub.Decrypt(kv.DecryptRequest(user_id=user, provider="openrouter"))
                found[user] = reply.api_key
            return found

    def assert_no_secret(self, *outputs: str) -> None:
        text = "".join(outputs)
        for key in self.keys.values():
            assert key not in text
        for line in self.master_key_file.read_text().splitlines():
            assert line.split(":", 1)[-1] not in text  # no master key version's bytes


@pytest.fixture
async def vault(fresh_database: DatabaseFactory, tmp_path: Path) -> AsyncIterator[Vault]:
    """keyvault on a fresh database, reading <data>/master.key (one unversioned key, as
    `tzurot up` writes it), with 20 users' keys stored through it (as gateway)."""
    url = fresh_database()
    migrate_all(url, {"keyvault"})
    data_dir = tmp_path / ".data"
    generate_dev_pki(data_dir / "certs", SERVICE_IDENTITIES)
    ensure_master_key(data_dir / "master.key")
    app = await start_keyvault(
        KeyVaultSettings(
            listen="127.0.0.1:0",
            tls_dir=data_dir / "certs" / "keyvault",
            database_url=SecretStr(url),
            master_key_file=data_dir / "master.key",
        )
    )
    try:
        keys = {str(uuid.uuid4()): f"sk-or-v1-rotate{i:02d}{uuid.uuid4().hex}" for i in range(20)}
        async with channels_to("keyvault", data_dir / "certs") as open_channel:
            gateway = kv_grpc.KeyVaultServiceStub(open_channel(app.port, "gateway"))
            for user, key in keys.items():
                await gateway.PutKey(
                    kv.PutKeyRequest(user_id=user, provider="openrouter", api_key=key)
                )
        yield Vault(app, data_dir, url, keys)
    finally:
        await app.stop()


async def test_add_version_then_rotate_keeps_every_stored_key_readable(vault: Vault) -> None:
    assert await vault.versions() == [1] * 20
    before = vault.master_key_file.read_text()

    code, out, err = await vault.tzurot(
        "keys", "add-version", "--master-key-file", str(vault.master_key_file)
    )
    assert (code, out.strip()) == (0, f"Added master key version 2 to {vault.master_key_file}")
    lines = vault.master_key_file.read_text().splitlines()
    assert lines[0] == f"1:{before.strip()}"  # the first key kept, now as version 1
    assert [line.split(":")[0] for line in lines] == ["1", "2"]
    assert oct(vault.master_key_file.stat().st_mode & 0o777) == "0o600"
    assert await vault.versions() == [1] * 20  # keyvault re-wraps only when asked

    # The production flow: the version is in the file already; rotate re-wraps only.
    rotate = ("keys", "rotate", "--data-dir", str(vault.data_dir), "--keyvault-addr", vault.addr)
    code, out, err = await vault.tzurot(*rotate, "--no-add-version", "--batch-size", "6")
    assert code == 0, err
    assert "Added master key version" not in out
    assert "re-wrapping to version 2" in out  # the progress bar, as it ended
    assert "20/20" in out
    assert "All 20 stale keys now use master key version 2." in out
    vault.assert_no_secret(out, err)
    assert await vault.versions() == [2] * 20
    assert await vault.decrypted() == vault.keys

    # The local flow: rotate appends the version itself, then re-wraps to it.
    code, out, err = await vault.tzurot(*rotate)
    assert code == 0, err
    assert f"Added master key version 3 to {vault.master_key_file}" in out
    assert "All 20 stale keys now use master key version 3." in out
    vault.assert_no_secret(out, err)
    assert await vault.versions() == [3] * 20
    assert await vault.decrypted() == vault.keys

    # Nothing stale: a rotation without a new version re-wraps nothing, and says so.
    code, out, err = await vault.tzurot(*rotate, "--no-add-version")
    assert code == 0, err
    assert "All 0 stale keys now use master key version 3." in out
    assert await vault.versions() == [3] * 20


async def test_admin_keys_resume_finishes_an_interrupted_rotation(vault: Vault) -> None:
    code, out, err = await vault.tzurot(
        "keys", "add-version", "--master-key-file", str(vault.master_key_file)
    )
    assert code == 0, err
    held = list(vault.keys)[:3]  # three keys another transaction holds
    engine = create_engine(vault.database_url)
    try:
        async with engine.connect() as lock:
            locking = await lock.begin()
            await lock.execute(
                sa.text("select 1 from vault.api_keys where user_id = any(:ids) for update"),
                {"ids": held},
            )
            # The rotation re-wraps the 17 free keys, then waits for the 3 held ones:
            # the operator presses Ctrl-C there.
            process = await vault.start(
                "admin", "keys", "rotate", "--batch-size", "5", env=vault.admin_env()
            )
            assert process.stdout is not None
            seen: list[str] = []
            while not seen or seen[-1] != "version 2: 17/20 re-wrapped":
                line = await asyncio.wait_for(process.stdout.readline(), 60)
                assert line, "the rotation ended before it was interrupted"
                seen.append(line.decode().strip())
            process.send_signal(signal.SIGINT)
            rest, errors = await asyncio.wait_for(process.communicate(), 60)
            assert process.returncode == 130, errors.decode()
            assert seen == [f"version 2: {n}/20 re-wrapped" for n in (5, 10, 15, 17)]
            assert "done" not in rest.decode()
            vault.assert_no_secret("\n".join(seen), rest.decode(), errors.decode())
            await _audited_cancel(vault.database_url)  # keyvault gave up: release the rows
            await locking.rollback()
    finally:
        await engine.dispose()
    assert await vault.versions() == [1] * 3 + [2] * 17

    code, out, err = await vault.tzurot("admin", "keys", "progress", env=vault.admin_env())
    assert (code, out) == (0, "version 2: 17/20 keys on it (3 keys still to re-wrap)\n"), err

    code, out, err = await vault.tzurot(
        "admin", "keys", "resume", "--batch-size", "2", env=vault.admin_env()
    )
    assert code == 0, err
    assert out.splitlines() == [
        "version 2: 2/3 re-wrapped",
        "version 2: 3/3 re-wrapped",
        "done: every key uses master key version 2",
    ]
    vault.assert_no_secret(out, err)
    assert await vault.versions() == [2] * 20
    assert await vault.decrypted() == vault.keys
    code, out, err = await vault.tzurot("admin", "keys", "progress", env=vault.admin_env())
    assert (code, out) == (0, "version 2: 20/20 keys on it (complete)\n"), err


async def _audited_cancel(database_url: str) -> None:
    """Until keyvault has recorded the interrupted RewrapKeys (it stopped waiting)."""
    engine = create_engine(database_url)
    try:
        for _ in range(300):
            async with engine.connect() as conn:
                details = list(
                    await conn.scalars(
                        sa.text("select detail from vault.audit_log where method = 'RewrapKeys'")
                    )
                )
            if details:
                assert details == ["cancelled (17 of 20 to version 2)"]
                return
            await asyncio.sleep(0.1)
        raise AssertionError("keyvault never recorded the interrupted rotation")
    finally:
        await engine.dispose()


async def test_a_missing_key_file_and_an_unreachable_keyvault_are_one_line_each(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / ".data"
    generate_dev_pki(data_dir / "certs", ["cli"])
    missing = data_dir / "master.key"
    code, out, err = await tzurot(
        "keys", "add-version", "--master-key-file", str(missing), cwd=tmp_path
    )
    assert (code, out) == (2, "")
    assert err == f"tzurot: cannot read master key file {missing}: No such file or directory\n"
    assert not missing.exists()

    ensure_master_key(missing)
    code, out, err = await tzurot(
        "keys", "rotate", "--data-dir", str(data_dir), "--no-add-version",
        "--keyvault-addr", "127.0.0.1:1", cwd=tmp_path,
    )  # fmt: skip
    assert code == 3
    assert err.startswith("tzurot: [unavailable] cannot reach keyvault at 127.0.0.1:1")
    assert "(--keyvault-addr)" in err
    assert err.count("\n") == 1
    assert missing.read_text().split()[0] not in out + err
