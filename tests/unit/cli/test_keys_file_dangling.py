"""`tzurot keys` on a master key path that is a symlink to nothing (a missing mount) says so
in one line, exit 2 (it said "No such file or directory", naming only the link), and makes
nothing: no key file through the link, no lock file."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import typer

from tzurot.cli.__main__ import keys_add_version
from tzurot.cli.keys import add_master_key_version, newest_master_key_version
from tzurot.runtime.errors import StartupError


@pytest.mark.parametrize("read", [add_master_key_version, newest_master_key_version])
def test_a_dangling_symlink_is_named_as_one(tmp_path: Path, read: Callable[[Path], int]) -> None:
    key_file = tmp_path / "master.key"
    key_file.symlink_to("mount/master.key")
    with pytest.raises(StartupError) as caught:
        read(key_file)
    assert str(caught.value) == (
        f"master key file {key_file} is a symlink to a missing file (mount/master.key)"
    )
    assert os.listdir(tmp_path) == ["master.key"]


def test_add_version_on_a_dangling_symlink_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "master.key"
    key_file.symlink_to("missing.key")
    with pytest.raises(typer.Exit) as exit_:
        keys_add_version(master_key_file=key_file)
    assert exit_.value.exit_code == 2
    assert capsys.readouterr().err == (
        f"tzurot: master key file {key_file} is a symlink to a missing file (missing.key)\n"
    )
    assert os.listdir(tmp_path) == ["master.key"]
