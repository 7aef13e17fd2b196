"""`/wallet test` of a provider inference says takes no key sends nothing to check.

A key may be stored for such a provider: stored before `/wallet set` refused one, or before
the operator declared its server keyless. It is never used. Before, `test` had inference fetch
it and send it to the server to check (which took anything), and answered that it works. Now
the gateway answers FAILED_PRECONDITION `PROVIDER_TAKES_NO_KEY` at once: the provider takes
no key, the stored one is never used, and how to delete it; inference hears nothing. Only
inference's word counts, never the built-in names' guess while it cannot say.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, cast

import pytest
from pydantic import SecretStr

from tzurot.gateway.admin import Admin
from tzurot.gateway.group_server import GatewayGroupServicer, GroupFeatures
from tzurot.gateway.provider_list import (
    KNOWN_PROVIDERS,
    PROVIDERS_TTL_SECONDS,
    InferenceProviders,
    ProviderList,
)
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.gateway.wallet import TAKES_NO_KEY, Wallet
from tzurot.runtime.errors import FailedPrecondition, Unavailable
from tzurot.testing.waits import until
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

from .conftest import ALICE, FakeInference, FakeKeyVault

pytestmark = pytest.mark.component

PLANTED = "plantedKEYforKeylessTest5Hq8"
LOCAL = "my-llm"
LISTED = ProviderList(KNOWN_PROVIDERS | {LOCAL}, keyless=frozenset({LOCAL, "ollama", "kokoro"}))


@dataclass
class Lister:
    down: bool = False

    async def list_providers(self) -> ProviderList:
        if self.down:
            raise Unavailable("inference is restarting")
        return LISTED


def wallet_with(
    gateway: Gateway, inference: FakeInference, keyvault: FakeKeyVault, lister: Lister
) -> Wallet:
    return Wallet(
        users=gateway,
        checker=inference,
        keyvault=keyvault,
        providers=InferenceProviders(lister),
    )


@pytest.mark.parametrize("provider", [LOCAL, "ollama"])
async def test_a_stored_key_for_a_keyless_provider_is_not_sent_to_be_checked(
    gateway: Gateway,
    inference: FakeInference,
    keyvault: FakeKeyVault,
    store: GatewayStore,
    provider: str,
) -> None:
    wallet = wallet_with(gateway, inference, keyvault, Lister())
    alice = await store.upsert_user(ALICE)
    keyvault.keys[alice.id, provider] = SecretStr(PLANTED)  # stored before sets were refused

    with pytest.raises(FailedPrecondition) as caught:
        await wallet.test(ALICE, provider)

    assert caught.value.reason == TAKES_NO_KEY
    assert caught.value.metadata == {"provider": provider}
    assert caught.value.message == (
        f"{provider} takes no API key: your stored {provider} key is never used, so it was not "
        f"tested; /wallet remove {provider} deletes it"
    )
    assert inference.checked == []  # inference never fetched it, nor sent it anywhere
    assert PLANTED not in f"{caught.value!r} {caught.value}"
    assert (alice.id, provider) in keyvault.keys  # still there, for her to remove


async def test_without_a_stored_key_it_says_there_is_none_to_test_not_to_add_one(
    gateway: Gateway, inference: FakeInference, keyvault: FakeKeyVault
) -> None:
    wallet = wallet_with(gateway, inference, keyvault, Lister())
    with pytest.raises(FailedPrecondition) as caught:
        await wallet.test(ALICE, LOCAL)
    assert caught.value.reason == TAKES_NO_KEY
    assert caught.value.message == f"{LOCAL} takes no API key; there is no key to test"
    assert inference.checked == []


async def test_a_keyed_providers_key_is_still_checked(
    gateway: Gateway, inference: FakeInference, keyvault: FakeKeyVault, store: GatewayStore
) -> None:
    wallet = wallet_with(gateway, inference, keyvault, Lister())
    alice = await store.upsert_user(ALICE)
    keyvault.keys[alice.id, "openrouter"] = SecretStr(PLANTED)
    tested = await wallet.test(ALICE, "openrouter")
    assert tested.valid
    assert inference.checked == [(alice.id, "openrouter")]


async def test_while_inference_never_answered_the_built_in_guess_refuses_nothing(
    gateway: Gateway, inference: FakeInference, keyvault: FakeKeyVault, store: GatewayStore
) -> None:
    """The built-in names say kokoro takes no key, but the operator may have given it one."""
    wallet = wallet_with(gateway, inference, keyvault, Lister(down=True))
    alice = await store.upsert_user(ALICE)
    keyvault.keys[alice.id, "kokoro"] = SecretStr(PLANTED)
    tested = await wallet.test(ALICE, "kokoro")
    assert tested.valid
    assert inference.checked == [(alice.id, "kokoro")]


async def test_the_list_flags_keys_only_on_inferences_word(
    gateway: Gateway, inference: FakeInference, keyvault: FakeKeyVault, store: GatewayStore
) -> None:
    alice = await store.upsert_user(ALICE)
    for provider in (LOCAL, "kokoro", "openrouter"):
        keyvault.keys[alice.id, provider] = SecretStr(PLANTED)
    answered = InferenceProviders(Lister())
    await answered.listed()  # inference answered before (admission asks it all the time)
    keys = await Wallet(
        users=gateway, checker=inference, keyvault=keyvault, providers=answered
    ).list(ALICE)
    assert {k.provider: k.takes_no_key for k in keys} == {
        LOCAL: True,
        "kokoro": True,
        "openrouter": False,
    }
    # Inference never answered: the built-in names say kokoro takes none, but that is a guess.
    silent = wallet_with(gateway, inference, keyvault, Lister(down=True))
    assert [k.takes_no_key for k in await silent.list(ALICE)] == [False] * 3
    assert inference.checked == []


class HungLister:
    """Inference that takes ListProviders and never answers (overloaded, or a partition that
    drops packets), until `answer` is set."""

    def __init__(self) -> None:
        self.asked = asyncio.Event()
        self.answer = asyncio.Event()

    async def list_providers(self) -> ProviderList:
        self.asked.set()
        await self.answer.wait()
        return LISTED


class SteppedClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def list_request() -> gw.ListWalletKeysRequest:
    return gw.ListWalletKeysRequest(
        actor=common.Actor(user_id=ALICE.platform_user_id, display_name=ALICE.display_name)
    )


@pytest.mark.parametrize("answered_before", [True, False])
async def test_list_wallet_keys_never_waits_on_a_hung_inference(
    gateway: Gateway,
    inference: FakeInference,
    keyvault: FakeKeyVault,
    store: GatewayStore,
    answered_before: bool,
) -> None:
    """Before, ListWalletKeys waited on ListProviders (up to its 5 s deadline) whenever the
    list was stale or never had: `/wallet list` late, and the remove/test autocomplete (3 s)
    empty. Now it answers from the last list at once (none yet: nothing flagged) while a
    background question refreshes it."""
    alice = await store.upsert_user(ALICE)
    keyvault.keys[alice.id, LOCAL] = SecretStr(PLANTED)
    lister, clock = HungLister(), SteppedClock()
    providers = InferenceProviders(lister, clock=clock)
    if answered_before:
        lister.answer.set()
        await providers.listed()
        lister.answer.clear()
        clock.now += PROVIDERS_TTL_SECONDS + 1  # stale: the next read asks again
    wallet = Wallet(users=gateway, checker=inference, keyvault=keyvault, providers=providers)
    servicer = GatewayGroupServicer(
        gateway, wallet, cast(Admin, None), cast(GroupFeatures, None)
    )  # the gateway's servicer; ListWalletKeys needs no admin nor groups
    asked_before = lister.asked.is_set()
    lister.asked.clear()

    try:
        # A guard against hanging, not the check: the check is that it came back while
        # inference still had not answered.
        listed = await asyncio.wait_for(
            servicer.ListWalletKeys(list_request(), cast(Any, None)), timeout=4.0
        )
        assert not lister.answer.is_set()  # answered without inference's answer
        await asyncio.wait_for(lister.asked.wait(), timeout=4.0)  # refreshing meanwhile
        assert asked_before is answered_before
        (key,) = listed.keys
        # The last list inference gave says my-llm takes no key; with none yet, nothing is
        # flagged on a guess.
        assert key.provider == LOCAL
        assert key.takes_no_key is answered_before
        assert PLANTED not in str(listed)

        # Inference answers: the refresh lands, and the next list has its word.
        lister.answer.set()

        async def flagged() -> bool:
            again = await servicer.ListWalletKeys(list_request(), cast(Any, None))
            return [k.takes_no_key for k in again.keys] == [True]

        await until(flagged, "the refreshed list flags the key")
    finally:
        lister.answer.set()


async def test_removing_a_key_she_holds_never_waits_on_a_hung_inference(
    gateway: Gateway, inference: FakeInference, keyvault: FakeKeyVault, store: GatewayStore
) -> None:
    """Review 353 L4: `remove` asked ListProviders before it looked at her keys, so a hung
    inference held `/wallet remove` up to its 5 s deadline. Her own key's provider is known
    from keyvault alone; inference is asked only for a name she holds no key for."""
    alice = await store.upsert_user(ALICE)
    keyvault.keys[alice.id, LOCAL] = SecretStr(PLANTED)
    lister = HungLister()
    wallet = Wallet(
        users=gateway,
        checker=inference,
        keyvault=keyvault,
        providers=InferenceProviders(lister),
    )
    try:
        await asyncio.wait_for(wallet.remove(ALICE, LOCAL), timeout=4.0)  # a guard
        assert not lister.asked.is_set()
        assert (alice.id, LOCAL) not in keyvault.keys
    finally:
        lister.answer.set()
