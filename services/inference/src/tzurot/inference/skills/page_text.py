"""Readable text from a fetched page, bounded: HTML through trafilatura, PDF through pypdf,
plain text as it is.

Parsing what a stranger's server sent is where read_url and web_research can be made to
spend minutes and hundreds of MB (review 158 H2: a 10 KB PDF whose pages share one huge
content stream, a single-row HTML table of 2 MiB, quadratic in trafilatura). So the work is
bounded here, wherever it runs: at most `MAX_HTML_BYTES` of HTML reach trafilatura, pypdf
parses a content stream with at most `PDF_STREAM_WORK` operations, and PDF pages are read
only until `MAX_PDF_CHARS` characters are in hand (the model sees at most a few thousand).
`extract.py` runs this in a child process with memory and CPU limits, killed at the skill's
deadline; only the standard library is imported here at module level, so that child starts
small, and the parsers load on first use (most of a second of CPU inference's start does
not need).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
PDF_TYPES = frozenset({"application/pdf"})
TEXT_TYPES = frozenset({"text/plain", "text/markdown", "text/csv"})
READABLE_TYPES = HTML_TYPES | PDF_TYPES | TEXT_TYPES
MAX_PDF_PAGES = 40
MAX_PDF_CHARS = 8_000
"""PDF pages are read until this much text is in hand (web_research keeps 1,500 characters
a source; read_url's result is cut to `skill_result_tokens`)."""
PDF_STREAM_WORK = 100_000
"""pypdf's `stream_parsing_work_maximum_count` (its default is 2,000,000, which one page of a
10 KB PDF spends in tens of seconds); a real page's stream needs a few thousand."""
MAX_HTML_BYTES = 256 * 1024
"""What trafilatura is given at most (its table handling is quadratic in a row's cells)."""
MAX_TEXT_CHARS = 100_000
"""A page's text at most (the model sees far less)."""


class Unreadable(Exception):
    """The page has no text to give; the message is for the model."""


@dataclass(frozen=True)
class Page:
    url: str
    title: str
    text: str


def load_parsers() -> None:
    """Imports trafilatura and pypdf (what a worker does before its first page)."""
    import pypdf  # noqa: F401, PLC0415 - see the module's docstring
    import trafilatura  # noqa: F401, PLC0415


def mime(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _charset(content_type: str) -> str:
    for part in content_type.split(";")[1:]:
        name, _, value = part.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"')
    return "utf-8"


def _decode(data: bytes, content_type: str) -> str:
    try:
        return data.decode(_charset(content_type), errors="replace")
    except LookupError:  # an unknown charset name
        return data.decode("utf-8", errors="replace")


def _html(url: str, content_type: str, data: bytes) -> Page:
    import trafilatura  # noqa: PLC0415 - see the module's docstring

    html = _decode(data[:MAX_HTML_BYTES], content_type)
    try:
        text = trafilatura.extract(html, url=url, favor_recall=True, include_comments=False)
        if not text:
            text = trafilatura.html2txt(html)
        meta = trafilatura.extract_metadata(html, default_url=url)
    except (ValueError, TypeError, LookupError, RecursionError) as exc:
        raise Unreadable("the page could not be read") from exc
    title = (meta.title if meta is not None else None) or ""
    return Page(url, title.strip(), (text or "").strip())


def _pdf(url: str, data: bytes) -> Page:
    import pypdf  # noqa: PLC0415 - see the module's docstring
    from pypdf.errors import PyPdfError  # noqa: PLC0415

    texts: list[str] = []
    collected = 0
    try:
        # A ContextVar: set around the work, in the thread or process that parses.
        with pypdf.apply_configuration(stream_parsing_work_maximum_count=PDF_STREAM_WORK):
            reader = pypdf.PdfReader(io.BytesIO(data))
            for page in reader.pages[:MAX_PDF_PAGES]:
                text = (page.extract_text() or "").strip()
                if text:
                    texts.append(text)
                    collected += len(text)
                if collected >= MAX_PDF_CHARS:
                    break
            title = ""
            if reader.metadata is not None and reader.metadata.title:
                title = str(reader.metadata.title)
    except (PyPdfError, ValueError, KeyError, TypeError, IndexError, RecursionError) as exc:
        raise Unreadable("the PDF could not be read") from exc
    return Page(url, title.strip(), "\n\n".join(texts))


def page_from(url: str, content_type: str, data: bytes) -> Page:
    """The readable text of `data` (served as `content_type` from `url`); Unreadable when
    there is none or the parser gives up."""
    kind = mime(content_type)
    if kind in HTML_TYPES:
        page = _html(url, content_type, data)
    elif kind in PDF_TYPES:
        page = _pdf(url, data)
    elif kind in TEXT_TYPES:
        page = Page(url, "", _decode(data, content_type).strip())
    else:
        raise Unreadable(f"{kind or 'this type'} is not readable")
    if not page.text:
        raise Unreadable("the page has no readable text")
    if len(page.text) > MAX_TEXT_CHARS:
        page = Page(page.url, page.title, page.text[:MAX_TEXT_CHARS])
    return page
