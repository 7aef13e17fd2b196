#!/usr/bin/env bash
# Regenerates the Python stubs (+ mypy .pyi) for proto/tzurot/v1 into OUT (default libs/proto/src).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-libs/proto/src}
mkdir -p "$out/tzurot/v1"
rm -f "$out"/tzurot/v1/*_pb2*.py "$out"/tzurot/v1/*_pb2*.pyi
"${UV:-uv}" run --frozen python -m grpc_tools.protoc -Iproto \
  --python_out="$out" --grpc_python_out="$out" \
  --mypy_out="$out" --mypy_grpc_out="$out" \
  proto/tzurot/v1/*.proto
touch "$out/tzurot/v1/py.typed"
