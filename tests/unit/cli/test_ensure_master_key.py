"""`tzurot up`'s local master key (`.data/master.key`): made once, then kept; what is at the
path must be a regular file (a symlink to one too).

A FIFO there was taken for a key (it exists), then keyvault's start waited on it for a
writer until `up` gave up on the health wait; a symlink to nothing ended in a FileExistsError
traceback. Each is now one line before anything starts (exit 2); no key is made through a
dangling symlink: it is more likely a missing mount than a place for a new key. The same
holds for the data folder itself (or a folder above it) being a symlink to nothing: `up`
ended in a FileExistsError traceback from the certificates made first.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.unit.file_kinds import fifo, folder, unix_socket
from tzurot.cli import mesh as mesh_module
from tzurot.cli.__main__ import _guarded
from tzurot.cli.mesh import MeshLayout, ensure_master_key, run_mesh
from tzurot.runtime.errors import StartupError


def test_a_key_is_made_once_private_and_then_kept(tmp_path: Path) -> None:
    key_file = tmp_path / "data" / "master.key"
    ensure_master_key(key_file)
    made = key_file.read_text()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    ensure_master_key(key_file)
    assert key_file.read_text() == made


def test_a_symlink_to_a_key_is_kept(tmp_path: Path) -> None:
    (tmp_path / "elsewhere.key").write_text("1:kept\n")
    key_file = tmp_path / "master.key"
    key_file.symlink_to("elsewhere.key")
    ensure_master_key(key_file)
    assert key_file.is_symlink()
    assert key_file.read_text() == "1:kept\n"


def test_a_dangling_symlink_is_one_line_and_nothing_is_made(tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    key_file.symlink_to("mount/master.key")
    with pytest.raises(StartupError) as caught:
        ensure_master_key(key_file)
    assert str(caught.value) == (
        f"master key file {key_file} is a symlink to a missing file (mount/master.key)"
    )
    assert sorted(os.listdir(tmp_path)) == ["master.key"]
    assert not (tmp_path / "mount").exists()


@pytest.mark.parametrize("kind", [fifo, unix_socket, folder])
def test_what_is_not_a_regular_file_is_refused(
    tmp_path: Path, kind: Callable[[Path], Iterator[str]]
) -> None:
    key_file = tmp_path / "master.key"
    for called in kind(key_file):
        with pytest.raises(StartupError) as caught:
            ensure_master_key(key_file)
        assert str(caught.value) == f"master key file {key_file} is {called}, not a regular file"


def test_a_symlink_loop_and_a_file_for_a_folder_are_one_line(tmp_path: Path) -> None:
    loop = tmp_path / "loop.key"
    loop.symlink_to(loop.name)
    with pytest.raises(StartupError, match=r"^cannot read master key file .*: Too many levels"):
        ensure_master_key(loop)
    (tmp_path / "file").write_text("")
    with pytest.raises(StartupError, match=r"^cannot read master key file .*: Not a directory"):
        ensure_master_key(tmp_path / "file" / "master.key")


@contextlib.contextmanager
def _unreached_postgres(data_dir: Path) -> Iterator[str]:
    raise AssertionError("Postgres was started")
    yield ""


def test_up_with_a_fifo_key_stops_before_postgres_in_one_line_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(mesh_module, "local_postgres", _unreached_postgres)
    layout = MeshLayout(tmp_path / "data", base_port=1)
    layout.data_dir.mkdir()
    os.mkfifo(layout.master_key_file)

    code = _guarded(lambda: asyncio.run(run_mesh(layout, seeds=[], extra_env={}, with_bot=False)))

    assert code == 2
    assert capsys.readouterr().err == (
        f"tzurot: master key file {layout.master_key_file} is a FIFO, not a regular file\n"
    )
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize("dangling", ["data", "mnt"])
def test_up_with_a_dangling_data_folder_stops_before_anything_in_one_line_exit_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    dangling: str,
) -> None:
    """`.data` a symlink to a missing mount, or a folder above it one."""
    monkeypatch.setattr(mesh_module, "local_postgres", _unreached_postgres)
    link = tmp_path / dangling
    link.symlink_to("/nonexistent/usb/tzurot")
    data_dir = link if dangling == "data" else link / "tzurot" / ".data"
    layout = MeshLayout(data_dir, base_port=1)

    code = _guarded(lambda: asyncio.run(run_mesh(layout, seeds=[], extra_env={}, with_bot=False)))

    assert code == 2
    where = "" if dangling == "data" else f"{data_dir}: "
    assert capsys.readouterr().err == (
        f"tzurot: data folder {where}{link} is a symlink to a missing folder "
        "(/nonexistent/usb/tzurot)\n"
    )
    assert os.listdir(tmp_path) == [dangling]
    assert not os.path.exists("/nonexistent")


def test_a_key_in_a_dangling_folder_names_the_link(tmp_path: Path) -> None:
    (tmp_path / "gone").symlink_to("nowhere")
    key_file = tmp_path / "gone" / "master.key"
    with pytest.raises(StartupError) as caught:
        ensure_master_key(key_file)
    assert str(caught.value) == (
        f"cannot create master key file {key_file}: {tmp_path / 'gone'} is a symlink to a "
        "missing folder (nowhere)"
    )
    assert os.listdir(tmp_path) == ["gone"]
