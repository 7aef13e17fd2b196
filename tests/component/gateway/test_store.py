"""GatewayStore against real Postgres: users, personalities and aliases, jobs and usage."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway import tables as t
from tzurot.gateway.cache import TtlCache
from tzurot.gateway.domain import Actor, JobError, JobStatus, Persona, Personality, Usage
from tzurot.gateway.personalities import PersonalitySeed, parse_seed_yaml
from tzurot.gateway.store import AdminStore, GatewayStore, NewJob
from tzurot.runtime.errors import AlreadyExists, FailedPrecondition

from .conftest import USAGE, seed

pytestmark = pytest.mark.component


async def rows(engine: AsyncEngine, table: sa.Table) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        result = await conn.execute(sa.select(table))
        return [dict(row._mapping) for row in result]


def new_job(user_id: str, personality_id: str, key: str = "msg-1") -> NewJob:
    return NewJob(
        idempotency_key=key,
        user_id=user_id,
        personality_id=personality_id,
        guild_id="guild-1",
        channel_id="channel-1",
        request_content="Hello",
        request_message_ids=(key,),
        author_id="100",
        author_name="Alice",
    )


# ---- users ----


async def test_upsert_user_is_idempotent_and_follows_renames(
    store: GatewayStore, engine: AsyncEngine
) -> None:
    first = await store.upsert_user(Actor("100", "Alice"))
    again = await store.upsert_user(Actor("100", "Alice"))
    assert again == first
    assert (first.timezone, first.superuser, first.nsfw_verified) == ("UTC", False, False)
    assert first.created_at.tzinfo is not None

    renamed = await store.upsert_user(Actor("100", "Alice B."))
    assert (renamed.id, renamed.display_name) == (first.id, "Alice B.")
    other = await store.upsert_user(Actor("200", "Bob"))
    assert other.id != first.id
    assert len(await rows(engine, t.users)) == 2


async def test_concurrent_upserts_of_one_user_make_one_row(
    store: GatewayStore, engine: AsyncEngine
) -> None:
    users = await asyncio.gather(*(store.upsert_user(Actor("300", "Carol")) for _ in range(8)))
    assert len({u.id for u in users}) == 1
    assert len(await rows(engine, t.users)) == 1


# ---- personalities ----


async def test_import_creates_then_updates_by_slug(
    store: GatewayStore, engine: AsyncEngine
) -> None:
    lilith = seed("lilith")
    created, was_created = await store.import_personality(lilith, owner_user_id=None)
    assert was_created is True
    assert (created.slug, created.display_name) == ("lilith", "Lilith")
    assert created.aliases == ("lil", "the night queen")
    assert created.character.description.startswith("A tall figure")
    assert created.birthday == "10-31"
    assert (created.public, created.nsfw, created.owner_user_id) == (True, False, None)
    assert created.default_llm_config_id is not None
    config = await store.get_llm_config(created.default_llm_config_id)
    assert config is not None
    assert (config.provider, config.model, config.owner_user_id) == (
        "openrouter",
        "anthropic/claude-sonnet-4.5",
        None,
    )

    changed = lilith.model_copy(
        update={
            "system_prompt": "You are Lilith, changed.",
            "aliases": ["Lily", "@Night Queen"],
            "llm": lilith.llm.model_copy(update={"model": "openai/gpt-5"}) if lilith.llm else None,
        }
    )
    updated, was_created = await store.import_personality(changed, owner_user_id=None)
    assert was_created is False
    assert updated.id == created.id
    assert updated.system_prompt == "You are Lilith, changed."
    assert updated.aliases == ("Lily", "Night Queen")
    assert updated.created_at == created.created_at
    assert updated.updated_at > created.updated_at
    assert updated.default_llm_config_id == created.default_llm_config_id
    config = await store.get_llm_config(created.default_llm_config_id)
    assert config is not None
    assert config.model == "openai/gpt-5"

    assert len(await rows(engine, t.personalities)) == 1
    assert len(await rows(engine, t.llm_configs)) == 1
    assert sorted(r["alias"] for r in await rows(engine, t.personality_aliases)) == [
        "lily",
        "night queen",
    ]
    assert await store.find_personality("lil") is None
    found = await store.find_personality("lily")
    assert found is not None
    assert found.id == created.id


async def test_import_without_llm_has_no_default_config(store: GatewayStore) -> None:
    personality, _ = await store.import_personality(
        PersonalitySeed(name="Plain One"), owner_user_id=None
    )
    assert (personality.slug, personality.default_llm_config_id) == ("plain-one", None)
    assert personality.aliases == ()
    assert personality.character.description == ""


async def test_owner_is_set_on_create_and_kept_on_update(store: GatewayStore) -> None:
    owner = await store.upsert_user(Actor("cli:dana", "Dana"))
    other = await store.upsert_user(Actor("cli:eve", "Eve"))
    created, _ = await store.import_personality(
        PersonalitySeed(name="Mine", public=False), owner_user_id=owner.id
    )
    assert (created.owner_user_id, created.public) == (owner.id, False)
    updated, _ = await store.import_personality(
        PersonalitySeed(name="Mine", public=True), owner_user_id=other.id
    )
    assert (updated.owner_user_id, updated.public) == (owner.id, True)


@pytest.mark.parametrize(
    "name",
    [
        "lilith",
        "LILITH",
        "Lilith",
        "  lilith ",
        "lil",
        "LIL",
        "@Lil",
        "The Night Queen",
        "the   night queen",
    ],
)
async def test_find_personality_by_slug_display_name_or_alias(
    store: GatewayStore, lilith: Personality, name: str
) -> None:
    found = await store.find_personality(name)
    assert found is not None
    assert found == lilith


async def test_find_personality_by_display_name_differing_from_slug(store: GatewayStore) -> None:
    created, _ = await store.import_personality(
        PersonalitySeed(name="The Oracle of Delphi", slug="pythia"), owner_user_id=None
    )
    for name in ("pythia", "the oracle of delphi", "THE ORACLE OF DELPHI"):
        found = await store.find_personality(name)
        assert found is not None
        assert found.id == created.id
    assert await store.find_personality("oracle") is None
    assert await store.find_personality("") is None


async def test_slug_match_wins_over_another_personality_alias(store: GatewayStore) -> None:
    sage, _ = await store.import_personality(seed("sage"), owner_user_id=None)
    other, _ = await store.import_personality(
        PersonalitySeed(name="Sage Impostor", slug="impostor", aliases=["sage2"]),
        owner_user_id=None,
    )
    found = await store.find_personality("sage")
    assert found is not None
    assert found.id == sage.id
    found = await store.find_personality("Sage2")
    assert found is not None
    assert found.id == other.id


async def test_alias_of_another_personality_is_refused(
    store: GatewayStore, engine: AsyncEngine, lilith: Personality
) -> None:
    with pytest.raises(AlreadyExists) as caught:
        await store.import_personality(
            PersonalitySeed(name="Lilim", aliases=["lili", "@LIL"]), owner_user_id=None
        )
    assert "lil" in caught.value.message
    assert "lilith" in caught.value.message
    # Nothing of the refused import was kept.
    assert [r["slug"] for r in await rows(engine, t.personalities)] == ["lilith"]
    again = await store.find_personality("lil")
    assert again is not None
    assert again.id == lilith.id


async def test_reimport_may_keep_its_own_aliases(store: GatewayStore, lilith: Personality) -> None:
    updated, created = await store.import_personality(seed("lilith"), owner_user_id=None)
    assert created is False
    assert updated.aliases == lilith.aliases


async def test_duplicate_aliases_in_one_seed_collapse(store: GatewayStore) -> None:
    personality, _ = await store.import_personality(
        parse_seed_yaml("name: Twin\naliases: ['Tw', 'tw', '@TW']\n"), owner_user_id=None
    )
    assert len(personality.aliases) == 1


async def test_list_and_get_personalities(store: GatewayStore, lilith: Personality) -> None:
    sage, _ = await store.import_personality(seed("sage"), owner_user_id=None)
    assert [p.slug for p in await store.list_personalities()] == ["lilith", "sage"]
    assert await store.get_personality(sage.id) == sage
    assert await store.get_personality("00000000-0000-0000-0000-000000000000") is None


# ---- jobs ----


async def test_claim_job_once_per_idempotency_key(store: GatewayStore, lilith: Personality) -> None:
    user = await store.upsert_user(Actor("100", "Alice"))
    job, claimed = await store.claim_job(new_job(user.id, lilith.id))
    assert claimed is True
    assert (job.status, job.attempts, job.idempotency_key) == (JobStatus.QUEUED, 0, "msg-1")
    assert (job.request_message_ids, job.channel_id) == (("msg-1",), "channel-1")
    assert (job.usage, job.error, job.started_at) == (None, None, None)

    same, claimed = await store.claim_job(new_job(user.id, lilith.id))
    assert claimed is False
    assert same == job
    other, claimed = await store.claim_job(new_job(user.id, lilith.id, key="msg-2"))
    assert claimed is True
    assert other.id != job.id


async def test_concurrent_claims_make_exactly_one_job(
    store: GatewayStore, engine: AsyncEngine, lilith: Personality
) -> None:
    user = await store.upsert_user(Actor("100", "Alice"))
    for key in ("race-a", "race-b", "race-c"):
        results = await asyncio.gather(
            *(store.claim_job(new_job(user.id, lilith.id, key=key)) for _ in range(2))
        )
        assert sorted(claimed for _, claimed in results) == [False, True]
        assert len({job.id for job, _ in results}) == 1
    assert len(await rows(engine, t.jobs)) == 3


async def test_job_lifecycle_to_delivered_with_usage_logged(
    store: GatewayStore, engine: AsyncEngine, lilith: Personality
) -> None:
    user = await store.upsert_user(Actor("100", "Alice"))
    job, _ = await store.claim_job(new_job(user.id, lilith.id))

    running = await store.start_attempt(job.id)
    assert (running.status, running.attempts) == (JobStatus.RUNNING, 1)
    assert running.started_at is not None

    streamed = await store.finish_job(job.id, "Hello, mortal.", USAGE, "chat")
    assert (streamed.status, streamed.content, streamed.usage) == (
        JobStatus.STREAMED,
        "Hello, mortal.",
        USAGE,
    )
    assert streamed.finished_at is not None
    assert streamed.delivered_at is None
    [usage] = await rows(engine, t.usage_log)
    assert (usage["user_id"], usage["job_id"], usage["request_type"]) == (user.id, job.id, "chat")
    assert (usage["provider"], usage["model"], usage["input_tokens"], usage["output_tokens"]) == (
        USAGE.provider,
        USAGE.model,
        USAGE.input_tokens,
        USAGE.output_tokens,
    )

    delivered = await store.mark_delivered(job.id, ["answer-1", "answer-2"])
    assert delivered.status is JobStatus.DELIVERED
    assert delivered.delivered_message_ids == ("answer-1", "answer-2")
    assert delivered.delivered_at is not None
    assert await store.get_job(job.id) == delivered
    assert await store.get_job_by_key("msg-1") == delivered
    assert await store.get_job_by_key("nope") is None


async def test_a_run_whose_job_was_taken_over_writes_nothing(
    store: GatewayStore, engine: AsyncEngine, lilith: Personality
) -> None:
    """Attempt 1 lost its lease (a long Postgres failover) and attempt 2 took the job over:
    attempt 1's heartbeat, answer (and usage) and failure are refused, attempt 2's are not."""
    user = await store.upsert_user(Actor("100", "Alice"))
    first, claimed = await store.claim_job(new_job(user.id, lilith.id), start=True)
    assert (claimed, first.attempts) == (True, 1)
    assert await store.heartbeat(first.id, 1)
    second, claimed = await store.claim_job(
        new_job(user.id, lilith.id), lease_seconds=0, start=True
    )
    assert (claimed, second.status, second.attempts) == (True, JobStatus.RUNNING, 2)

    assert not await store.heartbeat(first.id, 1)
    with pytest.raises(FailedPrecondition) as taken:
        await store.finish_job(first.id, "the old run's answer", USAGE, "chat", attempt=1)
    assert taken.value.reason == "JOB_TAKEN_OVER"
    assert not await store.fail_job(first.id, JobError("CANCELLED", "GONE", "client gone"), 1)
    assert await rows(engine, t.usage_log) == []
    running = await store.get_job(first.id)
    assert running is not None
    assert (running.status, running.attempts, running.error) == (JobStatus.RUNNING, 2, None)

    assert await store.heartbeat(first.id, 2)
    done = await store.finish_job(first.id, "the answer", USAGE, "chat", attempt=2)
    assert (done.status, done.content) == (JobStatus.STREAMED, "the answer")
    assert len(await rows(engine, t.usage_log)) == 1


async def test_claim_with_start_runs_the_attempt_in_the_same_statement(
    store: GatewayStore, lilith: Personality
) -> None:
    user = await store.upsert_user(Actor("100", "Alice"))
    job, claimed = await store.claim_job(new_job(user.id, lilith.id), start=True)
    assert claimed
    assert (job.status, job.attempts) == (JobStatus.RUNNING, 1)
    assert job.started_at is not None
    await store.fail_job(job.id, JobError("UNAVAILABLE", "DOWN", "inference is down"))

    retried, claimed = await store.claim_job(new_job(user.id, lilith.id), start=True)
    assert claimed
    assert (retried.id, retried.status, retried.attempts) == (job.id, JobStatus.RUNNING, 2)
    assert (retried.error, retried.started_at) == (None, job.started_at)


async def test_effective_persona_prefers_the_one_for_this_personality(
    store: GatewayStore, lilith: Personality
) -> None:
    admin = AdminStore(store.engine)
    user = await store.upsert_user(Actor("100", "Alice"))
    assert await admin.effective_persona(user.id, lilith.id) is None
    await admin.set_persona(user.id, None, Persona(name="Al"))
    assert await admin.effective_persona(user.id, lilith.id) == Persona(name="Al")
    await admin.set_persona(user.id, lilith.id, Persona(name="Mortal"))
    assert await admin.effective_persona(user.id, lilith.id) == Persona(name="Mortal")
    other = await store.upsert_user(Actor("200", "Bob"))
    assert await admin.effective_persona(other.id, lilith.id) is None


async def test_cached_personalities_and_configs_follow_writes_in_this_process(
    store: GatewayStore, lilith: Personality
) -> None:
    admin = AdminStore(store.engine, store.catalog)
    assert await store.find_personality("lilith") == lilith  # now cached by name and id
    assert lilith.default_llm_config_id is not None
    config = await store.get_llm_config(lilith.default_llm_config_id)
    assert config is not None

    await admin.update_personality(lilith.id, {"display_name": "Lady Lilith"}, ["lili"])
    renamed = await store.find_personality("lilith")
    assert renamed is not None
    assert (renamed.display_name, renamed.aliases) == ("Lady Lilith", ("lili",))
    assert await store.get_personality(lilith.id) == renamed
    assert await store.find_personality("lili") == renamed
    await admin.remove_alias("lili", lilith.id)
    assert await store.find_personality("lili") is None

    original = seed("lilith")
    assert original.llm is not None
    llm = original.llm.model_copy(update={"model": "another-model"})
    reseeded = original.model_copy(update={"llm": llm})
    await store.import_personality(reseeded, owner_user_id=None)
    changed = await store.get_llm_config(lilith.default_llm_config_id)
    assert changed is not None
    assert changed.model == "another-model"

    await admin.delete_personality(lilith.id)
    assert await store.find_personality("lilith") is None
    assert await store.get_personality(lilith.id) is None


async def test_another_replica_sees_writes_within_its_cache_ttl(
    engine: AsyncEngine, store: GatewayStore, lilith: Personality
) -> None:
    replica = GatewayStore(engine)
    now = [0.0]  # the replica's clock, moved by hand: a loaded machine cannot outrun the TTL
    replica.catalog = TtlCache(0.2, clock=lambda: now[0])
    assert await replica.find_personality("lilith") == lilith
    await AdminStore(store.engine, store.catalog).update_personality(
        lilith.id, {"public": False}, None
    )
    cached = await replica.find_personality("lilith")
    assert cached is not None
    assert cached.public  # not this replica's write: cached until the TTL ends
    now[0] += 0.25
    fresh = await replica.find_personality("lilith")
    assert fresh is not None
    assert not fresh.public


async def test_failed_job_keeps_its_error_and_logs_no_usage(
    store: GatewayStore, engine: AsyncEngine, lilith: Personality
) -> None:
    user = await store.upsert_user(Actor("100", "Alice"))
    job, _ = await store.claim_job(new_job(user.id, lilith.id))
    await store.start_attempt(job.id)
    assert await store.fail_job(
        job.id, JobError("UNAVAILABLE", "PROVIDER_UNAVAILABLE", "openrouter is unreachable")
    )
    failed = await store.get_job(job.id)
    assert failed is not None
    assert failed.status is JobStatus.FAILED
    assert failed.error == JobError(
        "UNAVAILABLE", "PROVIDER_UNAVAILABLE", "openrouter is unreachable"
    )
    assert failed.finished_at is not None
    assert failed.usage is None
    assert await rows(engine, t.usage_log) == []
    # Failed already: failing it again changes nothing.
    assert not await store.fail_job(job.id, JobError("INTERNAL", "LATER", "a later error"))
    again = await store.get_job(job.id)
    assert again is not None
    assert again.error == failed.error


async def test_status_outside_the_known_set_is_refused(
    store: GatewayStore, engine: AsyncEngine, lilith: Personality
) -> None:
    user = await store.upsert_user(Actor("100", "Alice"))
    job, _ = await store.claim_job(new_job(user.id, lilith.id))
    with pytest.raises(sa.exc.IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(sa.update(t.jobs).where(t.jobs.c.id == job.id).values(status="x"))


async def test_usage_rows_keep_zero_token_answers(
    store: GatewayStore, engine: AsyncEngine, lilith: Personality
) -> None:
    user = await store.upsert_user(Actor("100", "Alice"))
    job, _ = await store.claim_job(new_job(user.id, lilith.id))
    free = Usage(provider="ollama", model="llama3", input_tokens=0, output_tokens=0)
    streamed = await store.finish_job(job.id, "", free, "chat")
    assert streamed.usage == free
    assert len(await rows(engine, t.usage_log)) == 1


async def test_concurrent_imports_of_one_seed_make_one_personality(
    store: GatewayStore, engine: AsyncEngine
) -> None:
    results = await asyncio.gather(
        *(store.import_personality(seed("lilith"), owner_user_id=None) for _ in range(4))
    )
    assert sorted(created for _, created in results) == [False, False, False, True]
    assert len({p.id for p, _ in results}) == 1
    assert len(await rows(engine, t.personalities)) == 1
    assert len(await rows(engine, t.llm_configs)) == 1


async def test_concurrent_imports_claiming_one_alias_let_one_win(
    store: GatewayStore, engine: AsyncEngine
) -> None:
    outcomes = await asyncio.gather(
        *(
            store.import_personality(
                PersonalitySeed(name=f"Rival {i}", aliases=["the rival"]), owner_user_id=None
            )
            for i in range(4)
        ),
        return_exceptions=True,
    )
    winners = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(o, AlreadyExists) for o in outcomes if o not in winners)
    assert len(await rows(engine, t.personality_aliases)) == 1


async def test_a_running_job_past_its_lease_is_failed_retryable_by_the_sweep(
    store: GatewayStore, lilith: Personality
) -> None:
    user = await store.upsert_user(Actor("discord:orphan", "Orphan"))
    job, _ = await store.claim_job(new_job(user.id, lilith.id, key="orphan-1"), start=True)
    error = JobError("UNAVAILABLE", "GATEWAY_RESTARTING", "restarted")
    assert await store.fail_orphaned_jobs(60.0, error) == []  # its lease still runs
    await asyncio.sleep(0.2)
    assert await store.fail_orphaned_jobs(0.1, error) == [job.id]
    failed = await store.get_job(job.id)
    assert failed is not None
    assert (failed.status, failed.error) == (JobStatus.FAILED, error)
