"""Wires gateway: database, clients of inference/memory/keyvault, use-cases, gRPC server."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import grpc
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.db.engine import check_database, create_engine, dispose
from tzurot.gateway import changelog
from tzurot.gateway.admin import Admin
from tzurot.gateway.clients import GrpcInference, GrpcKeyVault, GrpcMemory
from tzurot.gateway.clock import Clock
from tzurot.gateway.config import DAY_SECONDS, GatewaySettings
from tzurot.gateway.domain import Personality
from tzurot.gateway.facts import FactExtraction
from tzurot.gateway.freewill import FreeWill
from tzurot.gateway.freewill_plan import FreeWillPolicy
from tzurot.gateway.greetings import Greetings
from tzurot.gateway.group_admin import GroupAdmin
from tzurot.gateway.group_server import GatewayGroupServicer, GroupFeatures
from tzurot.gateway.migrations import SCRIPT_LOCATION
from tzurot.gateway.notifications import Notifications
from tzurot.gateway.provider_list import InferenceProviders
from tzurot.gateway.ratelimit import BucketPolicy
from tzurot.gateway.resolve import global_default_config
from tzurot.gateway.service import Gateway, GatewayLimits
from tzurot.gateway.store import GatewayStore
from tzurot.gateway.tables import SCHEMA
from tzurot.gateway.wallet import Wallet
from tzurot.gateway.warm import warm_up
from tzurot.runtime.client import secure_channel
from tzurot.runtime.errors import NotFound
from tzurot.runtime.server import RunningServer, ServiceRegistration, create_server
from tzurot.runtime.tls import load_tls
from tzurot.v1 import gateway_pb2_grpc

SERVICE_NAME = "tzurot.v1.GatewayService"
# Inference's methods gRPC's retry policy re-sends on UNAVAILABLE: only ListSkills and
# ListProviders, which cost nothing. Never a paid call (GenerateReply, ExtractFacts): inference
# answers UNAVAILABLE after it paid (an empty answer, a provider timeout or 5xx, a later
# attachment failing to download), and the policy sees status codes only, so it would buy
# transcripts, descriptions and answers again, past inference's own retry budget. With
# retries enabled on the channel, gRPC still retries those transparently when the request
# never reached inference's code (gRFC A6: a stream refused, a GOAWAY, a connection lost
# before the request was written); a connection refused is waited out before an answer
# (clients.CONNECT_WAIT_SECONDS). Not ValidateKey: inference already retries the provider
# once, and a dead network must fail fast, not after attempts x retries.
INFERENCE_RETRIED = ("ListSkills", "ListProviders")
log = structlog.get_logger(__name__)


@dataclass
class GatewayApp:
    running: RunningServer
    channels: tuple[grpc.aio.Channel, ...]
    engine: AsyncEngine
    grace: float
    gateway: Gateway
    features: GroupFeatures
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    providers: InferenceProviders | None = None
    """Inference's cached provider list, whose background refresh ends before its channel."""

    @property
    def port(self) -> int:
        return self.running.port

    async def stop(self) -> None:
        """Drains calls for `grace` seconds, cancels the background work, then releases the
        jobs still running here (failed-retryable), so none is left `running` for a lease
        after this process."""
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.gateway.stopping()
        await self.running.stop(self.grace)
        await self.gateway.stop_background()
        try:
            await self.gateway.release_running_jobs()
        except Exception:  # the database may be gone too; the lease covers that case
            log.warning("job.release_failed", exc_info=True)
        await self.gateway.key_uses.flush()  # the last uses, before keyvault's channel closes
        if self.providers is not None:  # its refresh, before inference's channel closes
            await self.providers.stop()
        for channel in self.channels:
            await channel.close()
        await dispose(self.engine)


async def start_gateway(settings: GatewaySettings, *, clock: Clock | None = None) -> GatewayApp:
    """Starts gateway; `clock` replaces the system clock for scheduling (tests)."""
    # Local configuration fails first, before the network is touched.
    tls = load_tls(settings.tls_dir)
    engine = create_engine(
        settings.database_url.get_secret_value(), server_settings={"application_name": "gateway"}
    )
    channels: list[grpc.aio.Channel] = []

    def channel(
        addr: str, identity: str, retry_service: str | None = None, *, wait_for_ready: bool = False
    ) -> grpc.aio.Channel:
        made = secure_channel(
            addr,
            tls,
            server_identity=identity,
            default_timeout=settings.default_deadline_seconds,
            wait_for_ready=wait_for_ready,
            retry_service=retry_service,
            max_attempts=settings.inference_max_attempts,
            retry_methods=INFERENCE_RETRIED,
        )
        channels.append(made)
        return made

    try:
        await check_database(engine, SCHEMA, script_location=SCRIPT_LOCATION)
        store = GatewayStore(engine, max_runs=settings.job_max_runs)
        # Inference's and memory's calls fail fast after their own bounded connect waits
        # (clients.CONNECT_WAIT_SECONDS, HISTORY_CONNECT_WAIT_SECONDS). Keyvault's wait for
        # ready within the deadline: a keyvault still starting (its first connection refused,
        # the channel in reconnect backoff) or restarting is waited for; no key, no answer.
        inference = GrpcInference(
            channel(settings.inference_addr, "inference", "tzurot.v1.InferenceService"),
            generate_timeout=settings.generate_deadline_seconds,
        )
        memory = GrpcMemory(channel(settings.memory_addr, "memory"))
        keyvault = GrpcKeyVault(channel(settings.keyvault_addr, "keyvault", wait_for_ready=True))
        # Inference knows the operator's own providers: one cached list for keys, voices and
        # the providers that take no key (admission, free will).
        providers = InferenceProviders(inference)
        gateway = Gateway(
            store=store,
            inference=inference,
            memory=memory,
            turns=memory,
            keyvault=keyvault,
            limits=GatewayLimits(
                max_message_chars=settings.max_message_chars,
                max_history_messages=settings.max_history_messages,
                duplicate_wait_seconds=settings.duplicate_wait_seconds,
                default_config=global_default_config(
                    settings.default_provider, settings.default_model
                ),
                job_lease_seconds=settings.job_lease_seconds,
                unfinished_after_seconds=settings.unfinished_after_seconds,
                unfinished_max_age_seconds=settings.unfinished_max_age_seconds,
                bot_events_retention_seconds=settings.bot_events_retention_days * DAY_SECONDS,
                superusers=settings.superusers,
                user_bucket=_bucket(settings.rate_user_capacity, settings.rate_user_per_minute),
                channel_bucket=_bucket(
                    settings.rate_channel_capacity, settings.rate_channel_per_minute
                ),
                guest_mode=settings.guest_mode,
                demo_all_free=settings.demo_all_free,
                guest_daily_budget=settings.guest_daily_budget,
                guest_user_bucket=_bucket(
                    settings.guest_user_per_day, settings.guest_user_per_day / (24 * 60)
                ),
                group_seed=settings.group_seed,
                events_poll_seconds=settings.events_poll_seconds,
                event_lease_seconds=settings.event_lease_seconds,
                consolidate_every=settings.consolidate_every_exchanges,
                key_use_flush_seconds=settings.key_use_flush_seconds,
                extract_facts=settings.facts_enabled,
            ),
            clock=clock,
            providers=providers,
        )
        features = _group_features(settings, gateway, keyvault, memory, store)
        wallet = Wallet(
            users=gateway,
            checker=inference,
            keyvault=keyvault,
            key_uses=gateway.key_uses,
            providers=providers,
        )
        admin = Admin(
            gateway=gateway,
            store=store,
            memory=memory,
            keyvault=keyvault,
            operator_identities=settings.operator_identities,
            skills=inference,
            public_url=settings.public_url,
            speech=inference,
            voice_max_characters=settings.voice_max_characters,
            deletion_lease_seconds=settings.deletion_lease_seconds,
            providers=providers,
        )
        admin.bot_owner_id = settings.bot_owner_id
        admin.superuser_ids = settings.superusers
        admin.count_operator_as_one_owner(store)
        servicer = GatewayGroupServicer(gateway, wallet, admin, features)
        running = await create_server(
            service="gateway",
            settings=settings,
            registrations=[
                ServiceRegistration(
                    SERVICE_NAME,
                    lambda server: gateway_pb2_grpc.add_GatewayServiceServicer_to_server(
                        servicer, server
                    ),
                )
            ],
            default_allowed=settings.allowed_callers,
        )
        await warm_up(store, channels)
        await running.start()
        if await features.notifications.announce_release():
            gateway.events.wake()
    except BaseException:
        for made in channels:
            await made.close()
        await engine.dispose()
        raise
    tasks = [
        asyncio.create_task(gateway.key_uses.run()),
        asyncio.create_task(gateway.run_sweeps(settings.sweep_seconds)),
        # Deletions cut short after memory forgot (admin/deletions.py), on every replica.
        asyncio.create_task(admin.run_deletion_sweep(settings.sweep_seconds)),
    ]
    if settings.facts_enabled:
        extraction = FactExtraction(
            memory,
            inference,
            user_of=gateway.group_store.user_by_id,
            personality_of=gateway.personality_by_id,
            config_of=gateway.effective_config,
            key_uses=gateway.key_uses,
            usage_log=store,
            batch=settings.facts_batch,
        )
        gateway.facts_waiting = extraction.kick
        tasks.append(asyncio.create_task(extraction.run(settings.facts_poll_seconds)))
    if settings.freewill_tick_seconds > 0:
        tasks.append(asyncio.create_task(features.freewill.run(settings.freewill_tick_seconds)))
    return GatewayApp(
        running=running,
        channels=tuple(channels),
        engine=engine,
        grace=settings.grace_seconds,
        gateway=gateway,
        features=features,
        tasks=tasks,
        providers=providers,
    )


def _group_features(
    settings: GatewaySettings,
    gateway: Gateway,
    keyvault: GrpcKeyVault,
    memory: GrpcMemory,
    store: GatewayStore,
) -> GroupFeatures:
    policy = FreeWillPolicy(
        quiet_after=timedelta(minutes=settings.freewill_quiet_after_minutes),
        min_gap=timedelta(minutes=settings.freewill_min_gap_minutes),
        check_every=(settings.freewill_check_min_seconds, settings.freewill_check_max_seconds),
    )

    async def personality_of(personality_id: str) -> Personality:
        found = await gateway.personality_by_id(personality_id)
        if found is None:
            raise NotFound(f"personality {personality_id} is gone", reason="PERSONALITY_NOT_FOUND")
        return found

    freewill = FreeWill(
        gateway.group_store,
        gateway.clock,
        keyvault,
        gateway.effective_config,
        personality_of,
        policy=policy,
        seed=settings.group_seed,
        allow_free_use=settings.freewill_free_use,
        providers=gateway.providers,
    )
    freewill.wake = gateway.events.wake
    gateway.groups.free_will_refusal = freewill.turn_refusal  # checked again when a turn runs
    return GroupFeatures(
        admin=GroupAdmin(gateway.group_store),
        freewill=freewill,
        notifications=Notifications(
            gateway.group_store,
            _releases(settings.changelog_path),
            changelog_url=settings.changelog_url,
        ),
        greetings=Greetings(gateway.group_store, memory, seed=str(settings.group_seed)),
    )


def _releases(path: Path | None) -> list[changelog.Release]:
    """The changelog's releases; none (notifications idle) when there is no readable file."""
    candidates = (
        [path]
        if path
        else [Path.cwd() / "CHANGELOG.md", Path(__file__).parents[5] / "CHANGELOG.md"]
    )
    for candidate in candidates:
        if candidate.is_file():
            try:
                return changelog.load(candidate)
            except changelog.ChangelogError as exc:
                log.warning("changelog.unreadable", path=str(candidate), error=str(exc))
                return []
    log.info("changelog.missing", tried=[str(c) for c in candidates])
    return []


def _bucket(capacity: int, per_minute: float) -> BucketPolicy | None:
    """A bucket policy, or None (no limit) when the capacity is 0."""
    if capacity <= 0 or per_minute <= 0:
        return None
    return BucketPolicy(capacity=capacity, refill_per_second=per_minute / 60)
