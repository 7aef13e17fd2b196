"""ValidateKey: a new key or the user's stored one proves it works by listing the provider's
models (free: asked again once at most)."""

from __future__ import annotations

from dataclasses import replace

from pydantic import SecretStr

from tzurot.inference.keys import KeyResolver
from tzurot.inference.ports import LanguageModel
from tzurot.inference.providers import ProviderRegistry
from tzurot.inference.reply_settings import OperatorRetries
from tzurot.inference.retries import whole_answer
from tzurot.runtime.errors import InvalidArgument

MAX_API_KEY_CHARS = 4096
KEY_CHECK_RETRIES = 1
"""A key check (free) is asked again once at most: on a dead network the user hears so in
about a second, not after attempts x retries."""


class KeyChecks(OperatorRetries):
    """The key check of `Inference`."""

    _providers: ProviderRegistry
    _keys: KeyResolver
    _llm: LanguageModel

    async def validate_key(
        self,
        provider_name: str,
        *,
        api_key: SecretStr | None = None,
        user_id: str | None = None,
        time_limit: float | None = None,
    ) -> int:
        """Checks a new key (`api_key`) or the user's stored one (`user_id`): models visible.

        A refused key is FailedPrecondition INVALID_API_KEY, as for a reply.
        """
        provider = self._providers.get(provider_name)
        if (api_key is None) == (user_id is None):
            raise InvalidArgument("key", "give exactly one of api_key or user_id")
        if api_key is not None:
            _check_api_key(api_key)
            key = api_key
        else:
            if not user_id:
                raise InvalidArgument("user_id", "user_id is required")
            key = await self._keys.user_key(user_id, provider)
        policy = replace(self._retry_policy(time_limit), failures=KEY_CHECK_RETRIES)
        return await whole_answer(lambda: self._llm.count_models(provider, key), policy, free=True)


def _check_api_key(api_key: SecretStr) -> None:
    """Rejects an empty, oversized or non-printable key, never quoting it."""
    value = api_key.get_secret_value()
    if not value:
        raise InvalidArgument("api_key", "api_key is required")
    if len(value) > MAX_API_KEY_CHARS:
        raise InvalidArgument("api_key", f"api_key must be at most {MAX_API_KEY_CHARS} characters")
    if not value.isascii() or not all(c.isprintable() and not c.isspace() for c in value):
        # It travels in an HTTP header: ASCII only (httpx cannot encode more: was INTERNAL).
        raise InvalidArgument("api_key", "api_key must be printable ASCII without spaces")
