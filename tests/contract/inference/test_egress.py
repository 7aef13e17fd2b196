"""read_url's fetcher against loopback pages: what is read, and every way SSRF is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tzurot.inference.skills.egress import EgressPolicy, FetchRefused, SafeFetcher, is_public
from tzurot.inference.skills.extract import READABLE_TYPES, extract
from tzurot.testing.fake_web import LocalPages

pytestmark = pytest.mark.contract


@pytest.fixture
async def pages() -> AsyncIterator[LocalPages]:
    async with LocalPages(huge_bytes=3 * 1024 * 1024, slow_seconds=5.0) as served:
        yield served


def allowing(pages: LocalPages, **policy: object) -> SafeFetcher:
    base: dict[str, object] = {
        "allow": frozenset({pages.origin}),
        "timeout": 2.0,
        "max_bytes": 1024 * 1024,
    }
    return SafeFetcher(EgressPolicy(**{**base, **policy}))  # type: ignore[arg-type]


async def read(fetcher: SafeFetcher, url: str) -> str:
    return (await extract(await fetcher.fetch(url, accept=READABLE_TYPES))).text


async def test_html_pdf_and_plain_text_are_read(pages: LocalPages) -> None:
    fetcher = allowing(pages)
    html = await read(fetcher, f"{pages.base_url}/article")
    assert "crew of six" in html
    assert "Home | About" not in html
    assert "revenue grew by 12 percent" in await read(fetcher, f"{pages.base_url}/report.pdf")
    assert await read(fetcher, f"{pages.base_url}/notes.txt") == (
        "Plain notes: the meeting moved to Thursday."
    )


async def test_without_the_test_allow_list_loopback_is_refused_before_connecting(
    pages: LocalPages,
) -> None:
    fetcher = SafeFetcher(EgressPolicy())  # the default: nothing private allowed
    with pytest.raises(FetchRefused, match="private, local or metadata"):
        await fetcher.fetch(f"{pages.base_url}/article", accept=READABLE_TYPES)
    assert pages.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://10.0.0.1/",
        "http://192.168.1.1/admin",
        "http://[::1]:8080/",
        "http://[::ffff:127.0.0.1]/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://127.0.0.2/",
    ],
)
async def test_private_loopback_link_local_and_metadata_addresses_are_refused(url: str) -> None:
    with pytest.raises(FetchRefused, match="private, local or metadata"):
        await SafeFetcher(EgressPolicy()).fetch(url, accept=READABLE_TYPES)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("file:///etc/passwd", "only http and https"),
        ("gopher://example.com/", "only http and https"),
        ("http://user:pass@example.com/", "credentials"),
        ("http:///nohost", "no host"),
    ],
)
async def test_other_schemes_credentials_and_hostless_links_are_refused(url: str, why: str) -> None:
    with pytest.raises(FetchRefused, match=why):
        await SafeFetcher(EgressPolicy()).fetch(url, accept=READABLE_TYPES)


async def test_a_name_resolving_to_a_private_address_is_refused_no_rebinding(
    pages: LocalPages,
) -> None:
    answers = iter([["93.184.215.14", "10.1.2.3"]])  # one public, one private: refused

    async def resolve(host: str, port: int) -> list[str]:
        return next(answers)

    fetcher = SafeFetcher(EgressPolicy(), resolve=resolve)
    with pytest.raises(FetchRefused, match="private"):
        await fetcher.fetch("http://rebind.example/", accept=READABLE_TYPES)


async def test_the_checked_address_is_the_one_connected_to(pages: LocalPages) -> None:
    """A name is resolved once: its (allowed) address is where the request goes, with the
    name kept in the Host header."""
    resolved: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        resolved.append(host)
        return ["127.0.0.1"]

    fetcher = SafeFetcher(
        EgressPolicy(allow=frozenset({f"pages.test:{pages.port}"}), timeout=2.0),
        resolve=resolve,
    )
    fetched = await fetcher.fetch(
        f"http://pages.test:{pages.port}/notes.txt", accept=READABLE_TYPES
    )
    assert fetched.data.startswith(b"Plain notes")
    assert resolved == ["pages.test"]


async def test_a_redirect_to_a_private_address_is_refused(pages: LocalPages) -> None:
    with pytest.raises(FetchRefused, match="private"):
        await allowing(pages).fetch(f"{pages.base_url}/to-private", accept=READABLE_TYPES)


async def test_redirects_are_followed_within_the_limit(pages: LocalPages) -> None:
    fetched = await allowing(pages).fetch(f"{pages.base_url}/hop/2", accept=READABLE_TYPES)
    assert fetched.url.endswith("/article")
    with pytest.raises(FetchRefused, match="more than 3 redirects"):
        await allowing(pages).fetch(f"{pages.base_url}/hop/5", accept=READABLE_TYPES)


async def test_huge_bodies_are_refused_declared_or_not(pages: LocalPages) -> None:
    with pytest.raises(FetchRefused, match="larger than 1024 KiB"):
        await allowing(pages).fetch(f"{pages.base_url}/huge", accept=READABLE_TYPES)
    with pytest.raises(FetchRefused, match="larger than 1024 KiB"):
        await allowing(pages).fetch(f"{pages.base_url}/huge-undeclared", accept=READABLE_TYPES)


async def test_a_slow_body_runs_out_of_time(pages: LocalPages) -> None:
    with pytest.raises(FetchRefused, match=r"did not load within 0\.5 s"):
        await allowing(pages, timeout=0.5).fetch(f"{pages.base_url}/slow", accept=READABLE_TYPES)


async def test_unreadable_types_are_refused_before_the_body(pages: LocalPages) -> None:
    with pytest.raises(FetchRefused, match="application/octet-stream"):
        await allowing(pages).fetch(f"{pages.base_url}/binary", accept=READABLE_TYPES)


def test_public_addresses_are_public() -> None:
    import ipaddress

    assert is_public(ipaddress.ip_address("93.184.215.14"))
    assert is_public(ipaddress.ip_address("2606:4700::1111"))
    assert not is_public(ipaddress.ip_address("169.254.169.254"))
    assert not is_public(ipaddress.ip_address("::ffff:10.0.0.1"))
