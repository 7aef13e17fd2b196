"""SafeFetcher at the edges (review 158 L2): an IPv6 literal's Host header keeps its
brackets; every checked address is tried, IPv4 first; a port other than 80 or 443 (which
inference's NetworkPolicy would silently drop) is refused at once; IPv6 carrying a private
IPv4 (6to4) or site-local is not public."""

from __future__ import annotations

import ipaddress
import time

import httpx2 as httpx
import pytest

from tzurot.inference.skills.egress import EgressPolicy, FetchRefused, SafeFetcher, is_public
from tzurot.inference.skills.extract import READABLE_TYPES

pytestmark = pytest.mark.contract


def answering(
    seen: list[httpx.Request], unreachable: frozenset[str] = frozenset()
) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host in unreachable:
            raise httpx.ConnectError("unreachable", request=request)
        return httpx.Response(200, text="hello", headers={"content-type": "text/plain"})

    return httpx.MockTransport(answer)


async def test_an_ipv6_literal_keeps_its_brackets_in_the_host_header() -> None:
    seen: list[httpx.Request] = []
    fetcher = SafeFetcher(EgressPolicy(), transport=answering(seen))
    fetched = await fetcher.fetch("http://[2606:4700:4700::1111]/", accept=READABLE_TYPES)
    assert fetched.data == b"hello"
    assert seen[0].headers["host"] == "[2606:4700:4700::1111]"


async def test_every_resolved_address_is_tried_ipv4_first() -> None:
    seen: list[httpx.Request] = []

    async def resolve(host: str, port: int) -> list[str]:
        return ["2606:2800:220:1::1", "93.184.215.14", "93.184.215.15"]

    transport = answering(seen, unreachable=frozenset({"93.184.215.14"}))
    fetcher = SafeFetcher(EgressPolicy(), resolve=resolve, transport=transport)
    fetched = await fetcher.fetch("http://dual.example/", accept=READABLE_TYPES)
    assert fetched.data == b"hello"
    assert [r.url.host for r in seen] == ["93.184.215.14", "93.184.215.15"]
    assert seen[1].headers["host"] == "dual.example"


async def test_no_address_reachable_is_refused() -> None:
    seen: list[httpx.Request] = []

    async def resolve(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "2606:2800:220:1::1"]

    transport = answering(seen, unreachable=frozenset({"93.184.215.14", "2606:2800:220:1::1"}))
    fetcher = SafeFetcher(EgressPolicy(), resolve=resolve, transport=transport)
    with pytest.raises(FetchRefused, match="could not be reached"):
        await fetcher.fetch("http://down.example/", accept=READABLE_TYPES)
    assert len(seen) == 2


@pytest.mark.parametrize("url", ["http://93.184.215.14:8080/", "https://example.com:8443/"])
async def test_a_port_the_network_policy_drops_is_refused_at_once(url: str) -> None:
    seen: list[httpx.Request] = []

    async def resolve(host: str, port: int) -> list[str]:
        return ["93.184.215.14"]

    fetcher = SafeFetcher(EgressPolicy(), resolve=resolve, transport=answering(seen))
    started = time.monotonic()
    with pytest.raises(FetchRefused, match="only ports 80 and 443"):
        await fetcher.fetch(url, accept=READABLE_TYPES)
    assert time.monotonic() - started < 1
    assert seen == []


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("2002:0a00:0001::1", False),  # 6to4 around 10.0.0.1
        ("2002:7f00:0001::1", False),  # 6to4 around 127.0.0.1
        ("fec0::1", False),  # site-local
        ("2002:5db8:d70e::1", True),  # 6to4 around 93.184.215.14
        ("2606:4700:4700::1111", True),
    ],
)
def test_ipv6_carrying_a_private_ipv4_is_not_public(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public
