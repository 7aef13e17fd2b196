"""Memory settings (env `TZUROT_*`)."""

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from tzurot.memory.scope_size import EXACT_SCOPE_LIMIT
from tzurot.memory.validation import DEFAULT_HISTORY_LIMIT, MAX_HISTORY_LIMIT
from tzurot.runtime.config import ServiceSettings


class MemorySettings(ServiceSettings):
    """Where memory listens, its database, its embedder and long-term memory's knobs."""

    listen: str = "127.0.0.1:15053"
    database_url: SecretStr
    history_limit: int = Field(default=DEFAULT_HISTORY_LIMIT, ge=1, le=MAX_HISTORY_LIMIT)
    """`TZUROT_HISTORY_LIMIT`: turns GetHistory returns when the caller asks for 0."""
    embedder: Literal["local", "openai"] = "local"
    """`TZUROT_EMBEDDER`: local all-MiniLM-L6-v2 (ONNX Runtime), or an OpenAI-compatible
    endpoint."""
    embedding_precision: Literal["int8", "fp32"] = "int8"
    """`TZUROT_EMBEDDING_PRECISION`: the local model's weights (int8: 1/3 of the CPU, the
    same retrieval quality; see docs/PERFORMANCE.md)."""
    embedding_model_dir: Path | None = None
    """`TZUROT_EMBEDDING_MODEL_DIR`: where setup exported the local model (default: the
    Python environment's share/tzurot/all-MiniLM-L6-v2-onnx)."""
    embedding_threads: int = Field(default=1, ge=1, le=64)
    """`TZUROT_EMBEDDING_THREADS`: ONNX Runtime threads per embedding call."""
    embedding_base_url: str = ""
    """`TZUROT_EMBEDDING_BASE_URL`: the OpenAI-compatible endpoint (embedder=openai)."""
    embedding_model: str = "text-embedding-3-small"
    embedding_api_key: SecretStr = SecretStr("")
    """`TZUROT_EMBEDDING_API_KEY`: the endpoint's key, if it wants one."""
    memory_weights: tuple[float, float, float, float, float, float, float] = (
        0.60,
        0.10,
        0.0,
        0.05,
        0.25,
        0.15,
        0.05,
    )
    """`TZUROT_MEMORY_WEIGHTS`: hybrid weights (similarity, keywords, waypoints, recency,
    bm25, speaker named, when asked and said)."""
    hnsw_ef_search: int = Field(default=100, ge=10, le=1000)
    """`TZUROT_HNSW_EF_SEARCH`: the HNSW candidate list of the near-duplicates pass and of a
    large scope's nearest (recall vs speed); a smaller scope's are found exactly."""
    memory_exact_scope_limit: int = Field(default=EXACT_SCOPE_LIMIT, ge=1)
    """`TZUROT_MEMORY_EXACT_SCOPE_LIMIT`: a scope with this many live memories or more is
    searched through the HNSW index instead of compared exactly (docs/MEMORY.md)."""
    formation_poll_seconds: float = Field(default=30.0, gt=0)
    """`TZUROT_FORMATION_POLL_SECONDS`: how often the formation outbox is checked anyway."""
    formation_gather_seconds: float = Field(default=0.2, ge=0, le=5)
    """`TZUROT_FORMATION_GATHER_SECONDS`: how long a new exchange waits for others to form
    with it in one batch (one embedding call and three statements for them all)."""
