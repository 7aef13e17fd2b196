"""A reply that fails after a skill's service refused a key of the user's wallet (inference's
error names it: metadata `refused_key_providers`) marks that key inactive, as a finished
reply's report would have; the job fails as before. An error naming none (an older
inference, any other failure) changes nothing; a bug fails the job as a bug.

Real Postgres for `core`; inference and keyvault are in-memory fakes.
"""

from __future__ import annotations

import pytest

from tzurot.gateway.domain import JobAccepted, JobStatus, Personality, SkillActivity
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.runtime.errors import Unavailable

from .conftest import ALICE, FakeInference, FakeKeyVault, command

pytestmark = pytest.mark.component


def provider_down(**metadata: str) -> Unavailable:
    """The round after the skills failed: the provider's 5xx, as inference reports it."""
    return Unavailable(
        "openrouter is failing (HTTP 502)",
        reason="PROVIDER_UNAVAILABLE",
        metadata={"provider": "openrouter", **metadata},
    )


async def failed_job(gateway: Gateway, failure: Exception) -> str:
    """Generates once; inference runs a skill, then fails with `failure`. The job's id."""
    stream = gateway.generate(command())
    accepted = await anext(stream)
    assert isinstance(accepted, JobAccepted)
    with pytest.raises(type(failure)) as raised:
        async for _ in stream:
            pass
    assert raised.value is failure  # re-raised as it came
    return accepted.job_id


async def test_keys_a_skill_refused_before_the_reply_failed_turn_inactive(
    gateway: Gateway,
    store: GatewayStore,
    inference: FakeInference,
    keyvault: FakeKeyVault,
    lilith: Personality,
) -> None:
    inference.script = [SkillActivity(skill="web_research", step=1)]
    inference.error = provider_down(refused_key_providers="brave,openai")
    job_id = await failed_job(gateway, inference.error)

    alice = await store.upsert_user(ALICE)
    assert [(u.user_id, u.provider, u.rejected) for u in keyvault.uses] == [
        (alice.id, "brave", True),
        (alice.id, "openai", True),
    ]
    job = await gateway.job_status(job_id=job_id)
    assert job.status is JobStatus.FAILED
    assert job.error is not None
    assert job.error.reason == "PROVIDER_UNAVAILABLE"  # the failure itself, as before


async def test_an_error_naming_no_refused_key_changes_nothing(
    gateway: Gateway, inference: FakeInference, keyvault: FakeKeyVault, lilith: Personality
) -> None:
    """An older inference says nothing of skills' refusals: the job fails as it did."""
    inference.script = [SkillActivity(skill="web_research", step=1)]
    inference.error = provider_down()
    await failed_job(gateway, inference.error)
    assert keyvault.uses == []


async def test_a_bug_fails_the_job_and_marks_no_key(
    gateway: Gateway, inference: FakeInference, keyvault: FakeKeyVault, lilith: Personality
) -> None:
    inference.script = [SkillActivity(skill="web_research", step=1)]
    inference.error = RuntimeError("a bug")
    job_id = await failed_job(gateway, inference.error)
    assert keyvault.uses == []
    job = await gateway.job_status(job_id=job_id)
    assert job.status is JobStatus.FAILED
    assert job.error is not None
    assert job.error.reason == "INTERNAL"
