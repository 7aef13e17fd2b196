"""The bot's side of skills: status lines and generated files within Discord's limits."""

from __future__ import annotations

from tzurot.bot.skill_output import (
    MAX_FILES,
    discord_files,
    status_line,
    upload_batches,
)
from tzurot.v1 import common_pb2 as common

MIB = 1024 * 1024


def test_status_lines_name_the_work_but_not_a_stealth_skill() -> None:
    assert status_line("Lilith", "web_research") == "-# Lilith is researching the web…"
    assert status_line("Lilith", "generate_image") == "-# Lilith is drawing…"
    assert status_line("Lilith", "memory_search") == "-# Lilith is thinking…"


def image(name: str, size: int) -> common.GeneratedFile:
    return common.GeneratedFile(filename=name, content_type="image/png", data=bytes(size))


def names(batches: list[list[common.GeneratedFile]]) -> list[list[str]]:
    return [[f.filename for f in batch] for batch in batches]


def test_the_upload_limit_is_per_file_not_per_message() -> None:
    """Two 6 MiB images go in one message: Discord's 10 MiB is each file's limit."""
    assert names(upload_batches([image("a", 6 * MIB), image("b", 6 * MIB)])) == [["a", "b"]]


def test_a_file_over_the_servers_limit_is_left_out_and_a_boosted_server_takes_it() -> None:
    files = [image("big", 11 * MIB), image("small", 1)]
    assert names(upload_batches(files)) == [["small"]]  # 10 MiB by default
    assert names(upload_batches(files, filesize_limit=50 * MIB)) == [["big", "small"]]


def test_a_request_stays_within_25_mib_and_the_rest_follows() -> None:
    files = [image("a", 9 * MIB), image("b", 9 * MIB), image("c", 9 * MIB)]
    assert names(upload_batches(files, filesize_limit=50 * MIB)) == [["a", "b"], ["c"]]


def test_a_message_takes_10_files_and_the_rest_follows() -> None:
    batches = upload_batches([image(str(n), 1) for n in range(MAX_FILES + 3)])
    assert [len(b) for b in batches] == [MAX_FILES, 3]
    assert [f.filename for b in batches for f in b] == [str(n) for n in range(MAX_FILES + 3)]


def test_a_file_keeps_what_it_shows_as_its_description() -> None:
    drawn = common.GeneratedFile(
        filename="image-1.png", content_type="image/png", data=b"png", description="a red moon"
    )
    (file,) = discord_files([drawn])
    assert file.description == "a red moon"
