"""One master key rotation at a time: `tzurot keys rotate` holds an exclusive lock beside
master.key for the whole rotation, so a second run that adds a version (or `keys
add-version`) meanwhile says another rotation is running and exits 2 at once, adding no
version and asking keyvault nothing. Two runs used to both add a version, each rewriting the
file from what it had read through the same temporary file: a version keyvault may already
seal keys with could be lost. `--no-add-version` neither reads nor writes the key file: it
takes no lock, and rewraps beside a rotation (keyvault's rewraps may run side by side)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.cli.keys_rotate_helpers import (
    finished,
    key_file_in,
    local_state,
    serve,
    slow_keyvault,
    tzurot,
    versions,
)
from tzurot.cli.keys import RotationRunning, lock_file_of, rotation_lock
from tzurot.runtime.errors import StartupError


async def test_a_second_rotation_while_one_runs_is_refused_at_once(tmp_path: Path) -> None:
    data_dir = local_state(tmp_path)
    key_file = data_dir / "master.key"
    keyvault = slow_keyvault()
    server = await serve(data_dir, keyvault)
    rotate = ["keys", "rotate", "--data-dir", str(data_dir)]
    addr = ["--keyvault-addr", f"127.0.0.1:{server.port}"]
    try:
        first = await tzurot(*rotate, *addr)
        await asyncio.wait_for(keyvault.rewrapping.wait(), 60)  # version 2 added, rewrapping
        code, out, err = await finished(await tzurot(*rotate, *addr))
        assert keyvault.asked == 1  # the second run asked keyvault nothing
        keyvault.release.set()
        first_code, first_out, first_err = await finished(first)
    finally:
        await server.stop(None)
    assert (code, out) == (2, ""), err
    assert err == (
        f"tzurot: another master key rotation is running on {key_file} (it holds "
        f"{lock_file_of(key_file)}); wait for it to finish, then run this again\n"
    )
    assert first_code == 0, first_out + first_err
    assert "Added master key version 2" in first_out
    assert versions(key_file) == ["1", "2"]  # the second run added no version 3


async def test_add_version_is_refused_while_a_rotation_holds_the_lock(tmp_path: Path) -> None:
    data_dir = local_state(tmp_path)
    key_file = data_dir / "master.key"
    before = key_file.read_bytes()
    with rotation_lock(key_file):
        code, out, err = await finished(
            await tzurot("keys", "add-version", "--master-key-file", str(key_file))
        )
    assert (code, out) == (2, ""), err
    assert "another master key rotation is running" in err
    assert key_file.read_bytes() == before
    code, out, err = await finished(
        await tzurot("keys", "add-version", "--master-key-file", str(key_file))
    )
    assert code == 0, err  # the lock went with the rotation
    assert versions(key_file) == ["1", "2"]


def test_two_concurrent_holders_in_one_process_are_refused_too(tmp_path: Path) -> None:
    key_file = key_file_in(tmp_path)
    with rotation_lock(key_file), pytest.raises(RotationRunning), rotation_lock(key_file):
        pass
    with rotation_lock(key_file):  # released: taken again
        pass
    assert os.stat(lock_file_of(key_file)).st_mode & 0o777 == 0o600


@pytest.mark.parametrize("target", ["existing", "dangling"])
def test_a_lock_file_swapped_for_a_symlink_is_not_followed(tmp_path: Path, target: str) -> None:
    key_file = key_file_in(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    if target == "existing":
        elsewhere.write_text("not ours")
    lock_file_of(key_file).symlink_to(elsewhere)
    with pytest.raises(StartupError, match="it is a symlink"), rotation_lock(key_file):
        pass
    assert lock_file_of(key_file).is_symlink()
    # Opened through the link (then refused), it would have made the file it points to.
    assert elsewhere.exists() == (target == "existing")


def test_a_lock_left_by_a_killed_process_is_taken_by_the_next_run(tmp_path: Path) -> None:
    """The flock goes with its holder: a rotation killed with SIGKILL leaves its lock file
    behind (harmless), not the lock."""
    key_file = key_file_in(tmp_path)
    with subprocess.Popen(  # our own interpreter, no shell
        [sys.executable, "-c", HOLD, str(key_file)], stdout=subprocess.PIPE, text=True
    ) as holder:
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline() == "held\n"
            with pytest.raises(RotationRunning), rotation_lock(key_file):
                pass
        finally:
            holder.kill()
            holder.wait(30)
    assert holder.returncode == -signal.SIGKILL
    assert lock_file_of(key_file).exists()  # left in place
    with rotation_lock(key_file) as locked:
        assert locked == Path(os.path.realpath(key_file))  # the file to write


async def test_a_rewrap_alone_takes_no_lock_and_runs_beside_a_rotation(tmp_path: Path) -> None:
    """It reads nothing of the key file (a production keyvault's is elsewhere): no lock is
    made beside it, and one held does not stop it."""
    data_dir = local_state(tmp_path)
    key_file = data_dir / "master.key"
    before = key_file.read_bytes()
    keyvault = slow_keyvault(released=True)
    server = await serve(data_dir, keyvault)
    rewrap = (
        "keys", "rotate", "--no-add-version", "--data-dir", str(data_dir),
        "--keyvault-addr", f"127.0.0.1:{server.port}",
    )  # fmt: skip
    try:
        alone = await finished(await tzurot(*rewrap))
        made = lock_file_of(key_file).exists()
        with rotation_lock(key_file):  # a rotation (or add-version) running
            beside = await finished(await tzurot(*rewrap))
    finally:
        await server.stop(None)
    for code, out, err in (alone, beside):
        assert (code, err) == (0, ""), err
        assert "All 3 stale keys now use master key version 2." in out
    assert not made
    assert keyvault.asked == 0  # a rewrap alone asks nothing first
    assert key_file.read_bytes() == before


def test_a_symlinked_key_file_and_the_file_it_names_share_one_lock(tmp_path: Path) -> None:
    """`keys add-version` writes through the link: the lock is beside the file written."""
    (tmp_path / "secrets").mkdir()
    key_file = key_file_in(tmp_path / "secrets")
    link = tmp_path / "dotfiles" / "master.key"
    link.parent.mkdir()
    link.symlink_to(key_file)

    with rotation_lock(key_file), pytest.raises(RotationRunning), rotation_lock(link):
        pass
    assert lock_file_of(link) == Path(os.path.realpath(key_file)).with_name("master.key.lock")
    assert not (link.parent / "master.key.lock").exists()


HOLD = """
import sys, time
from pathlib import Path
from tzurot.cli.keys import rotation_lock
with rotation_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(3600)
"""
