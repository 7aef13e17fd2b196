"""`tzurot keys rotate`'s flow: under the key file's rotation lock, ask keyvault where the
rotation stands, add a master key version, then rewrap with a progress bar, saying what stays
behind when it fails (tzurot.cli.keys has the why). Told not to add one, it only rewraps:
no lock, the key file not even read."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
from rich.progress import Progress as Bar

from tzurot.cli.keys import Progress, rewrap_keys, rewrap_status, rotation_lock
from tzurot.cli.keys_file import NotDurable, add_master_key_version, newest_master_key_version
from tzurot.runtime.errors import StartupError


async def rotate_master_key(
    key_file: Path, keyvault_addr: str, certs: Path, *, add_version: bool, batch_size: int
) -> int:
    """The rotation, start to end, with the lock held throughout when it adds a version (a
    second run raises RotationRunning before it asks keyvault anything); `--no-add-version`
    neither reads nor writes `key_file` and takes no lock. The version goes only to the file
    the lock resolved `key_file` to (re-linked while keyvault answered: refused). A version
    added whose folder sync failed stops it before the rewrap, saying how to finish. Returns
    the exit code."""
    with rotation_lock(key_file) if add_version else contextlib.nullcontext() as locked:
        added = None
        if add_version:
            status = await rewrap_status(keyvault_addr, certs)  # reachable, and we may rotate
            newest = newest_master_key_version(key_file)
            if status.version != newest:  # it re-read its key file: this one, or another
                print(
                    f"tzurot: keyvault at {keyvault_addr} has master key version "
                    f"{status.version} as its newest, {key_file} has {newest}: keyvault does "
                    "not read that file (check --data-dir and --keyvault-addr); no version "
                    "was added",
                    file=sys.stderr,
                )
                return 2
            try:
                added = add_master_key_version(key_file, locked=locked)  # the file locked
            except NotDurable as exc:  # in the file, not rewrapped: how to finish it
                raise StartupError(
                    f"{exc}; run `sync`, then `tzurot keys rotate --no-add-version` to finish "
                    "the rotation (`keys rotate` alone would add another version)"
                ) from None
            print(f"Added master key version {added} to {key_file}")
        try:
            last = await _rewrapped(keyvault_addr, certs, batch_size)
        except BaseException:
            if added is not None:
                print(
                    f"tzurot: master key version {added} stays in {key_file} (keyvault may "
                    "already use it); `tzurot keys rotate --no-add-version` finishes the "
                    "rotation",
                    file=sys.stderr,
                )
            raise
    if last is not None:
        print(f"All {last.rewrapped} stale keys now use master key version {last.version}.")
    if last is not None and added is not None and last.version != added:
        print(
            f"tzurot: keyvault re-wrapped to version {last.version}, not to the version "
            f"{added} added to {key_file}: check that keyvault reads that file",
            file=sys.stderr,
        )
        return 1
    return 0


async def _rewrapped(keyvault_addr: str, certs: Path, batch_size: int) -> Progress | None:
    with Bar(
        TextColumn("re-wrapping to version {task.fields[version]}"),
        BarColumn(),
        MofNCompleteColumn(),
    ) as bar:
        task = bar.add_task("rewrap", total=None, version="?")
        last = None
        async for step in rewrap_keys(keyvault_addr, certs, batch_size=batch_size):
            bar.update(task, completed=step.rewrapped, total=step.total, version=step.version)
            last = step
    return last
