"""Readable text from a fetched page: HTML through trafilatura, PDF through pypdf, plain
text as it is. Runs in a worker thread (parsing is CPU work). Both parsers are imported on
first use: loading them is most of a second of CPU that inference's start does not need."""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass

from tzurot.inference.skills.base import SkillError
from tzurot.inference.skills.egress import Fetched

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
PDF_TYPES = frozenset({"application/pdf"})
TEXT_TYPES = frozenset({"text/plain", "text/markdown", "text/csv"})
READABLE_TYPES = HTML_TYPES | PDF_TYPES | TEXT_TYPES
MAX_PDF_PAGES = 40


@dataclass(frozen=True)
class Page:
    url: str
    title: str
    text: str


def _mime(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _charset(content_type: str) -> str:
    for part in content_type.split(";")[1:]:
        name, _, value = part.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"')
    return "utf-8"


def _decode(fetched: Fetched) -> str:
    try:
        return fetched.data.decode(_charset(fetched.content_type), errors="replace")
    except LookupError:  # an unknown charset name
        return fetched.data.decode("utf-8", errors="replace")


def _html(fetched: Fetched) -> Page:
    import trafilatura  # noqa: PLC0415 - see the module's docstring

    html = _decode(fetched)
    text = trafilatura.extract(html, url=fetched.url, favor_recall=True, include_comments=False)
    if not text:
        text = trafilatura.html2txt(html)
    meta = trafilatura.extract_metadata(html, default_url=fetched.url)
    title = (meta.title if meta is not None else None) or ""
    return Page(fetched.url, title.strip(), (text or "").strip())


def _pdf(fetched: Fetched) -> Page:
    from pypdf import PdfReader  # noqa: PLC0415 - see the module's docstring
    from pypdf.errors import PdfReadError  # noqa: PLC0415

    try:
        reader = PdfReader(io.BytesIO(fetched.data))
        texts = [page.extract_text() or "" for page in reader.pages[:MAX_PDF_PAGES]]
        title = ""
        if reader.metadata is not None and reader.metadata.title:
            title = str(reader.metadata.title)
    except (PdfReadError, ValueError, KeyError) as exc:
        raise SkillError("the PDF could not be read") from exc
    return Page(fetched.url, title.strip(), "\n\n".join(t.strip() for t in texts if t.strip()))


def extract_sync(fetched: Fetched) -> Page:
    mime = _mime(fetched.content_type)
    if mime in HTML_TYPES:
        page = _html(fetched)
    elif mime in PDF_TYPES:
        page = _pdf(fetched)
    elif mime in TEXT_TYPES:
        page = Page(fetched.url, "", _decode(fetched).strip())
    else:
        raise SkillError(f"{mime or 'this type'} is not readable")
    if not page.text:
        raise SkillError("the page has no readable text")
    return page


async def extract(fetched: Fetched) -> Page:
    return await asyncio.to_thread(extract_sync, fetched)
