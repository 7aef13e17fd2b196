"""CHANGELOG.md in Keep a Changelog format: its releases, and a release's notes for Discord.

    ## [Unreleased]
    ## [0.2.0] - 2026-12-02
    ### Added
    - ...
    [0.2.0]: https://example.org/compare/v0.1.0...v0.2.0

A release is a level-2 heading `[version]` with an optional ` - YYYY-MM-DD`; its notes run
to the next level-2 heading or the link definitions. `Unreleased` is never announced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

DISCORD_MESSAGE_LIMIT = 2000

_HEADING = re.compile(r"^##\s+\[?(?P<version>[^\]\s]+)\]?(?:\s+-\s+(?P<date>\S+))?\s*$")
_LINK = re.compile(r"^\[(?P<label>[^\]]+)\]:\s*(?P<url>\S+)\s*$")


@dataclass(frozen=True)
class Release:
    version: str
    date: str
    notes: str
    url: str = ""


class ChangelogError(ValueError):
    """The file is not in Keep a Changelog form."""


def parse(text: str) -> list[Release]:
    """The releases, newest first (the file's order), Unreleased excluded."""
    links: dict[str, str] = {}
    sections: list[tuple[str, str, list[str]]] = []
    for line in text.splitlines():
        link = _LINK.match(line)
        if link:
            links[link["label"].casefold()] = link["url"]
            continue
        heading = _HEADING.match(line)
        if heading:
            sections.append((heading["version"], heading["date"] or "", []))
        elif line.startswith("# ") and not sections:
            continue
        elif sections:
            sections[-1][2].append(line)
    if not sections:
        raise ChangelogError("no '## [version]' section")
    return [
        Release(version, day, "\n".join(lines).strip(), links.get(version.casefold(), ""))
        for version, day, lines in sections
        if version.casefold() != "unreleased"
    ]


def load(path: Path) -> list[Release]:
    return parse(path.read_text(encoding="utf-8"))


def latest(releases: list[Release]) -> Release | None:
    return releases[0] if releases else None


def find(releases: list[Release], version: str) -> Release | None:
    wanted = version.removeprefix("v")
    return next((r for r in releases if r.version.removeprefix("v") == wanted), None)


def render(release: Release, *, full_url: str, limit: int = DISCORD_MESSAGE_LIMIT) -> str:
    """The notes as one Discord message: whole lines while they fit, then a link to the rest."""
    title = f"**Tzurot {release.version}**" + (f" ({release.date})" if release.date else "")
    body = _discord_markdown(release.notes)
    whole = f"{title}\n{body}".strip()
    link = release.url or full_url
    if len(whole) <= limit:
        suffix = f"\n\nFull notes: <{link}>" if link else ""
        return whole + suffix if len(whole + suffix) <= limit else whole
    tail = f"\n…\nFull notes: <{link}>" if link else "\n…"
    room = limit - len(tail)
    kept: list[str] = []
    used = 0
    for line in whole.splitlines():
        cost = len(line) + (1 if kept else 0)
        if used + cost > room:
            if not kept:  # one huge first line: cut it
                kept.append(line[:room])
            break
        kept.append(line)
        used += cost
    return "\n".join(kept) + tail


def _discord_markdown(notes: str) -> str:
    """Level-3 headings ("### Added") as bold lines: Discord shows them smaller that way."""
    out = []
    for line in notes.splitlines():
        if line.startswith("### "):
            out.append(f"**{line[4:].strip()}**")
        else:
            out.append(line)
    return "\n".join(out)
