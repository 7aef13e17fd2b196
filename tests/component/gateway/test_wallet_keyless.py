"""`/wallet set` refuses a key for a provider that takes no key, before any call.

Inference lists which providers take none (ListProvidersResponse.keyless_providers: a local
server, or one the operator declared `"keyless"`). A key stored for one would never be sent,
nor pay for anything, and its owner would believe she pays with it: the gateway refuses it,
INVALID_ARGUMENT `PROVIDER_TAKES_NO_KEY` naming the provider, without asking the provider to
check it and without a word to keyvault. Only inference's word refuses: while it cannot say,
nothing is refused on a guess from the built-in names (an operator may give a local server a
key), as before.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway import tables as t
from tzurot.gateway.provider_list import (
    KNOWN_PROVIDERS,
    PROVIDERS_TTL_SECONDS,
    InferenceProviders,
    ProviderList,
)
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.gateway.wallet import TAKES_NO_KEY, Wallet
from tzurot.runtime.errors import InvalidArgument, Unavailable

from .conftest import ALICE, FakeInference, FakeKeyVault

pytestmark = pytest.mark.component

PLANTED = "plantedKEYzq7Wm3Xv9Rt2Lp8Ny4"
LOCAL = "my-llm"
"""The operator's local server, declared `"keyless": true`."""
LISTED = ProviderList(
    KNOWN_PROVIDERS | {LOCAL, "groq"},
    keyless=frozenset({LOCAL, "ollama", "vllm", "lmstudio", "kokoro", "openedai-speech"}),
)


@dataclass
class Lister:
    """Inference's ListProviders: `answer`, or UNAVAILABLE while `down`."""

    answer: ProviderList = LISTED
    down: bool = False
    asked: int = 0

    async def list_providers(self) -> ProviderList:
        self.asked += 1
        if self.down:
            raise Unavailable("inference is restarting")
        return self.answer


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Setup:
    wallet: Wallet
    lister: Lister
    clock: Clock


@pytest.fixture
def setup(gateway: Gateway, inference: FakeInference, keyvault: FakeKeyVault) -> Setup:
    lister, clock = Lister(), Clock()
    wallet = Wallet(
        users=gateway,
        checker=inference,
        keyvault=keyvault,
        providers=InferenceProviders(lister, clock=clock),
    )
    return Setup(wallet, lister, clock)


def assert_takes_no_key(refused: InvalidArgument, provider: str) -> None:
    assert refused.reason == TAKES_NO_KEY
    assert refused.field == "provider"
    assert refused.message == (
        f"{provider} takes no API key; it is used without one, so none is stored"
    )
    assert refused.metadata == {"provider": provider}
    assert PLANTED not in f"{refused!r} {refused} {refused.metadata}"


@pytest.mark.parametrize("provider", [LOCAL, "ollama", "kokoro"])
async def test_a_key_for_a_provider_that_takes_none_is_refused_before_any_call(
    setup: Setup, inference: FakeInference, keyvault: FakeKeyVault, provider: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await setup.wallet.set(ALICE, provider, SecretStr(PLANTED), skip_validation=False)
    assert_takes_no_key(caught.value, provider)
    assert inference.validated == []  # the provider was never asked to check it
    assert keyvault.keys == {}


async def test_a_superuser_skipping_validation_is_refused_too(
    setup: Setup, keyvault: FakeKeyVault, store: GatewayStore, engine: AsyncEngine
) -> None:
    alice = await store.upsert_user(ALICE)
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(t.users).where(t.users.c.id == alice.id).values(superuser=True)
        )
    with pytest.raises(InvalidArgument) as caught:
        await setup.wallet.set(ALICE, LOCAL, SecretStr(PLANTED), skip_validation=True)
    assert_takes_no_key(caught.value, LOCAL)
    assert keyvault.keys == {}


async def test_a_provider_that_takes_a_key_is_still_checked_and_stored(
    setup: Setup, inference: FakeInference, keyvault: FakeKeyVault
) -> None:
    for provider in ("openrouter", "groq"):
        stored = await setup.wallet.set(ALICE, provider, SecretStr(PLANTED), skip_validation=False)
        assert stored.key.provider == provider
    assert inference.validated == [("openrouter", PLANTED), ("groq", PLANTED)]
    assert sorted(provider for _, provider in keyvault.keys) == ["groq", "openrouter"]


async def test_inferences_last_answer_still_refuses_through_an_outage(
    setup: Setup, inference: FakeInference, keyvault: FakeKeyVault
) -> None:
    for _ in range(2):  # inference answers, then goes down
        with pytest.raises(InvalidArgument) as caught:
            await setup.wallet.set(ALICE, LOCAL, SecretStr(PLANTED), skip_validation=False)
        assert_takes_no_key(caught.value, LOCAL)
        setup.lister.down = True
        setup.clock.now += PROVIDERS_TTL_SECONDS
    assert setup.lister.asked == 2  # asked again, failed: its last answer stood
    assert (inference.validated, keyvault.keys) == ([], {})


async def test_while_inference_never_answered_nothing_is_refused_on_a_guess(
    setup: Setup, inference: FakeInference, keyvault: FakeKeyVault
) -> None:
    """The built-in names say kokoro takes no key, but the operator may have given it one:
    with no word from inference the key goes on to be checked, as before."""
    setup.lister.down = True
    stored = await setup.wallet.set(ALICE, "kokoro", SecretStr(PLANTED), skip_validation=False)
    assert stored.key.provider == "kokoro"
    assert inference.validated == [("kokoro", PLANTED)]


async def test_an_inference_that_does_not_say_which_take_no_key_refuses_none(
    setup: Setup, inference: FakeInference
) -> None:
    """One older than keyless_providers: its names only, and no refusal on a guess."""
    setup.lister.answer = ProviderList(LISTED.names)
    await setup.wallet.set(ALICE, "kokoro", SecretStr(PLANTED), skip_validation=False)
    assert inference.validated == [("kokoro", PLANTED)]


async def test_a_key_stored_before_for_such_a_provider_can_still_be_removed(
    setup: Setup, store: GatewayStore, keyvault: FakeKeyVault
) -> None:
    alice = await store.upsert_user(ALICE)
    keyvault.keys[alice.id, LOCAL] = SecretStr(PLANTED)  # stored before sets were refused
    assert [k.provider for k in await setup.wallet.list(ALICE)] == [LOCAL]
    await setup.wallet.remove(ALICE, LOCAL)
    assert keyvault.keys == {}
