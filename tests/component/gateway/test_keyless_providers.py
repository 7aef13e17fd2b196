"""A provider inference says takes no key (ListProvidersResponse.keyless_providers: a local
server, or one the operator's TZUROT_PROVIDERS declares `"keyless": true`) needs nobody's key,
over real mTLS gRPC (the gateway's own InferenceProviders cache and client) on real Postgres.

Review: the gateway could not tell, so a user without a key on a free config naming the
operator's local chat server was a guest (the guests' daily share spent, and refused outright
without guest mode), and free will asked its payer for a key to it and switched itself off
"no key". Now neither happens; an inference older than the field (it leaves
`keyless_providers_listed` unset) is read as before it: only the built-in local speech
servers, kokoro and openedai-speech, take no key. While inference cannot answer at all, free
will is not switched off for a payer without a key (she may need none).

Review 315: such a job still went to inference as a free config, so its helper models ran on
the operator's key in no guest's share (F1: now it goes as not free); an outage after the
cached list expired made the keyless user a guest again (F2: its last answer now stands); each
request during an outage asked inference again, one after another (F3: a failure is kept a
few seconds, and free will asks before it locks its channels); and `/freewill on` was
UNAVAILABLE for a built-in keyed provider while inference could not say (F5: NO_API_KEY).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy.exc import DBAPIError

from tzurot.gateway.app import start_gateway
from tzurot.gateway.clock import ManualClock
from tzurot.gateway.provider_list import (
    PROVIDERS_RETRY_SECONDS,
    PROVIDERS_TTL_SECONDS,
    InferenceProviders,
)
from tzurot.runtime.errors import Unavailable, from_rpc_error
from tzurot.testing.channels import channels_to
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import gateway_pb2_grpc as gw_grpc
from tzurot.v1 import inference_pb2 as inf

from . import test_grpc as g
from .backends_support import serve_backends
from .test_scheduled_turns import rows, turn_events

pytestmark = pytest.mark.component

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)  # noon UTC: outside the quiet hours below
ALICE, BOB = g.ACTOR, common.Actor(user_id="100000000000000002", display_name="Bob")
WHERE = g.WHERE
LOCAL = "my-llm"
"""The operator's local chat server, declared keyless in inference's TZUROT_PROVIDERS."""
PROVIDERS = ["anthropic", "elevenlabs", "gemini", "kokoro", LOCAL, "openai", "openrouter"]


def seed(name: str, provider: str, *, free_use: bool) -> bytes:
    return (
        f"name: {name}\nsystem_prompt: You are {name}.\n"
        f"llm: {{provider: {provider}, model: local/model, free_use: {str(free_use).lower()}}}\n"
    ).encode()


class ListingInference(g.InferenceServicer):
    """test_grpc's inference, with ListProviders: `keyless` as it says them, or, None, as an
    inference older than the field (keyless_providers_listed unset)."""

    def __init__(self, keyless: list[str] | None) -> None:
        super().__init__()
        self.keyless = keyless
        self.listed = 0
        self.down = False
        """ListProviders fails UNAVAILABLE (inference restarting)."""
        self.while_listing: Callable[[], Awaitable[None]] | None = None
        """Run at each ListProviders, before it answers."""

    async def ListProviders(
        self, request: inf.ListProvidersRequest, context: Any
    ) -> inf.ListProvidersResponse:
        self.listed += 1
        if self.while_listing is not None:
            await self.while_listing()
        if self.down:
            raise Unavailable("inference is restarting")
        reply = inf.ListProvidersResponse(providers=PROVIDERS)
        if self.keyless is not None:
            reply.keyless_providers.extend(self.keyless)
            reply.keyless_providers_listed = True
        return reply


class Running:
    """The gateway with its fakes, and stubs to it."""

    def __init__(
        self,
        mesh: g.Mesh,
        inference: ListingInference,
        open_channel: Callable[[int, str], grpc.aio.Channel],
    ) -> None:
        self.mesh = mesh
        self.inference = inference
        self.bot = gw_grpc.GatewayServiceStub(open_channel(mesh.gateway.port, "bot"))
        self.cli = gw_grpc.GatewayServiceStub(open_channel(mesh.gateway.port, "cli"))

    async def personality(self, name: str, provider: str, *, free_use: bool) -> None:
        await self.cli.ImportPersonality(
            gw.ImportPersonalityRequest(
                format=gw.IMPORT_FORMAT_SEED_YAML, document=seed(name, provider, free_use=free_use)
            )
        )

    async def say(self, key: str, personality: str, actor: Any = ALICE) -> list[Any]:
        request = g.generate_request(key=key, personality=personality)
        request.actor.CopyFrom(actor)
        return await g.drain(self.bot.Generate(request))

    async def refused(self, key: str, personality: str, actor: Any = ALICE) -> str:
        error = await g.rpc_error(self.say(key, personality, actor))
        return f"{error.code().name} {from_rpc_error(error).reason}"

    def later(self, seconds: float) -> None:
        """The gateway's list of providers `seconds` older, its time then standing still
        (what it keeps expires only by this): its cache keeps time on its own monotonic
        clock, not the gateway's ManualClock."""
        providers = self.mesh.gateway.gateway.providers
        assert isinstance(providers, InferenceProviders)
        now = providers._clock() + seconds
        providers._clock = lambda: now

    def free_use_sent(self) -> list[tuple[str, bool]]:
        """Each GenerateReply's provider and whether inference was told it is free to use."""
        return [
            (r.config.config.provider, r.config.config.free_use) for r in self.inference.requests
        ]


Start = Callable[..., Awaitable[Running]]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
async def start(pki: Path, core_url: str, clock: ManualClock) -> AsyncIterator[Start]:
    """The gateway (on a ManualClock, no free-will loop: the tests tick) with `settings`, its
    inference listing `keyless` (None: older than the field)."""
    meshes: list[g.Mesh] = []
    async with channels_to("gateway", pki, default_timeout=10.0) as open_channel:

        async def run(keyless: list[str] | None = None, **settings: Any) -> Running:
            inference = ListingInference(keyless)  # type: ignore[abstract]  # test_grpc's
            memory = g.MemoryServicer()  # type: ignore[abstract]
            keyvault = g.KeyVaultServicer()  # type: ignore[abstract]
            servers, ports = await serve_backends(pki, inference, memory, keyvault)
            update = {"freewill_tick_seconds": 0, "group_seed": "keyless", **settings}
            app = await start_gateway(
                g.gateway_settings(pki, core_url, ports).model_copy(update=update), clock=clock
            )
            mesh = g.Mesh(app, inference, memory, keyvault, servers)
            meshes.append(mesh)
            return Running(mesh, inference, open_channel)

        try:
            yield run
        finally:
            for mesh in meshes:
                await mesh.stop()


async def request_types(core_url: str) -> list[str]:
    found = await rows(core_url, "SELECT request_type FROM core.usage_log ORDER BY id")
    return [row["request_type"] for row in found]


# ---- admission ----


async def test_without_guest_mode_a_user_without_a_key_talks_to_a_keyless_provider(
    start: Start, core_url: str
) -> None:
    running = await start([LOCAL, "ollama"], guest_mode=False)
    await running.personality("Hearth", LOCAL, free_use=True)
    await running.personality("Freebie", "openrouter", free_use=True)

    replies = await running.say("m1", "hearth")

    assert replies[-1].finished.content == "Hello, mortal."
    (asked,) = running.inference.requests
    assert asked.config.config.provider == LOCAL
    # Not free to inference: a helper model reading her attachments wants her own key, not
    # the operator's (review 315 F1).
    assert not asked.config.config.free_use
    assert await request_types(core_url) == ["chat"]  # no guest
    # A keyed provider's free config still wants her key without guest mode.
    assert await running.refused("m2", "freebie") == "FAILED_PRECONDITION NO_API_KEY"
    assert running.inference.listed == 1  # one list for both: cached


async def test_a_keyless_provider_spends_none_of_the_guests_share(
    start: Start, core_url: str
) -> None:
    running = await start([LOCAL], guest_daily_budget=1)
    await running.personality("Hearth", LOCAL, free_use=True)
    await running.personality("Freebie", "openrouter", free_use=True)

    for key in ("m1", "m2", "m3"):
        await running.say(key, "hearth")
    await running.say("b1", "freebie", BOB)  # the day's one guest answer is still there

    assert await request_types(core_url) == ["chat", "chat", "chat", "guest"]
    assert running.free_use_sent() == [(LOCAL, False)] * 3 + [("openrouter", True)]  # a guest
    assert await running.refused("b2", "freebie", BOB) == "RESOURCE_EXHAUSTED " + (
        "GUEST_BUDGET_EXHAUSTED"
    )


async def test_a_key_stored_for_a_keyless_provider_does_not_make_her_job_free(
    start: Start, core_url: str
) -> None:
    """She holds a key stored for the keyless provider (set before such keys were refused,
    or before the operator declared it keyless): her job still goes as not free, so no
    helper model reading her attachments runs on the operator's key (review 327 M1: a key
    for the provider kept it free), and she is no guest."""
    running = await start([LOCAL], guest_mode=False)
    await running.personality("Hearth", LOCAL, free_use=True)
    await running.say("m1", "hearth")
    (alice,) = await rows(core_url, "SELECT id::text FROM core.users")
    running.mesh.keyvault.keys[alice["id"], LOCAL] = g.PLANTED  # a stale key of hers

    replies = await running.say("m2", "hearth")

    assert replies[-1].finished.content == "Hello, mortal."
    assert running.free_use_sent() == [(LOCAL, False), (LOCAL, False)]
    assert await request_types(core_url) == ["chat", "chat"]


async def test_a_key_for_a_built_in_local_name_keeps_her_job_free_on_a_guess(
    start: Start, core_url: str
) -> None:
    """Inference older than keyless_providers: kokoro is keyless only by the built-in names'
    guess, which an operator may have overridden by giving it a key. She holds one: her job
    stays free (her key pays the answer, the operator's free helper models read her files),
    not made not free on the guess (review 330 L2); one without a key is still no guest."""
    running = await start(None, guest_mode=False)
    await running.personality("Speaker", "kokoro", free_use=True)
    await running.say("m1", "speaker")
    (alice,) = await rows(core_url, "SELECT id::text FROM core.users")
    running.mesh.keyvault.keys[alice["id"], "kokoro"] = g.PLANTED

    await running.say("m2", "speaker")

    assert running.free_use_sent() == [("kokoro", False), ("kokoro", True)]
    assert await request_types(core_url) == ["chat", "chat"]


async def test_a_job_claimed_again_goes_to_inference_as_not_free_either(
    start: Start, core_url: str
) -> None:
    """Its first run failed retryably; the bot's retry claims the job again, and its
    admission is asked again (Gateway._charge_claimed): as not free again."""
    running = await start([LOCAL], guest_mode=False)
    await running.personality("Hearth", LOCAL, free_use=True)
    running.inference.fail_before_reply.append(
        Unavailable("the provider is down", reason="PROVIDER_UNAVAILABLE")
    )

    assert await running.refused("m1", "hearth") == "UNAVAILABLE PROVIDER_UNAVAILABLE"
    replies = await running.say("m1", "hearth")

    assert replies[-1].finished.content == "Hello, mortal."
    assert running.free_use_sent() == [(LOCAL, False), (LOCAL, False)]


async def test_an_outage_after_the_list_expired_keeps_its_last_answer(
    start: Start, core_url: str
) -> None:
    """Inference restarting once the cached list is a minute old: its last answer stands
    (review 315 F2: she was a guest again, refused NO_API_KEY without guest mode)."""
    running = await start([LOCAL], guest_mode=False)
    await running.personality("Hearth", LOCAL, free_use=True)
    await running.say("m1", "hearth")
    running.inference.down = True
    running.later(PROVIDERS_TTL_SECONDS)

    replies = await running.say("m2", "hearth")

    assert replies[-1].finished.content == "Hello, mortal."
    assert await request_types(core_url) == ["chat", "chat"]
    assert running.inference.listed > 1  # it was asked, and could not answer


async def test_an_outage_asks_inference_once_in_a_while_not_at_every_request(
    start: Start, core_url: str
) -> None:
    """Guests on a free OpenRouter config, while inference cannot list its providers: one
    question (with its channel's retries) for the requests of the next few seconds, at once
    or one after another, not one each, in turn (review 315 F3)."""
    running = await start(
        [LOCAL],
        guest_daily_budget=100,
        rate_user_capacity=0,
        rate_channel_capacity=0,
        guest_user_per_day=0,
    )
    await running.personality("Freebie", "openrouter", free_use=True)
    await running.say("m0", "freebie")
    running.inference.down = True
    running.later(PROVIDERS_TTL_SECONDS)
    asked = running.inference.listed

    await running.say("m1", "freebie")
    one_question = running.inference.listed - asked
    await asyncio.gather(*(running.say(f"a{n}", "freebie") for n in range(8)))
    for n in range(3):
        await running.say(f"b{n}", "freebie")
    assert running.inference.listed - asked == one_question
    running.later(PROVIDERS_RETRY_SECONDS)  # its failure is over
    await asyncio.gather(*(running.say(f"c{n}", "freebie") for n in range(8)))

    assert one_question >= 1
    assert running.inference.listed - asked == 2 * one_question
    assert len(running.inference.requests) == 1 + 1 + 8 + 3 + 8  # every one answered


async def test_an_older_inference_leaves_only_the_local_speech_servers_keyless(
    start: Start, core_url: str
) -> None:
    """keyless_providers_listed unset: today's rule, the operator's server is no exception."""
    running = await start(None, guest_mode=False)
    await running.personality("Hearth", LOCAL, free_use=True)
    await running.personality("Speaker", "kokoro", free_use=True)

    assert await running.refused("m1", "hearth") == "FAILED_PRECONDITION NO_API_KEY"
    await running.say("m2", "speaker")
    assert await request_types(core_url) == ["chat"]


# ---- free will ----


async def free_will(running: Running, personality: str) -> gw.SetFreeWillResponse:
    await running.bot.ActivateChannel(
        gw.ActivateChannelRequest(
            actor=ALICE, location=WHERE, personality=personality, manage_channels=True
        )
    )
    reply: gw.SetFreeWillResponse = await running.bot.SetFreeWill(
        gw.SetFreeWillRequest(
            actor=ALICE,
            location=WHERE,
            personality=personality,
            enabled=True,
            quiet_hours="1-6",
            manage_channels=True,
        )
    )
    return reply


async def test_free_will_on_a_keyless_provider_asks_its_payer_for_no_key(
    start: Start, core_url: str
) -> None:
    """Not a free config, and the operator allows none for free will: a keyed provider
    would be NO_API_KEY; the keyless one is paid by nobody."""
    running = await start([LOCAL])
    await running.personality("Hearth", LOCAL, free_use=False)

    status = (await free_will(running, "hearth")).status

    assert status.enabled
    assert status.disabled_reason == ""


async def test_free_will_stays_on_when_its_payer_has_no_key_for_a_keyless_provider(
    start: Start, core_url: str, clock: ManualClock
) -> None:
    """Its payer holds no key (none can be stored for a provider that takes none): each
    look asks again, and a keyless provider needs none."""
    running = await start([LOCAL])
    await running.personality("Hearth", LOCAL, free_use=False)
    await free_will(running, "hearth")
    await running.say("m1", "hearth")
    clock.advance(timedelta(hours=3))

    assert await running.mesh.gateway.features.freewill.tick() == 1

    (event,) = await turn_events(core_url)
    assert event["reason"] == "check_in"
    (status,) = (await running.bot.GetFreeWill(gw.GetFreeWillRequest(location=WHERE))).statuses
    assert (status.enabled, status.disabled_reason) == (True, "")


async def test_an_outage_of_the_provider_list_switches_no_free_will_off(
    start: Start, core_url: str, clock: ManualClock
) -> None:
    """While inference cannot say which providers take no key, a payer without a key may be
    paying with none: `/freewill on` is UNAVAILABLE (try again), and a look queues nothing
    but leaves free will on; once inference answers, the next look queues the turn."""
    running = await start([LOCAL])
    running.inference.down = True  # from the start: nothing cached
    await running.personality("Hearth", LOCAL, free_use=False)

    unsure = await g.rpc_error(free_will(running, "hearth"))
    assert unsure.code() == grpc.StatusCode.UNAVAILABLE, unsure.details()
    (alice,) = await rows(core_url, "SELECT id::text FROM core.users")
    running.mesh.keyvault.keys[alice["id"], LOCAL] = g.PLANTED  # she held a key then
    assert (await free_will(running, "hearth")).status.enabled
    del running.mesh.keyvault.keys[alice["id"], LOCAL]  # and removed it since
    await running.say("m1", "hearth")
    clock.advance(timedelta(hours=3))

    assert await running.mesh.gateway.features.freewill.tick() == 0
    (status,) = (await running.bot.GetFreeWill(gw.GetFreeWillRequest(location=WHERE))).statuses
    assert (status.enabled, status.disabled_reason) == (True, "")

    running.inference.down = False
    running.later(PROVIDERS_RETRY_SECONDS)  # its failure is no longer kept
    clock.advance(timedelta(minutes=31))  # past the next look (at most 30 min on)
    assert await running.mesh.gateway.features.freewill.tick() == 1


async def test_free_will_on_a_built_in_keyed_provider_needs_a_key_during_an_outage(
    start: Start, core_url: str
) -> None:
    """Inference cannot say which providers take no key (never answered), but OpenRouter is
    built in and takes one: NO_API_KEY, not UNAVAILABLE (review 315 F5). The operator's own
    server stays UNAVAILABLE, as it may take none
    (test_an_outage_of_the_provider_list_switches_no_free_will_off)."""
    running = await start([LOCAL])
    running.inference.down = True
    await running.personality("Freebie", "openrouter", free_use=True)

    refused = await g.rpc_error(free_will(running, "freebie"))

    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION, refused.details()
    assert from_rpc_error(refused).reason == "NO_API_KEY"


async def test_free_will_on_a_keyless_provider_during_an_outage_takes_the_last_answer(
    start: Start, core_url: str
) -> None:
    """`/freewill on` again once the list expired, inference restarting: its last answer
    (keyless) stands, not UNAVAILABLE (review 315 F2)."""
    running = await start([LOCAL])
    await running.personality("Hearth", LOCAL, free_use=False)
    assert (await free_will(running, "hearth")).status.enabled
    running.inference.down = True
    running.later(PROVIDERS_TTL_SECONDS)

    assert (await free_will(running, "hearth")).status.enabled
    assert running.inference.listed > 1  # asked again, and could not answer


async def test_free_will_asks_for_the_list_with_no_channel_locked(
    start: Start, core_url: str, clock: ManualClock
) -> None:
    """A look's payer without a key may need none: inference's list is read before the
    channels due are locked (FOR UPDATE), never while they are held (review 315 F3)."""
    running = await start([LOCAL])
    await running.personality("Hearth", LOCAL, free_use=False)
    await free_will(running, "hearth")
    await running.say("m1", "hearth")
    clock.advance(timedelta(hours=3))
    running.later(PROVIDERS_TTL_SECONDS)  # the list expired: the look's tick asks again
    held: list[bool] = []

    async def channels_held() -> None:
        try:
            await rows(core_url, "SELECT 1 FROM core.freewill_channels FOR UPDATE NOWAIT")
        except DBAPIError:
            held.append(True)
        else:
            held.append(False)

    running.inference.while_listing = channels_held
    asked = running.inference.listed

    assert await running.mesh.gateway.features.freewill.tick() == 1
    assert running.inference.listed == asked + 1
    assert held == [False]
