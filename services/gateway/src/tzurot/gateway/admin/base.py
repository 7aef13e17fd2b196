"""What every admin capability shares: who acts (`Principal`), the lookups that check what
they may see or change, and input checks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tzurot.gateway.domain import Actor, ConfigSource, LlmConfig, Location, Personality, User
from tzurot.gateway.ids import is_uuid
from tzurot.gateway.ports import (
    MARKED_CLONES_WAIT_SECONDS,
    KeyVault,
    Memory,
    SkillCatalog,
    Speech,
)
from tzurot.gateway.provider_list import KNOWN_PROVIDERS, FixedProviders, ProviderNames
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import AdminStore, GatewayStore
from tzurot.runtime.errors import InvalidArgument, NotFound, PermissionDenied, quoted

MAX_NAME = 80
MAX_TEXT = 64_000


@dataclass(frozen=True)
class Principal:
    """Who acts: a user, or the operator itself (an internal identity without an actor)."""

    user: User | None

    @property
    def superuser(self) -> bool:
        return self.user is None or self.user.superuser

    @property
    def user_id(self) -> str | None:
        return None if self.user is None else self.user.id

    def require_user(self) -> User:
        if self.user is None:
            raise InvalidArgument("actor", "this request acts for a user: set actor.user_id")
        return self.user


@dataclass(frozen=True)
class SettingTarget:
    """The level a setting is written at, and what names it there."""

    scope: ConfigSource
    personality: str = ""
    location: Location = Location()  # noqa: RUF009 - frozen
    # The actor may manage the location's channel (Discord's Manage Channels, from the bot).
    manage_channels: bool = False


def require(field: str, value: str, max_len: int = 200) -> str:
    value = value.strip()
    if not value:
        raise InvalidArgument(field, f"{field} is required")
    if len(value) > max_len:
        raise InvalidArgument(field, f"{field} is longer than {max_len} characters")
    return value


def limit_text(field: str, value: str, max_len: int) -> str:
    if len(value) > max_len:
        raise InvalidArgument(field, f"{field} is longer than {max_len} characters")
    return value


def managed_channel(who: Principal, where: Location, manage_channels: bool) -> str:
    """The channel `who` changes for everyone there: the bot passes Discord's Manage
    Channels permission as the interaction showed it; nobody else (but the operator and
    superusers) changes a channel for everyone."""
    channel_id = require("location.channel_id", where.conversation_id)
    require_manage_channels(who, manage_channels)
    return channel_id


def require_manage_channels(who: Principal, manage_channels: bool) -> None:
    """PERMISSION_DENIED unless `who` may change a channel for everyone there (see
    `managed_channel`)."""
    if not (who.superuser or manage_channels):
        raise PermissionDenied(
            "changing this channel for everyone needs the Manage Channels permission",
            reason="MANAGE_CHANNELS_REQUIRED",
        )


def require_manage_guild(who: Principal, manage_guild: bool) -> None:
    """PERMISSION_DENIED unless `who` may change the server for everyone: Discord's Manage
    Server permission as the bot saw it on the interaction, or the operator, or a superuser."""
    if not (who.superuser or manage_guild):
        raise PermissionDenied(
            "this needs the Manage Server permission", reason="MANAGE_GUILD_REQUIRED"
        )


def may_see(personality: Personality, who: Principal) -> bool:
    return personality.public or who.superuser or personality.owner_user_id == who.user_id


def named_for(who: Principal) -> Callable[[Personality], str]:
    """How an error names a personality to `who`: its display name, or "another
    personality" for someone else's private one (never revealed)."""
    return lambda p: p.display_name if may_see(p, who) else "another personality"


class AdminBase:
    def __init__(
        self,
        *,
        gateway: Gateway,
        store: GatewayStore,
        memory: Memory,
        keyvault: KeyVault,
        operator_identities: frozenset[str],
        skills: SkillCatalog | None = None,
        public_url: str = "",
        speech: Speech | None = None,
        voice_max_characters: int = 2000,
        deletion_lease_seconds: float = 120.0,
        marked_clones_wait_seconds: float = MARKED_CLONES_WAIT_SECONDS,
        providers: ProviderNames | None = None,
    ) -> None:
        # The providers inference lists (the wallet's cached `InferenceProviders`); a voice
        # names one of them (voice.py `check_speech_provider`).
        self._providers = providers if providers is not None else FixedProviders(KNOWN_PROVIDERS)
        # How long a sweep of lost clones waits for an ElevenLabs account's list (lost_clones.py).
        self._marked_clones_wait = marked_clones_wait_seconds
        # How long a deletion's request (then a sweep) holds it (deletions.py).
        self._deletion_lease = deletion_lease_seconds
        self._speech = speech  # inference's voice RPCs
        self._voice_max_characters = voice_max_characters  # the operator's cap
        self._gateway = gateway
        self._public_url = public_url.rstrip("/")  # where the edge serves avatars
        self._store = store
        self._db = AdminStore(store.engine, store.catalog)
        self._memory = memory
        self._keyvault = keyvault
        self._operators = operator_identities
        self._skills = skills

    async def principal(
        self, actor: Actor | None, caller: str | None, *, refuse_if_deleting: bool = True
    ) -> Principal:
        """Who acts; a user whose data deletion is under way is refused (`Gateway.user`)."""
        if actor is not None:
            require("actor.user_id", actor.platform_user_id)
            user = await self._gateway.user(actor, refuse_if_deleting=refuse_if_deleting)
            return Principal(user)
        if caller is not None and caller in self._operators:
            return Principal(None)
        raise InvalidArgument("actor", "actor.user_id is required")

    async def _personality(
        self, name: str, who: Principal, field: str = "personality"
    ) -> Personality:
        require(field, name)
        found = await self._gateway.find_personality_for(name, who.user, operator=who.user is None)
        if found is None or not may_see(found, who):
            raise NotFound(f"no personality named {quoted(name)}", reason="PERSONALITY_NOT_FOUND")
        return found

    async def _owned(self, name: str, who: Principal, field: str = "personality") -> Personality:
        found = await self._personality(name, who, field)
        if not (who.superuser or found.owner_user_id == who.user_id):
            raise PermissionDenied(
                f"only the owner of {quoted(found.slug)} or a superuser may change it",
                reason="NOT_OWNER",
            )
        return found

    async def _forget_personality(self, personality_id: str) -> int:
        """The steps of deleting a personality that go before its row (the row is what asking
        again finds it by): its answers still in flight are dropped, so none is stored into
        history afterwards (one a dead bot left half shown is handed to the bot to say why,
        store/in_flight.py), then memory forgets everything of it. Both can run again; rows
        deleted."""
        dropped = await self._db.drop_answers_in_flight(personality_id, self._gateway.clock.now())
        self._gateway.events.wake()  # its answers a dead bot left half shown: say why
        return dropped + await self._memory.forget_personality(personality_id)

    async def _usable_config(self, who: Principal, config_id: str, field: str) -> LlmConfig:
        require(field, config_id)
        config = await self._store.get_llm_config(config_id) if is_uuid(config_id) else None
        if config is None or not (
            config.owner_user_id is None or config.owner_user_id == who.user_id or who.superuser
        ):
            raise NotFound(f"no LLM config {config_id}", reason="CONFIG_NOT_FOUND")
        return config
