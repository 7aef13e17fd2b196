"""A master key path that holds no regular file is refused at once, in one line, exit 2.

A FIFO there used to make `tzurot keys add-version` (and `keys rotate`, after it had asked
keyvault) wait for a writer forever; a socket failed with "No such device or address". The
path is looked at before it is opened, and the open descriptor again (non-blocking, so a
FIFO put there in between cannot make it wait either). A file that is not UTF-8 text is one
line too (it used to be a traceback).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer

from tests.unit.cli.keys_rotate_helpers import finished, local_state, serve, slow_keyvault, tzurot
from tests.unit.file_kinds import KINDS, raised_within
from tzurot.cli.__main__ import keys_add_version
from tzurot.cli.keys import add_master_key_version, newest_master_key_version
from tzurot.runtime.errors import StartupError


@pytest.mark.parametrize("kind", list(KINDS))
async def test_add_version_refuses_at_once_what_is_not_a_regular_file(
    tmp_path: Path, kind: str
) -> None:
    key_file = tmp_path / "master.key"
    for called in KINDS[kind](key_file):
        code, out, err = await finished(
            await tzurot("keys", "add-version", "--master-key-file", str(key_file)), within=15
        )
        assert (code, out) == (2, ""), err
        assert err == f"tzurot: master key file {key_file} is {called}, not a regular file\n"
    assert os.listdir(tmp_path) == ["master.key"]  # no lock, no .tmp


async def test_rotate_refuses_a_fifo_before_it_asks_keyvault(tmp_path: Path) -> None:
    data_dir = local_state(tmp_path)
    key_file = data_dir / "master.key"
    key_file.unlink()
    os.mkfifo(key_file)
    keyvault = slow_keyvault(released=True)
    server = await serve(data_dir, keyvault)
    try:
        code, out, err = await finished(
            await tzurot(
                "keys", "rotate", "--data-dir", str(data_dir),
                "--keyvault-addr", f"127.0.0.1:{server.port}",
            ),
            within=15,
        )  # fmt: skip
    finally:
        await server.stop(None)
    assert (code, out) == (2, ""), err
    assert err == f"tzurot: master key file {key_file} is a FIFO, not a regular file\n"
    assert keyvault.asked == 0
    assert stat.S_ISFIFO(os.lstat(key_file).st_mode)


def looks_regular(monkeypatch: Any, path: Path) -> list[Path]:
    """`path` looks like a regular file to the first look (os.stat), as it did before it was
    swapped for a FIFO, by whatever spelling it is looked at (the command looks at the file
    `path` resolves to); the looks faked, for the test to check there was one."""
    real_stat = os.stat
    regular = real_stat(path.with_name("regular"))
    faked: list[Path] = []

    def stat_(file: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        if os.path.realpath(file) != os.path.realpath(path):
            return real_stat(file, *args, **kwargs)
        faked.append(Path(file))
        return regular

    monkeypatch.setattr(os, "stat", stat_)
    return faked


@pytest.mark.parametrize("folder", ["real", "symlinked"])
@pytest.mark.parametrize("read", [add_master_key_version, newest_master_key_version])
def test_a_fifo_swapped_in_after_the_look_is_refused_without_waiting(
    tmp_path: Path, monkeypatch: Any, read: Callable[[Path], int], folder: str
) -> None:
    """Also through a symlinked folder (a temporary folder under a symlinked /tmp): the
    swap is still met after the look, not before it."""
    (tmp_path / "real").mkdir()
    (tmp_path / "symlinked").symlink_to("real")
    (tmp_path / "real" / "regular").write_text("1:" + "A" * 43 + "=\n")
    key_file = tmp_path / folder / "master.key"
    os.mkfifo(key_file)
    faked = looks_regular(monkeypatch, key_file)

    raised = raised_within(lambda: read(key_file), key_file, 5)

    assert faked, "the first look was not faked: the test met the FIFO before the open"
    assert isinstance(raised, StartupError)
    assert str(raised) == f"master key file {key_file} is a FIFO, not a regular file"
    assert stat.S_ISFIFO(os.lstat(key_file).st_mode)


def test_a_key_file_that_is_not_utf8_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "master.key"
    key_file.write_bytes(b"1:\xff\xfe\n")
    before = key_file.read_bytes()

    with pytest.raises(typer.Exit) as exit_:
        keys_add_version(master_key_file=key_file)

    assert exit_.value.exit_code == 2
    assert capsys.readouterr().err == f"tzurot: master key file {key_file} is not UTF-8 text\n"
    assert key_file.read_bytes() == before
