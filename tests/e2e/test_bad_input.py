"""Bad input through the whole mesh: long messages, NUL bytes, huge names, missing actors, paging.

Each of these once failed (issue #14): a long message was refused by memory's query limit, a
NUL byte reached Postgres (INTERNAL, and the SQL parameters in the log), a long name overflowed
gRPC's metadata limit in the NOT_FOUND message, the wallet stored a key for user ''.
"""

from __future__ import annotations

import grpc
import pytest

from tzurot.runtime.errors import InvalidArgument, from_rpc_error
from tzurot.testing.e2e import USER_KEY, Harness, actor, converse, request, set_key
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e


async def _generate_error(h: Harness, req: gw.GenerateRequest) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in h.bot.Generate(req):
            pass
    return caught.value


def _field(err: grpc.aio.AioRpcError) -> str:
    typed = from_rpc_error(err)
    assert isinstance(typed, InvalidArgument), typed
    return typed.field


async def test_a_long_message_is_answered_and_its_memory_query_fits(harness: Harness) -> None:
    await set_key(harness)
    harness.provider.reply = "read it all"
    long_message = " ".join(f"word{i}" for i in range(1800))  # ~15,000 characters
    assert 4_000 < len(long_message) < 16_000

    events, _ = await converse(harness, request(long_message))

    assert events[-1].finished.content == "read it all"
    prompt = harness.provider.chat_requests()[-1].body["messages"]
    assert prompt[-1]["content"].endswith(long_message)
    # The next message still works, and sees the long one in its history.
    await converse(harness, request("and a short one"))
    second = harness.provider.chat_requests()[-1].body["messages"]
    assert any(long_message in m["content"] for m in second[1:-1])


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("content", lambda r: setattr(r, "content", "hello\x00world")),
        ("personality", lambda r: setattr(r, "personality", "Ec\x00ho")),
        ("actor.display_name", lambda r: setattr(r.actor, "display_name", "Al\x00ice")),
        ("location.channel_id", lambda r: setattr(r.location, "channel_id", "c\x00")),
        ("references[0].content", lambda r: r.references.add(message_id="1", content="a\x00b")),
    ],
)
async def test_a_nul_byte_is_invalid_argument_naming_the_field(
    harness: Harness, field: str, change: object
) -> None:
    await set_key(harness)
    req = request("hi")
    change(req)  # type: ignore[operator]  # the parametrized setter
    err = await _generate_error(harness, req)
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT, err.details()
    assert _field(err) == field
    # The mesh is fine afterwards.
    events, _ = await converse(harness, request("still there?"))
    assert events[-1].WhichOneof("event") == "finished"


async def test_a_nul_byte_in_an_admin_field_is_invalid_argument(harness: Harness) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await harness.cli.CreatePersonality(
            gw.CreatePersonalityRequest(
                personality=common.Personality(display_name="Nul\x00Name", system_prompt="x")
            )
        )
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert _field(caught.value) == "personality.display_name"


async def test_a_huge_unknown_name_is_not_found_with_the_name_cut_short(harness: Harness) -> None:
    name = "x" * 10_000
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await harness.bot.GetPersonality(gw.GetPersonalityRequest(personality=name, actor=actor()))
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    details = caught.value.details() or ""
    assert "xxxxxxxx" in details
    assert len(details) < 300

    huge = request("hi")
    huge.personality = name
    err = await _generate_error(harness, huge)
    assert err.code() is grpc.StatusCode.NOT_FOUND
    assert len(err.details() or "") < 300


@pytest.mark.parametrize(
    "call",
    [
        lambda s, a: s.SetWalletKey(
            gw.SetWalletKeyRequest(actor=a, provider="openrouter", api_key=USER_KEY)
        ),
        lambda s, a: s.ListWalletKeys(gw.ListWalletKeysRequest(actor=a)),
        lambda s, a: s.RemoveWalletKey(gw.RemoveWalletKeyRequest(actor=a, provider="openrouter")),
        lambda s, a: s.TestWalletKey(gw.TestWalletKeyRequest(actor=a, provider="openrouter")),
    ],
    ids=["set", "list", "remove", "test"],
)
@pytest.mark.parametrize("identity", ["bot", "cli"])
async def test_the_wallet_requires_the_actor(harness: Harness, call: object, identity: str) -> None:
    stub = harness.bot if identity == "bot" else harness.cli
    for missing in (common.Actor(), common.Actor(user_id="  ", display_name="nobody")):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(stub, missing)  # type: ignore[operator]  # the parametrized call
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert _field(caught.value).startswith("actor")


SEED = """
name: {name}
system_prompt: You are {name}.
llm: {{provider: openrouter, model: fake/echo}}
""".strip()


async def test_list_personalities_pages_with_bounded_sizes_and_opaque_tokens(
    harness: Harness,
) -> None:
    for i in range(7):
        await harness.cli.ImportPersonality(
            gw.ImportPersonalityRequest(
                format=gw.IMPORT_FORMAT_SEED_YAML, document=SEED.format(name=f"Paged{i}").encode()
            )
        )
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        reply = await harness.bot.ListPersonalities(
            gw.ListPersonalitiesRequest(
                actor=actor(), page=common.PageRequest(page_size=3, page_token=token)
            )
        )
        assert len(reply.personalities) <= 3
        seen += [p.slug for p in reply.personalities]
        pages += 1
        token = reply.page.next_page_token
        if not token:
            break
        assert "paged" not in token.lower()  # opaque, not the slug in the clear
    assert pages == 3  # Echo + 7 = 8 personalities
    assert sorted(seen) == seen
    assert len(set(seen)) == 8

    everything = await harness.bot.ListPersonalities(gw.ListPersonalitiesRequest(actor=actor()))
    assert [p.slug for p in everything.personalities] == seen  # one default page holds them

    huge = await harness.bot.ListPersonalities(
        gw.ListPersonalitiesRequest(actor=actor(), page=common.PageRequest(page_size=1_000_000))
    )
    assert len(huge.personalities) == 8

    for bad in ("nonsense", "eyJ2IjoxfQ", "x" * 5000):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await harness.bot.ListPersonalities(
                gw.ListPersonalitiesRequest(actor=actor(), page=common.PageRequest(page_token=bad))
            )
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert _field(caught.value) == "page.page_token"
        assert len(caught.value.details() or "") < 300
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await harness.bot.ListPersonalities(
            gw.ListPersonalitiesRequest(actor=actor(), page=common.PageRequest(page_size=-1))
        )
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert _field(caught.value) == "page.page_size"
