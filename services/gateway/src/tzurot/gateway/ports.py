"""What gateway's use-cases need from the other services (gRPC adapters in clients.py)."""

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Protocol

from pydantic import SecretStr

from tzurot.gateway.domain import (
    HistoryTurn,
    KeyUse,
    ReplyEvent,
    ReplyRequest,
    SkillInfo,
    WalletKey,
)
from tzurot.gateway.voice import SpeechBilled, SpeechDone, Voice
from tzurot.v1 import memory_pb2 as mem


class Inference(Protocol):
    def generate_reply(self, request: ReplyRequest) -> AsyncGenerator[ReplyEvent, None]:
        """Streams the answer; closing the generator early must stop the generation."""
        ...


class History(Protocol):
    """What Generate/ConfirmDelivery need from memory: storing a delivered exchange."""

    async def store_exchange(
        self,
        *,
        job_id: str,
        conversation_id: str,
        personality_id: str,
        user_id: str,
        turns: Sequence[HistoryTurn],
        used_memory_ids: Sequence[str] = (),
        extract_facts: bool = False,
        form_memories: bool = True,
    ) -> None: ...

    # Consolidation (decay, merge, reflect), triggered by activity.
    async def consolidate(self) -> None: ...


class ExchangeTurns(Protocol):
    """Finding and deleting turns by their messages: deleting an exchange (❌, and the one a
    🔄's answer replaces once delivered)."""

    async def find_turns(self, message_ids: Sequence[str]) -> list[HistoryTurn]:
        """Turns posted as any of the Discord messages, with their job ids."""
        ...

    async def delete_turns(self, message_ids: Sequence[str]) -> int:
        """Deletes the turns posted as any of the messages; how many."""
        ...


class Memory(History, ExchangeTurns, Protocol):
    """Everything the admin use-cases ask of memory too."""

    async def clear_turns(
        self, conversation_id: str, personality_id: str, user_id: str | None
    ) -> int:
        """Deletes the conversation's turns: only those of `user_id`'s exchanges, or every
        user's when it is None."""
        ...

    async def remove_last_exchange(
        self, conversation_id: str, personality_id: str, user_id: str
    ) -> list[HistoryTurn]: ...

    async def forget_user(self, user_id: str) -> int:
        """Deletes the user's turns and memories; the number of rows deleted."""
        ...

    async def forget_personality(self, personality_id: str) -> int:
        """Deletes everything memory keeps of the personality (every user's turns and the
        channel's, memories and lore, modes, what waits to be formed); rows deleted."""
        ...

    async def export_user(self, user_id: str) -> mem.ExportUserResponse:
        """The user's stored turns and long-term memories, oldest first (data export)."""
        ...

    # Long-term memory: forwarded as memory's messages (gateway adds nothing of its own).
    async def query_memories(
        self, request: mem.QueryMemoriesRequest
    ) -> mem.QueryMemoriesResponse: ...

    async def drop_weak_memories(
        self, request: mem.DropWeakMemoriesRequest
    ) -> mem.DropWeakMemoriesResponse: ...

    async def count_memories(
        self, request: mem.CountMemoriesRequest
    ) -> mem.CountMemoriesResponse: ...

    async def list_memories(self, request: mem.ListMemoriesRequest) -> mem.ListMemoriesResponse: ...

    async def delete_memory(self, request: mem.DeleteMemoryRequest) -> mem.DeleteMemoryResponse: ...

    async def add_memory(self, request: mem.AddMemoryRequest) -> mem.AddMemoryResponse:
        """Imports (shapes.inc): with memory.id the call is idempotent."""
        ...

    async def has_history(self, conversation_id: str, personality_id: str) -> bool:
        """Whether the conversation holds a turn of the personality (greetings)."""
        ...

    async def import_exchange(self, request: mem.StoreExchangeRequest) -> mem.StoreExchangeResponse:
        """Imports (a shapes.inc history): idempotent on the job id; `created` says whether
        it was stored now."""
        ...

    async def get_memory_mode(self, personality_id: str, user_id: str) -> mem.MemoryMode: ...

    async def edit_turn(self, message_id: str, content: str, *, job_id: str = "") -> None:
        """The turn posted as the message (only `job_id`'s, when set) takes `content`."""
        ...

    async def set_memory_mode(
        self, personality_id: str, user_id: str, mode: mem.MemoryMode
    ) -> mem.MemoryMode: ...


class SkillCatalog(Protocol):
    async def list_skills(self) -> list[SkillInfo]:
        """The skills inference offers."""
        ...


class KeyVault(Protocol):
    async def put_key(self, user_id: str, provider: str, api_key: SecretStr) -> WalletKey: ...

    async def list_keys(self, user_id: str) -> list[WalletKey]: ...

    async def delete_key(self, user_id: str, provider: str) -> bool: ...

    async def record_uses(self, uses: Sequence[KeyUse]) -> None:
        """Last used times and rejections (keyvault's MarkUsed), in one call."""
        ...


MARKED_CLONES_WAIT_SECONDS = 10.0
"""How long listing an ElevenLabs account for the clones marked for a personality may take
(`Speech.marked_clones`): a sweep of lost clones that best does without, never the 480 s a
clone may take; one that gives up is tried again (admin/lost_clones.py)."""


class Speech(Protocol):
    """Inference's voice RPCs (issue 17)."""

    def synthesize_speech(
        self, user_id: str, voice: Voice, text: str
    ) -> AsyncIterator[bytes | SpeechBilled | SpeechDone]:
        """SpeechBilled once the provider accepted the text, the voice message's bytes in
        chunks, then one SpeechDone."""
        ...

    async def clone_voice(
        self,
        user_id: str,
        name: str,
        description: str,
        samples: Sequence[tuple[str, bytes]],
        *,
        personality_id: str,
    ) -> str:
        """An ElevenLabs Instant Voice Clone with the user's key; its voice id. The clone is
        marked for the personality (found again by `marked_clones` if its answer is lost);
        nothing else is deleted (gateway sweeps the lost clones itself, under its locks)."""
        ...

    async def delete_voice(self, user_id: str, voice_id: str) -> bool:
        """Deletes an ElevenLabs voice with the user's key; False when it was gone already."""
        ...

    async def marked_clones(self, user_id: str, personality_id: str) -> list[str]:
        """The voice ids of the clones in the user's ElevenLabs account marked for the
        personality (also those whose answer was lost, which voice_clones never recorded).
        Gives up after MARKED_CLONES_WAIT_SECONDS (DEADLINE_EXCEEDED)."""
        ...
