"""What gateway's use-cases need from the other services (gRPC adapters in clients.py)."""

from collections.abc import AsyncGenerator, Sequence
from typing import Protocol

from pydantic import SecretStr

from tzurot.gateway.domain import HistoryTurn, ReplyEvent, ReplyRequest, WalletKey


class Inference(Protocol):
    def generate_reply(self, request: ReplyRequest) -> AsyncGenerator[ReplyEvent, None]:
        """Streams the answer; closing the generator early must stop the generation."""
        ...

    async def validate_key(self, provider: str, api_key: SecretStr) -> None:
        """Raises a TzurotError when the provider rejects the key or cannot be reached."""
        ...


class Memory(Protocol):
    async def store_exchange(
        self,
        *,
        job_id: str,
        conversation_id: str,
        personality_id: str,
        user_id: str,
        turns: Sequence[HistoryTurn],
    ) -> None: ...


class KeyVault(Protocol):
    async def put_key(self, user_id: str, provider: str, api_key: SecretStr) -> WalletKey: ...

    async def list_keys(self, user_id: str) -> list[WalletKey]: ...

    async def delete_key(self, user_id: str, provider: str) -> bool: ...
