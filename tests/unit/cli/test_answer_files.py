"""An answer's files are saved under safe names, never over an existing file, never through a
path the mesh chose (tzurot.cli.answer_files)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tzurot.cli.answer_files import FilesNotSaved, safe_filename, save_files
from tzurot.v1 import common_pb2 as common

PNG = b"\x89PNG\r\n\x1a\nfake"


def image(name: str, data: bytes = PNG, content_type: str = "image/png") -> common.GeneratedFile:
    return common.GeneratedFile(filename=name, content_type=content_type, data=data)


@pytest.mark.parametrize(
    ("given", "saved"),
    [
        ("notes.txt", "notes.txt"),  # a type not known here keeps a data extension
        ("song.MP3", "song.mp3"),
        ("x." + "e" * 150, "x.bin"),  # not a long one: no hidden, no overlong name
        ("a" * 300 + "." + "b" * 200, "a" * 96 + ".bin"),
        ("conftest.py", "conftest.bin"),  # nothing a tool in the folder would run
        ("run.sh", "run.bin"),
        ("Makefile", "Makefile.bin"),
        ("evil.desktop", "evil.bin"),
        ("drawing.svg", "drawing.bin"),  # scripts run when a browser opens it
    ],
)
def test_an_unknown_types_name_keeps_only_a_data_extension(given: str, saved: str) -> None:
    assert safe_filename(given, "application/octet-stream", 3) == saved


@pytest.mark.parametrize(
    ("given", "saved"),
    [
        ("image-1.png", "image-1.png"),
        ("../../etc/passwd", "passwd.png"),
        ("/etc/cron.d/evil", "evil.png"),
        ("..\\..\\windows\\boot.ini", "boot.png"),  # a PNG is saved as one
        ("evil.sh", "evil.png"),
        ("a" * 300 + "." + "b" * 200, "a" * 96 + ".png"),
        ("x." + "e" * 150, "x.png"),
        ("..", "image-3.png"),
        ("", "image-3.png"),
        (".bashrc", "bashrc.png"),
        ("a moon; rm -rf ~.png", "a_moon_rm_-rf_.png"),
        ("line\nbreak\x00.png", "line_break_.png"),
        ("x" * 300 + ".png", "x" * 96 + ".png"),
    ],
)
def test_a_name_from_the_mesh_becomes_a_plain_file_name(given: str, saved: str) -> None:
    assert safe_filename(given, "image/png", 3) == saved


def test_a_known_types_extension_wins_over_the_names() -> None:
    assert safe_filename("notes.py", "text/plain", 1) == "notes.txt"
    assert safe_filename("voice", "audio/mpeg", 1) == "voice.mp3"


def test_files_are_written_in_order_into_a_folder_made_for_them(tmp_path: Path) -> None:
    folder = tmp_path / "new" / "folder"
    told: list[Path] = []
    paths = save_files([image("image-1.png"), image("image-2.png", b"two")], folder, told.append)
    assert paths == told == [folder / "image-1.png", folder / "image-2.png"]
    assert [p.read_bytes() for p in paths] == [PNG, b"two"]


def test_an_existing_file_is_never_replaced(tmp_path: Path) -> None:
    (tmp_path / "image-1.png").write_bytes(b"mine")
    (tmp_path / "image-1-1.png").write_bytes(b"mine too")
    paths = save_files([image("image-1.png"), image("image-1.png", b"again")], tmp_path)
    assert paths == [tmp_path / "image-1-2.png", tmp_path / "image-1-3.png"]
    assert (tmp_path / "image-1.png").read_bytes() == b"mine"
    assert (tmp_path / "image-1-1.png").read_bytes() == b"mine too"
    assert [p.read_bytes() for p in paths] == [PNG, b"again"]


def test_a_symlink_in_the_way_is_not_written_through(tmp_path: Path) -> None:
    target = tmp_path / "target"
    folder = tmp_path / "files"
    folder.mkdir()
    os.symlink(target, folder / "image-1.png")  # dangling: open(..., "w") would create target
    (path,) = save_files([image("image-1.png")], folder)
    assert path == folder / "image-1-1.png"
    assert not target.exists()


def test_a_folder_that_cannot_be_made_says_so(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(FilesNotSaved) as raised:
        save_files([image("image-1.png")], blocker / "images")
    assert raised.value.saved == ()
    assert str(raised.value).startswith(f"cannot save the answer's files in {blocker / 'images'}")


def test_no_files_no_folder(tmp_path: Path) -> None:
    assert save_files([], tmp_path / "never") == []
    assert not (tmp_path / "never").exists()
