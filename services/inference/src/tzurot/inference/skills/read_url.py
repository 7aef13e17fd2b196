"""read_url: read a link the user gave (HTML, PDF or plain text) through the SSRF-safe
fetcher, and return its readable text (parsed by an `Extractor`: in production a child
process killed at the deadline, extract.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tzurot.inference.skills.base import SkillContext, SkillOutput
from tzurot.inference.skills.egress import SafeFetcher
from tzurot.inference.skills.extract import READABLE_TYPES, Extractor, InlineExtractor, Page


async def read_page(fetcher: SafeFetcher, url: str, pages: Extractor) -> Page:
    return await pages.extract(await fetcher.fetch(url, accept=READABLE_TYPES))


class ReadUrlSkill:
    name = "read_url"
    description = (
        "Read a web page, PDF or text file from an http(s) link (one the user gave) and "
        "return its readable text."
    )
    parameters: Mapping[str, Any] = {
        "type": "object",
        "properties": {
            "url": {
                "type": "string",
                "minLength": 8,
                "maxLength": 2048,
                "description": "The http or https link to read.",
            },
        },
        "required": ["url"],
        "additionalProperties": False,
    }
    stealth = False
    auto_memorize = False
    timeout = 20.0
    min_seconds = 0.0

    def __init__(self, fetcher: SafeFetcher, pages: Extractor | None = None) -> None:
        self._fetcher = fetcher
        self._pages = pages or InlineExtractor()

    async def run(self, args: Mapping[str, Any], ctx: SkillContext) -> SkillOutput:
        page = await read_page(self._fetcher, str(args["url"]), self._pages)
        head = f"Title: {page.title}\n" if page.title else ""
        return SkillOutput(
            text=f"{head}URL: {page.url}\n\n{page.text}",
            summary=f"{page.title or page.url}: {page.text[:160]}",
        )
