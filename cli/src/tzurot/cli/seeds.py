"""The personality seeds `tzurot up` loads: `--seeds` names one YAML file or a folder of them.

Checked before the mesh starts, so a mistake is one line (exit 2) instead of a mesh without
its personalities or a failure after the whole start: a path given that is not there
(`seed_files`, before anything is spawned), a file that is not a YAML mapping (`read_seeds`,
while the services import). The gateway validates each seed's fields as `up` imports it.
Only the standard library is imported here (PyYAML when the files are read).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tzurot.cli.terminal_text import printable

DEFAULT_SEEDS = Path("personalities")
"""Loaded when `--seeds` is not given, if it is there (`make run` runs from the checkout)."""


class SeedError(Exception):
    """A seed path or file `up` cannot use; the message names it, in one line."""


@dataclass(frozen=True)
class Seed:
    path: Path
    document: bytes


def seed_files(path: Path | None) -> list[Path]:
    """The seed files of `--seeds` (None: not given): the file itself, or the folder's *.yaml
    in name order. A path given that is not there is refused; DEFAULT_SEEDS may be absent."""
    where = DEFAULT_SEEDS if path is None else path
    if where.is_dir():
        return sorted(where.glob("*.yaml"))
    if where.is_file():
        return [where]
    if path is None:
        return []
    if where.exists():
        raise SeedError(f"--seeds {where} is neither a file nor a folder")
    raise SeedError(f"--seeds {where}: no such file or folder")


def read_seeds(paths: Sequence[Path]) -> list[Seed]:
    """Each file's bytes, once it reads as a YAML mapping; SeedError for the first that does not."""
    import yaml  # noqa: PLC0415 - only once the services are spawned (up's start)

    seeds = []
    for path in paths:
        try:
            document = path.read_bytes()
        except OSError as exc:
            raise SeedError(f"cannot read seed file {path}: {exc.strerror or exc}") from None
        try:
            data = yaml.safe_load(document)
        except yaml.YAMLError as exc:
            raise SeedError(f"seed file {path} is not valid YAML: {_yaml_problem(exc)}") from None
        if not isinstance(data, dict):
            raise SeedError(f"seed file {path} is not a YAML mapping of personality fields")
        seeds.append(Seed(path, document))
    return seeds


def refused_seed(path: Path, detail: str) -> SeedError:
    """The gateway's refusal of the seed at `path` (INVALID_ARGUMENT), in one line."""
    return SeedError(f"seed file {path} was refused: {' '.join(printable(detail).split())}")


def _yaml_problem(exc: Exception) -> str:
    """'line 2, column 4: expected ',' or ']', but got ':'' from PyYAML's several lines."""
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if problem and mark is not None:
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
