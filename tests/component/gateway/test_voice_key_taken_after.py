"""A voice's refusal of the user's ElevenLabs key marks only the key read after the call
began (KeyUse.taken_after, as a reply's do): one she stores again meanwhile stays active.

Real Postgres for `core`; inference's voice RPCs and keyvault are in-memory fakes.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.domain import User
from tzurot.gateway.key_uses import taken_after
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.runtime.errors import FailedPrecondition

from .conftest import ALICE, FakeKeyVault, FakeSpeech
from .test_voice_clone_ledger import with_a_sample

pytestmark = pytest.mark.component


@pytest.fixture
async def alice(gateway: Gateway) -> User:
    return await gateway.user(ALICE)


async def test_a_reclone_marks_only_the_keys_read_after_each_call_began(
    voiced_admin: Admin, alice: User, gateway: Gateway, keyvault: FakeKeyVault, *,
    store: GatewayStore, engine: AsyncEngine, speech: FakeSpeech,
) -> None:  # fmt: skip
    """The clone's use, and the refusal of the replaced clone's deletion, are each of the key
    read after the call began."""
    await with_a_sample(store, engine, "Wren", alice, public=True)
    await voiced_admin.clone_voice(Principal(alice), "wren")
    speech.error = FailedPrecondition(  # her key refused from now on, but by the clone
        "ElevenLabs refused the key",
        reason="INVALID_API_KEY",
        metadata={"provider": "elevenlabs", "key_source": "user"},
    )
    await gateway.key_uses.flush()
    keyvault.uses.clear()
    before = datetime.now(UTC)
    await voiced_admin.clone_voice(Principal(alice), "wren")
    await gateway.key_uses.flush()
    uses = {use.rejected: taken_after(use) for use in keyvault.uses}
    assert set(uses) == {False, True}  # the clone worked; deleting the one it replaced not
    for bound in uses.values():
        assert bound is not None
        assert before <= bound <= datetime.now(UTC)
