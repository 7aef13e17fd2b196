#!/usr/bin/env bash
# Fails when the committed stubs differ from what proto/ generates, and when proto/ breaks
# compatibility with the contracts before this change (see the base below).
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
uv=${UV:-$(command -v uv || echo .tools/bin/uv)}  # as gen_proto.sh finds it
pkg=$("$uv" run --frozen python -c "import google.api.http_pb2 as m, pathlib; print(pathlib.Path(m.__file__).parents[1])")
for f in api/annotations api/http rpc/status rpc/error_details; do
  if ! cmp -s "$pkg/$f.proto" "third_party/googleapis/google/$f.proto"; then
    echo "third_party/googleapis/google/$f.proto differs from googleapis-common-protos: copy it again" >&2
    exit 1
  fi
done
buf=node_modules/.bin/buf
# Breaking changes are judged against the contracts as they were before this change: the
# newest release tag (v*) if there is one, else the main commit this branch last took in (its
# merge base with main), else, on main itself, the commit before the last one that changed
# proto/. PROTO_BASE names another base. Never against the tree being checked.
base=${PROTO_BASE:-}
if [ -z "$base" ]; then
  if tag=$(git describe --tags --abbrev=0 --match 'v*' 2>/dev/null); then
    base=$tag
  elif git rev-parse --verify -q main >/dev/null; then
    base=$(git merge-base HEAD main)
    if [ "$base" = "$(git rev-parse HEAD)" ]; then
      last=$(git log -1 --first-parent --format=%H -- proto)
      base=$(git rev-parse -q --verify "${last}^" || true)
    fi
  fi
fi
if [ -n "$base" ] && git cat-file -e "$base:proto/tzurot/v1/common.proto" 2>/dev/null; then
  mkdir "$tmp/base"
  git archive "$base" buf.yaml proto third_party | tar -x -C "$tmp/base"
  echo "buf breaking against $(git rev-parse --short "$base")"
  "$buf" breaking --against "$tmp/base"
fi
echo "proto: stubs fresh, lint and breaking checks passed"
