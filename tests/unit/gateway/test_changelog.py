"""CHANGELOG.md parsing (Keep a Changelog) and notes cut to Discord's limit with a link."""

from __future__ import annotations

from pathlib import Path

import pytest

from tzurot.gateway.changelog import ChangelogError, find, latest, load, parse, render

SAMPLE = """# Changelog

All notable changes.

## [Unreleased]
### Added
- Something cooking.

## [0.2.0] - 2026-12-02
### Added
- Group channels.
### Fixed
- A bug.

## [0.1.0] - 2026-11-01
### Added
- First release.

[Unreleased]: https://example.org/compare/v0.2.0...HEAD
[0.2.0]: https://example.org/releases/v0.2.0
"""


def test_releases_newest_first_without_unreleased() -> None:
    releases = parse(SAMPLE)
    assert [r.version for r in releases] == ["0.2.0", "0.1.0"]
    first = latest(releases)
    assert first is not None
    assert first.date == "2026-12-02"
    assert first.notes == "### Added\n- Group channels.\n### Fixed\n- A bug."
    assert first.url == "https://example.org/releases/v0.2.0"
    assert releases[1].url == ""
    assert find(releases, "v0.1.0") == releases[1]
    assert find(releases, "9.9.9") is None


def test_not_a_changelog_is_refused() -> None:
    with pytest.raises(ChangelogError):
        parse("# Just a title\nno releases")


def test_short_notes_fit_whole_with_their_link() -> None:
    text = render(parse(SAMPLE)[0], full_url="https://x/CHANGELOG.md")
    assert text.startswith("**Tzurot 0.2.0** (2026-12-02)\n**Added**\n- Group channels.")
    assert text.endswith("Full notes: <https://example.org/releases/v0.2.0>")


def test_long_notes_are_cut_at_a_line_within_the_limit_with_a_link() -> None:
    items = "\n".join(f"- change number {i} " + "x" * 40 for i in range(200))
    release = parse(f"## [1.0.0] - 2026-12-03\n### Added\n{items}\n")[0]
    text = render(release, full_url="https://x/CHANGELOG.md")
    assert len(text) <= 2000
    assert text.endswith("…\nFull notes: <https://x/CHANGELOG.md>")
    assert "- change number 0 " in text
    assert "- change number 199" not in text
    body = text.split("\n…\n")[0]
    assert all(line.startswith(("**", "- change number")) for line in body.splitlines())


def test_the_project_changelog_parses_and_its_latest_release_renders() -> None:
    root = Path(__file__).resolve().parents[3]
    releases = load(root / "CHANGELOG.md")
    newest = latest(releases)
    assert newest is not None
    assert newest.notes
    assert len(render(newest, full_url="https://x")) <= 2000
