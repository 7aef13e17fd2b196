#!/usr/bin/env bash
# Regenerates the Python stubs (+ mypy .pyi) for proto/tzurot/v1 into OUT (default libs/proto/src)
# and the gateway's descriptor set for Envoy's gRPC-JSON transcoder into DESCRIPTOR
# (default deploy/k8s/base/edge/gateway.pb), with google.rpc's status and error details so
# Envoy can render our rich errors as JSON. It also publishes the contracts under DOCS (default
# docs/contracts): tzurot.binpb, the descriptor set of every proto file (with comments, for
# reflection-less tools and other languages), and edge.openapi.json, the OpenAPI description of
# the edge's JSON routes made from it (tzurot.cli.openapi).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-libs/proto/src}
descriptor=${2:-deploy/k8s/base/edge/gateway.pb}
docs=${3:-docs/contracts}
includes=(-Iproto -Ithird_party/googleapis)
# The project's uv (make setup installs it in .tools/bin) unless UV names another; found
# before the old stubs are removed, so a missing uv leaves them in place.
uv=${UV:-$(command -v uv || echo .tools/bin/uv)}
if ! [ -x "$uv" ] && ! command -v "$uv" >/dev/null; then
  echo "gen_proto.sh: no uv (run make setup, or set UV)" >&2
  exit 1
fi
mkdir -p "$out/tzurot/v1" "$(dirname "$descriptor")" "$docs"
rm -f "$out"/tzurot/v1/*_pb2*.py "$out"/tzurot/v1/*_pb2*.pyi
"$uv" run --frozen python -m grpc_tools.protoc "${includes[@]}" \
  --python_out="$out" --grpc_python_out="$out" \
  --mypy_out="$out" --mypy_grpc_out="$out" \
  proto/tzurot/v1/*.proto
touch "$out/tzurot/v1/py.typed"
"$uv" run --frozen python -m grpc_tools.protoc "${includes[@]}" \
  --include_imports --descriptor_set_out="$descriptor" proto/tzurot/v1/gateway.proto \
  google/rpc/status.proto google/rpc/error_details.proto
"$uv" run --frozen python -m grpc_tools.protoc "${includes[@]}" \
  --include_imports --include_source_info --descriptor_set_out="$docs/tzurot.binpb" \
  proto/tzurot/v1/*.proto google/rpc/status.proto google/rpc/error_details.proto
"$uv" run --frozen python -m tzurot.cli.openapi "$docs/tzurot.binpb" "$docs/edge.openapi.json"
