"""The files an answer carries (generated images), saved where the terminal user can open them.

The gateway's `GenerationFinished.files` are the answer's attachments (the bot posts them on
Discord); the CLI writes them into a folder instead. Their names come from the mesh, so each
is cut to a plain file name (no folder, no path traversal, no hidden file), and an existing
file is never replaced: the name gets a number (`image-1-2.png`). A file is created
exclusively (`O_EXCL`): a file or a symlink made there meanwhile is not written through.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

MAX_NAME_CHARS = 100
"""A saved name's length at most (well under every file system's 255 bytes)."""
MAX_NUMBERED = 1000
"""How many numbered names are tried before the folder counts as full of this name."""
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "text/plain": ".txt",
    "application/json": ".json",
    "application/pdf": ".pdf",
    "audio/mpeg": ".mp3",
    "audio/ogg": ".ogg",
}
"""The extension a file of these types is saved with, whatever its name says."""
DATA_EXTENSIONS = frozenset(
    {"png", "jpg", "jpeg", "webp", "gif", "avif", "txt", "md", "json", "csv", "pdf"}
    | {"mp3", "ogg", "opus", "wav", "m4a", "mp4", "webm"}
)
"""Extensions a name of another type keeps: data that opens in a viewer. Any other (`.sh`,
`.py`, `.desktop`, `.svg`, none: `Makefile`) becomes `.bin`, so nothing saved into the current
folder is a script or a build file that a tool there would run."""
UNKNOWN_EXTENSION = ".bin"


class AnswerFile(Protocol):
    """What the CLI reads of a `common.GeneratedFile`."""

    @property
    def filename(self) -> str: ...

    @property
    def content_type(self) -> str: ...

    @property
    def data(self) -> bytes: ...


class FilesNotSaved(Exception):
    """An answer's files could not all be written; `saved` are those that were, `job_id` the
    answer's job (set by the caller that knows it)."""

    def __init__(self, directory: Path, error: OSError, saved: Sequence[Path]) -> None:
        self.directory, self.error, self.saved = directory, error, tuple(saved)
        self.job_id = ""
        why = error.strerror or str(error)
        where = error.filename or directory
        super().__init__(f"cannot save the answer's files in {directory}: {why} ({where})")

    def explained(self) -> str:
        """The one line the user reads: what failed, and that the turn was not confirmed."""
        job = f" (job {self.job_id})" if self.job_id else ""
        return (
            f"{self}; the answer was not confirmed as delivered, so it is not kept in the "
            f"conversation's history{job}; choose another folder with --files-dir"
        )


def safe_filename(name: str, content_type: str, number: int) -> str:
    """`name` as a plain file name: its last path part only (either slash), characters other
    than letters, digits, `.`, `_` and `-` made `_`, no leading dot (no hidden file, no `..`),
    at most MAX_NAME_CHARS; `image-<number>` when nothing is left. The extension is the
    content type's when it is a known type (a `.sh` name on a PNG is saved as `.png`), else
    the name's own when it is one of DATA_EXTENSIONS, else `.bin`."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _UNSAFE.sub("_", base).lstrip("._-")
    stem, dot, ext = cleaned.rpartition(".")
    if not dot:
        stem, ext = cleaned, ""
    if not stem.strip("._-"):
        stem = f"image-{number}"
    known = _EXTENSIONS.get(content_type.lower())
    if known is not None:
        suffix = known
    elif ext.lower() in DATA_EXTENSIONS:
        suffix = f".{ext.lower()}"
    else:
        suffix = UNKNOWN_EXTENSION
    return stem[: MAX_NAME_CHARS - len(suffix)] + suffix


def _candidates(name: str) -> list[str]:
    """`name`, then `stem-1.ext`, `stem-2.ext`, …"""
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, dot, ext = name, "", ""
    return [name] + [f"{stem}-{n}{dot}{ext}" for n in range(1, MAX_NUMBERED)]


def _write_new(directory: Path, name: str, data: bytes) -> Path:
    """Writes `data` into a file of `directory` that did not exist (`name` or a numbered
    one); its path. A file half written is removed."""
    for candidate in _candidates(name):
        path = directory / candidate
        try:
            out = path.open("xb")  # O_CREAT | O_EXCL: never an existing file, nor a symlink
        except FileExistsError:
            continue
        try:
            with out:
                out.write(data)
        except OSError:
            path.unlink(missing_ok=True)
            raise
        return path
    raise FileExistsError(17, "no free file name", str(directory / name))


def save_files(
    files: Sequence[AnswerFile], directory: Path, saved: Callable[[Path], None] = lambda _: None
) -> list[Path]:
    """Writes each file into `directory` (made when missing) under a free, safe name, in
    order; `saved` is told each path as soon as it is written. Raises FilesNotSaved at the
    first that cannot be (the ones before stay: they were paid for)."""
    paths: list[Path] = []
    if not files:
        return paths
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for number, file in enumerate(files, start=1):
            name = safe_filename(file.filename, file.content_type, number)
            path = _write_new(directory, name, file.data)
            paths.append(path)
            saved(path)
    except OSError as exc:
        raise FilesNotSaved(directory, exc, paths) from exc
    return paths
