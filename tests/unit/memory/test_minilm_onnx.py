"""The ONNX export of all-MiniLM-L6-v2 (made by `make setup`) against the torch original."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import structlog
from prometheus_client import REGISTRY

from tzurot.memory.embedding import EmbeddingError, MiniLMEmbedder, checked
from tzurot.memory.minilm_onnx import (
    EMBEDDING_OUTPUT,
    FP32_FILE,
    INT8_FILE,
    TOKENIZER_FILE,
    OnnxMiniLMEmbedder,
    RecentVectors,
    _inputs,
    default_dir,
)

TEXTS = [
    "hi",
    "Alice: I adopted a cat named Miso last spring and she loves the balcony.",
    "Bob: what's my favourite colour?",
    "The quick brown fox jumps over the lazy dog. " * 40,  # past 256 tokens: truncated
    "",
]


def embedded(source: str) -> float:
    return (
        REGISTRY.get_sample_value("tzurot_memory_embedded_texts_total", {"source": source}) or 0.0
    )


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
    (raw,) = session.run(
        [EMBEDDING_OUTPUT],
        _inputs([e.ids for e in tokenizer.encode_batch(TEXTS[:3])]),
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


def test_a_query_read_in_context_is_its_own_tokens_and_serves_its_turn_once() -> None:
    """`embed_in_context` pools the message's own tokens of one run of `Speaker: message`;
    the run's whole vector then serves one `embed` of the same tokens (formation's of the
    turn), with no second run, and only one."""
    embedder = OnnxMiniLMEmbedder()
    tokenizer, session = embedder._session()
    turn, start = "Alice: I adopted a cat named Miso last spring.", len("Alice: ")
    query = np.array(embedder.embed_in_context_sync(turn, start))

    encoding = tokenizer.encode(turn)
    whole, states = session.run(None, _inputs([encoding.ids]))
    own = [i for i, (begin, _end) in enumerate(encoding.offsets) if begin >= start]
    own = [i for i in own if not encoding.special_tokens_mask[i]]
    said = tokenizer.decode([encoding.ids[i] for i in own])
    assert said == "i adopted a cat named miso last spring."
    expected = states[0, own].mean(axis=0)
    assert np.allclose(query, expected / np.linalg.norm(expected), atol=1e-6)

    model, reused = embedded("model"), embedded("reused")
    other = "Bob: what's my favourite colour?"
    vectors = np.array(embedder.embed_sync([other, turn]))
    assert (embedded("model") - model, embedded("reused") - reused) == (1, 1)  # `other` ran
    assert np.allclose(vectors[1], whole[0] / np.linalg.norm(whole[0]), atol=1e-6)
    embedder.embed_sync([turn])
    assert embedded("model") - model == 2  # taken once: the turn's next embedding runs


def test_a_query_with_nothing_after_its_speaker_is_the_whole_text() -> None:
    embedder = OnnxMiniLMEmbedder()
    whole = embedder.embed_sync(["Alice: "])[0]
    assert np.allclose(embedder.embed_in_context_sync("Alice: ", len("Alice: ")), whole, atol=1e-6)


def test_recent_vectors_keep_the_newest_and_no_text() -> None:
    recent = RecentVectors(size=2)
    for n in range(3):
        recent.put([101, n, 102], np.full(3, n, dtype=np.float32))
    assert len(recent) == 2
    assert recent.take([101, 0, 102]) is None  # the oldest went first
    taken = recent.take([101, 2, 102])
    assert taken is not None
    assert taken[0] == 2
    assert recent.take([101, 2, 102]) is None
    assert all(isinstance(key, bytes) and len(key) == 16 for key in recent._vectors)


@pytest.fixture(scope="module")
def older_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model as exported before token states: the sentence vector its only output."""
    import onnx  # the export extra, installed by `make setup`

    source, target = default_dir(), tmp_path_factory.mktemp("older")
    for name in (FP32_FILE, INT8_FILE):
        model = onnx.load(str(source / name))
        del model.graph.output[1]
        onnx.save(model, str(target / name))
    shutil.copyfile(source / TOKENIZER_FILE, target / TOKENIZER_FILE)
    return target


def test_an_older_export_reads_the_query_alone_and_setup_makes_it_again(
    older_export: Path,
) -> None:
    from tzurot.memory.minilm_export import is_current  # the export extra

    with structlog.testing.capture_logs() as logs:
        embedder = OnnxMiniLMEmbedder(older_export)
        query = embedder.embed_in_context_sync("Alice: my cat is Miso", len("Alice: "))
    assert np.allclose(query, embedder.embed_sync(["my cat is Miso"])[0], atol=1e-6)
    assert any("older export" in entry["event"] for entry in logs)
    assert len(embedder._recent) == 0
    assert not is_current(older_export)
    assert is_current(default_dir())


def test_the_session_leaves_out_onnx_runtimes_scalar_skip_layer_norm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ONNX Runtime's fused SkipLayerNormalization runs a scalar loop (a division per
    element); the embedder's session keeps the residual Add and the vectorised
    LayerNormalization instead (10-18 % less CPU a call), and its vectors are the fused
    graph's to within int8's own noise (LoCoMo's recall unchanged: docs/PERFORMANCE.md)."""
    import onnx  # the export's dependency, in the dev environment
    import onnxruntime

    real = onnxruntime.InferenceSession
    optimized = tmp_path / "optimized.onnx"

    def keeping_the_optimized_graph(path: str, options: Any, **kwargs: Any) -> Any:
        options.optimized_model_filepath = str(optimized)
        return real(path, options, **kwargs)

    monkeypatch.setattr(onnxruntime, "InferenceSession", keeping_the_optimized_graph)
    ours = OnnxMiniLMEmbedder()
    # Each alone: a batch's int8 activations are quantised across its texts.
    vectors = np.array([ours.embed_sync([text])[0] for text in TEXTS[:4]])
    ops = {node.op_type for node in onnx.load(str(optimized)).graph.node}
    assert "SkipLayerNormalization" not in ops
    assert "LayerNormalization" in ops

    monkeypatch.setattr(onnxruntime, "InferenceSession", real)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    fused_session = real(str(default_dir() / INT8_FILE), options)
    embedder = OnnxMiniLMEmbedder()
    tokenizer, _ = embedder._session()
    fused = []
    for text in TEXTS[:4]:
        ids = tokenizer.encode(text).ids
        (row,) = fused_session.run([EMBEDDING_OUTPUT], _inputs([ids]))[0]
        fused.append(row / np.linalg.norm(row))
    assert ((vectors * np.array(fused)).sum(1) >= 0.995).all()
