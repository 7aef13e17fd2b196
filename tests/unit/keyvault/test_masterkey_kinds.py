"""Keyvault's master key file is read without waiting: a FIFO, a socket or a folder there is
refused in one line at once (a FIFO used to make keyvault's start, and so `tzurot up`, hang
until the health wait gave up); a symlink to nothing says so; a Secret mounted the Kubernetes
way (a file reached through `..data` symlinks) is read as before."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.unit.file_kinds import KINDS, raised_within
from tzurot.keyvault.masterkey import load_master_key_ring
from tzurot.runtime.errors import StartupError

K1 = bytes(range(32)).hex()
K2 = bytes(range(50, 82)).hex()
RING = f"1:{K1}\n2:{K2}\n"


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("linked", [False, True], ids=["at-the-path", "through-a-symlink"])
def test_what_is_not_a_regular_file_is_refused_at_once(
    tmp_path: Path, kind: str, linked: bool
) -> None:
    thing = tmp_path / "thing"
    key_file = tmp_path / "master.key" if linked else thing
    if linked:
        key_file.symlink_to(thing.name)
    for called in KINDS[kind](thing):
        raised = raised_within(lambda: load_master_key_ring(None, key_file), thing, 5)
        assert isinstance(raised, StartupError)
        assert str(raised) == f"master key file {key_file} is {called}, not a regular file"


def kubernetes_secret(mount: Path, text: str) -> Path:
    """A Secret volume as the kubelet writes it: `master.key -> ..data/master.key`,
    `..data -> ..<timestamp>`, the file itself in the timestamped folder."""
    mount.mkdir()
    (mount / "..2025_01_01_00_00_00.1").mkdir()
    (mount / "..2025_01_01_00_00_00.1" / "master.key").write_text(text)
    (mount / "..data").symlink_to("..2025_01_01_00_00_00.1")
    (mount / "master.key").symlink_to("..data/master.key")
    return mount / "master.key"


def test_a_kubernetes_secret_mount_is_read_through_its_links(tmp_path: Path) -> None:
    key_file = kubernetes_secret(tmp_path / "tzurot-master", RING)
    assert load_master_key_ring(None, key_file).versions == (1, 2)


def test_a_symlink_to_nothing_says_so(tmp_path: Path) -> None:
    key_file = kubernetes_secret(tmp_path / "tzurot-master", RING)
    (tmp_path / "tzurot-master" / "..data").unlink()  # the mount's folder gone
    with pytest.raises(StartupError) as caught:
        load_master_key_ring(None, key_file)
    assert str(caught.value) == (
        f"master key file {key_file} is a symlink to a missing file (..data/master.key)"
    )


def test_a_missing_file_and_a_symlink_loop_are_one_line_without_the_key(tmp_path: Path) -> None:
    loop = tmp_path / "loop.key"
    loop.symlink_to(loop.name)
    with pytest.raises(StartupError) as caught:
        load_master_key_ring(None, loop)
    assert str(caught.value) == (
        f"cannot read master key file {loop}: too many levels of symbolic links"
    )
    with pytest.raises(StartupError, match=r"no such file or directory$"):
        load_master_key_ring(None, tmp_path / "absent" / "master.key")


def test_a_fifo_swapped_in_for_a_reload_is_refused_without_waiting(tmp_path: Path) -> None:
    """Keyvault re-reads the file while it runs (a rewrap, an unknown version) with the
    same reader: a FIFO put there since does not hang that either."""
    key_file = tmp_path / "master.key"
    key_file.write_text(RING)
    assert load_master_key_ring(None, key_file).versions == (1, 2)
    key_file.unlink()
    os.mkfifo(key_file)
    raised = raised_within(lambda: load_master_key_ring(None, key_file), key_file, 5)
    assert str(raised) == f"master key file {key_file} is a FIFO, not a regular file"
    assert K1 not in str(raised)
