"""The ONNX export of all-MiniLM-L6-v2 (made by `make setup`) against the torch original."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tzurot.memory.embedding import EmbeddingError, MiniLMEmbedder, checked
from tzurot.memory.minilm_onnx import OnnxMiniLMEmbedder

TEXTS = [
    "hi",
    "Alice: I adopted a cat named Miso last spring and she loves the balcony.",
    "Bob: what's my favourite colour?",
    "The quick brown fox jumps over the lazy dog. " * 40,  # past 256 tokens: truncated
    "",
]


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return np.array(MiniLMEmbedder().embed_sync(TEXTS))


@pytest.mark.parametrize(("precision", "floor"), [("fp32", 0.9999), ("int8", 0.97)])
def test_onnx_vectors_match_torch_alone_and_batched(
    reference: np.ndarray, precision: str, floor: float
) -> None:
    embedder = OnnxMiniLMEmbedder(precision=precision)  # type: ignore[arg-type]
    batched = np.array(embedder.embed_sync(TEXTS))
    alone = np.array([embedder.embed_sync([text])[0] for text in TEXTS])
    assert batched.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    assert ((batched * reference).sum(1) >= floor).all()
    assert ((alone * reference).sum(1) >= floor).all()


def test_order_is_kept_when_lengths_differ() -> None:
    embedder = OnnxMiniLMEmbedder()
    forward = embedder.embed_sync(TEXTS)
    backward = embedder.embed_sync(TEXTS[::-1])
    assert np.allclose(forward, backward[::-1], atol=1e-4)
    assert embedder.embed_sync([]) == []


def test_texts_over_several_batches_each_get_their_own_vector() -> None:
    """A call of more texts than a batch runs in batches of similar length: each text's
    vector is the one it gets alone (int8's per-batch activation scales move it a little),
    and far from any other text's."""
    embedder = OnnxMiniLMEmbedder(batch_size=3)
    texts = [
        f"Alice: day {n}, {'a story about the sea ' * (n % 5)}and cat number {n}" for n in range(10)
    ]
    texts += ["Bob: what's my favourite colour?", "hi"]
    together = np.array(embedder.embed_sync(texts))
    alone = np.array([embedder.embed_sync([text])[0] for text in texts])
    cosines = together @ alone.T
    assert (np.diag(cosines) >= 0.97).all()
    assert (cosines.argmax(axis=1) == np.arange(len(texts))).all()


def test_vectors_are_the_models_own_rows_made_unit() -> None:
    """The numpy normalisation gives what the per-float one (`checked`) gave."""
    embedder = OnnxMiniLMEmbedder()
    tokenizer, session = embedder._session()
    encoded = tokenizer.encode_batch(TEXTS[:3])
    ids = np.array([e.ids for e in encoded], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
    (raw,) = session.run(
        None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    )
    expected = checked(raw.tolist(), 3, 384)
    got = embedder.embed_sync(TEXTS[:3])
    assert all(type(x) is float for x in got[0])
    assert np.allclose(got, expected, rtol=0, atol=1e-6)


def test_missing_model_says_how_to_make_it(tmp_path: Path) -> None:
    with pytest.raises(EmbeddingError, match="make setup"):
        OnnxMiniLMEmbedder(tmp_path).embed_sync(["hello"])


def test_a_process_that_exits_while_the_model_loads_exits_cleanly() -> None:
    """Memory starts loading its model before it checks the database, and exits 2 when the
    check fails: an exit at any moment of the load is that exit, never an abort (a daemon
    loader was torn down inside ONNX Runtime's session build: SIGABRT)."""
    script = (
        "import sys, time\n"
        "from tzurot.memory.minilm_onnx import OnnxMiniLMEmbedder\n"
        "OnnxMiniLMEmbedder().warm()\n"
        "time.sleep(float(sys.argv[1]))\n"
        "sys.exit(2)\n"
    )
    for delay in ("0", "0.03", "0.06", "0.09", "0.12", "0.15", "0.2", "0.3"):
        done = subprocess.run(  # our own interpreter, no shell
            [sys.executable, "-c", script, delay],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 2, (delay, done.stderr)
        assert "terminate called" not in done.stderr
