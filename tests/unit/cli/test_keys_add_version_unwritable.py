"""A master key file that cannot be rewritten is one line, exit 2, whatever the lock did: a
lock file there that we may only read still serves (read-only), so a run that adds a version
gets as far as writing the key file's temporary file in a folder it may not write (another
user's data dir, a mount made read-only since). It used to end in a traceback, exit 1."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest
import typer

from tests.unit.cli.keys_rotate_helpers import bound_tzurot, local_state, serve, slow_keyvault
from tzurot.cli.__main__ import keys_add_version
from tzurot.cli.keys import lock_file_of, rotation_lock


@pytest.mark.parametrize("command", ["add-version", "rotate"])
async def test_a_version_it_may_not_write_is_one_line_and_exit_2(
    tmp_path: Path, command: str
) -> None:
    data_dir = local_state(tmp_path)
    key_file = data_dir / "master.key"
    before = key_file.read_bytes()
    with rotation_lock(key_file):  # made by an earlier run
        pass
    lock_file_of(key_file).chmod(0o400)  # we may only read it: it serves read-only
    keyvault = slow_keyvault(released=True)
    server = await serve(data_dir, keyvault)
    args = {
        "add-version": ["keys", "add-version", "--master-key-file", str(key_file)],
        "rotate": ["keys", "rotate", "--data-dir", str(data_dir),
                   "--keyvault-addr", f"127.0.0.1:{server.port}"],
    }[command]  # fmt: skip
    data_dir.chmod(0o555)  # read-only to its owner (and to root without its override)
    try:
        code, out, err = await bound_tzurot(*args)
    finally:
        data_dir.chmod(0o755)
        await server.stop(None)

    assert (code, out) == (2, ""), err
    assert err == f"tzurot: cannot write master key file {key_file}: Permission denied\n"
    assert key_file.read_bytes() == before
    assert not keyvault.rewrapping.is_set()
    assert sorted(p.name for p in data_dir.iterdir()) == ["certs", "master.key", "master.key.lock"]


@pytest.mark.parametrize(
    ("failing", "error"),
    [("fsync", errno.ENOSPC), ("replace", errno.EROFS), ("open", errno.EROFS)],
)
def test_a_write_failing_midway_is_one_line_and_leaves_no_temporary_file(
    tmp_path: Path,
    monkeypatch: Any,
    capsys: pytest.CaptureFixture[str],
    failing: str,
    error: int,
) -> None:
    data_dir = local_state(tmp_path)
    key_file = data_dir / "master.key"
    before = key_file.read_bytes()
    real = getattr(os, failing)

    def fails(*args: Any, **kwargs: Any) -> Any:
        if failing != "open" or str(args[0]).endswith(".tmp"):
            raise OSError(error, os.strerror(error))
        return real(*args, **kwargs)

    monkeypatch.setattr(os, failing, fails)

    with pytest.raises(typer.Exit) as exit_:
        keys_add_version(master_key_file=key_file)

    assert exit_.value.exit_code == 2
    assert capsys.readouterr() == (
        "",
        f"tzurot: cannot write master key file {key_file}: {os.strerror(error)}\n",
    )
    assert key_file.read_bytes() == before
    assert not key_file.with_name("master.key.tmp").exists()
