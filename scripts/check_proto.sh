#!/usr/bin/env bash
# Fails when the committed stubs differ from what proto/ generates, and when proto/ breaks
# compatibility with the main branch (once main has contracts to compare against).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
scripts/gen_proto.sh "$tmp" "$tmp/gateway.pb" "$tmp/docs" >/dev/null 2>&1
if ! diff -r -q -x __pycache__ "$tmp/tzurot/v1" libs/proto/src/tzurot/v1; then
  echo "generated stubs are stale: run 'make proto' and commit the result" >&2
  exit 1
fi
if ! cmp -s "$tmp/gateway.pb" deploy/k8s/base/edge/gateway.pb; then
  echo "deploy/k8s/base/edge/gateway.pb (Envoy's descriptor set) is stale: run 'make proto' and commit it" >&2
  exit 1
fi
for f in tzurot.binpb edge.openapi.json; do
  if ! cmp -s "$tmp/docs/$f" "docs/contracts/$f"; then
    echo "docs/contracts/$f (the published contracts) is stale: run 'make proto' and commit it" >&2
    exit 1
  fi
done
pkg=$("${UV:-uv}" run --frozen python -c "import google.api.http_pb2 as m, pathlib; print(pathlib.Path(m.__file__).parents[1])")
for f in api/annotations api/http rpc/status rpc/error_details; do
  if ! cmp -s "$pkg/$f.proto" "third_party/googleapis/google/$f.proto"; then
    echo "third_party/googleapis/google/$f.proto differs from googleapis-common-protos: copy it again" >&2
    exit 1
  fi
done
buf=node_modules/.bin/buf
if git rev-parse --verify -q main >/dev/null && git cat-file -e main:proto/tzurot/v1/common.proto 2>/dev/null; then
  "$buf" breaking --against '.git#branch=main'
fi
echo "proto: stubs fresh, lint and breaking checks passed"
