"""Parsing a fetched page is bounded (review 158 H2, L1): pypdf's work a content stream, PDF
pages read only until enough text is in hand, at most 256 KiB of HTML given to trafilatura;
the page-text worker is a child process with memory and CPU limits, killed at a page's time
limit or its caller's deadline and replaced; one page web_research cannot read, whatever the
reason, keeps its snippet instead of failing the (maybe paid) search."""

from __future__ import annotations

import asyncio
import io
import time
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import pytest
import trafilatura

from tzurot.inference.skills import page_text
from tzurot.inference.skills.base import SkillError
from tzurot.inference.skills.egress import Fetched, SafeFetcher
from tzurot.inference.skills.extract import ProcessExtractor, WorkerLimits, extract_sync
from tzurot.inference.skills.page_text import Page
from tzurot.inference.skills.search import SearchHit
from tzurot.inference.skills.web_research import WebResearchSkill


def shared_stream_pdf(pages: int, ops: int) -> bytes:
    """`pages` pages that all draw one content stream of `ops` text operations: the file
    stays tiny while pypdf's work grows with both."""
    content = zlib.compress(b"BT /F1 1 Tf " + b"(A) Tj " * ops + b"ET", 9)
    kids = " ".join(f"{5 + i} 0 R" for i in range(pages))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content)
        + content
        + b"\nendstream",
    ]
    objects += [
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 3 0 R >> >> /Contents 4 0 R >>"
    ] * pages
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()


def one_row_table(cells: int) -> bytes:
    return ("<html><body><table><tr>" + "<td>a</td>" * cells + "</tr></table>").encode()


ARTICLE = (
    b"<html><head><title>Fine</title></head><body><article><p>"
    + b"Readable words here. " * 50
    + b"</p></article></body></html>"
)


def test_a_pdf_past_pypdfs_stream_budget_is_refused_quickly() -> None:
    pdf = shared_stream_pdf(40, 990_000)  # ~11 KB: minutes of pypdf's default budget
    assert len(pdf) < 20_000
    started = time.process_time()
    with pytest.raises(SkillError, match="PDF could not be read"):
        extract_sync(Fetched("https://example.com/a.pdf", "application/pdf", pdf))
    assert time.process_time() - started < 5


def test_pdf_pages_are_read_until_enough_text_is_in_hand() -> None:
    pdf = shared_stream_pdf(40, 1000)  # 1,000 characters a page, 40,000 in all
    page = extract_sync(Fetched("https://example.com/a.pdf", "application/pdf", pdf))
    assert page_text.MAX_PDF_CHARS <= len(page.text) < page_text.MAX_PDF_CHARS + 2_000


def test_trafilatura_is_given_at_most_256_kib(monkeypatch: pytest.MonkeyPatch) -> None:
    given: list[int] = []
    real = trafilatura.extract

    def measuring(html: str, **kwargs: Any) -> str | None:
        given.append(len(html))
        return real(html, **kwargs)

    monkeypatch.setattr(trafilatura, "extract", measuring)
    html = ARTICLE + b"<p>" + b"x" * (1024 * 1024) + b"</p>"
    extract_sync(Fetched("https://example.com/", "text/html", html))
    assert given
    assert max(given) <= page_text.MAX_HTML_BYTES


# ---- the worker process -------------------------------------------------------------------


def limits_of(pid: int) -> str:
    return Path(f"/proc/{pid}/limits").read_text()


async def test_the_worker_reads_pages_under_its_memory_limit() -> None:
    pages = ProcessExtractor(WorkerLimits(memory_bytes=200 * 1024 * 1024, seconds=10.0))
    pages.start()
    try:
        page = await pages.extract(Fetched("https://example.com/", "text/html", ARTICLE))
        assert page.title == "Fine"
        assert "Readable words here." in page.text
        process = await pages._worker()
        assert f"{200 * 1024 * 1024}" in next(
            line for line in limits_of(process.pid).splitlines() if "address space" in line
        )
        cpu = next(line for line in limits_of(process.pid).splitlines() if "cpu time" in line)
        assert "unlimited" not in cpu.split()[3]  # the soft limit is set a page
        with pytest.raises(SkillError, match="PDF could not be read"):
            await pages.extract(
                Fetched(
                    "https://example.com/a.pdf", "application/pdf", shared_stream_pdf(40, 990_000)
                )
            )
        assert pages.started == 1  # a refused page does not cost the worker
    finally:
        await pages.aclose()


async def test_a_page_past_its_time_kills_the_worker_and_another_starts() -> None:
    pages = ProcessExtractor(WorkerLimits(seconds=0.5))
    pages.start()
    try:
        first = await pages._worker()
        started = time.monotonic()
        with pytest.raises(SkillError, match=r"longer than 0\.5 s"):
            await pages.extract(Fetched("https://example.com/", "text/html", one_row_table(25_000)))
        assert time.monotonic() - started < 3
        assert await asyncio.wait_for(first.wait(), 5) is not None  # killed
        page = await pages.extract(Fetched("https://example.com/", "text/html", ARTICLE))
        assert page.title == "Fine"
        assert pages.started == 2
    finally:
        await pages.aclose()


async def test_a_cancelled_read_kills_the_parse_with_it() -> None:
    """The skill's deadline (loop.py's asyncio.timeout) cancels the call: the parse stops
    too, where a thread kept running for minutes."""
    pages = ProcessExtractor(WorkerLimits(seconds=30.0))
    pages.start()
    try:
        first = await pages._worker()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await pages.extract(
                    Fetched("https://example.com/", "text/html", one_row_table(25_000))
                )
        assert await asyncio.wait_for(first.wait(), 5) is not None
        assert pages.started == 2
    finally:
        await pages.aclose()


# ---- web_research keeps going past a page it cannot read ---------------------------------


class Backend:
    async def search(self, query: str, count: int, ctx: object) -> list[SearchHit]:
        return [
            SearchHit("Bad", "https://bad.example/a.pdf", "bad snippet"),
            SearchHit("Good", "https://good.example/", "good snippet"),
        ]


class Fetcher:
    async def fetch(self, url: str, accept: object = None) -> Fetched:
        return Fetched(url, "text/html", b"")


class Pages:
    async def extract(self, fetched: Fetched) -> Page:
        if "bad" in fetched.url:
            raise RuntimeError("LimitReachedError: pypdf gave up")  # not a SkillError
        return Page(fetched.url, "Good", "the good source's text")


async def test_one_page_that_fails_oddly_does_not_fail_web_research() -> None:
    skill = WebResearchSkill(cast(Any, Backend()), cast(SafeFetcher, Fetcher()), pages=Pages())
    args: Mapping[str, Any] = {"query": "anything", "max_sources": 2}
    out = await skill.run(args, cast(Any, type("Ctx", (), {"user_id": ""})()))
    assert "the good source's text" in out.text
    assert "bad snippet (the page was not read" in out.text
