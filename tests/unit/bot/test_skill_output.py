"""The bot's side of skills: status lines and generated files within Discord's limits."""

from __future__ import annotations

from tzurot.bot.skill_output import MAX_FILES, MAX_UPLOAD_BYTES, discord_files, status_line
from tzurot.v1 import common_pb2 as common


def test_status_lines_name_the_work_but_not_a_stealth_skill() -> None:
    assert status_line("Lilith", "web_research") == "-# Lilith is researching the web…"
    assert status_line("Lilith", "generate_image") == "-# Lilith is drawing…"
    assert status_line("Lilith", "memory_search") == "-# Lilith is thinking…"


def test_files_fit_one_message() -> None:
    big = common.GeneratedFile(filename="a.png", content_type="image/png", data=b"x" * (6 << 20))
    small = common.GeneratedFile(filename="b.png", content_type="image/png", data=b"y")
    files = discord_files([big, big, small])
    assert [f.filename for f in files] == ["a.png"]  # a second 6 MiB would pass 10 MiB
    many = discord_files([small] * (MAX_FILES + 3))
    assert len(many) == MAX_FILES
    assert 2 * len(big.data) > MAX_UPLOAD_BYTES


def test_a_file_keeps_what_it_shows_as_its_description() -> None:
    drawn = common.GeneratedFile(
        filename="image-1.png", content_type="image/png", data=b"png", description="a red moon"
    )
    (file,) = discord_files([drawn])
    assert file.description == "a red moon"
