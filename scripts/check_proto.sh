#!/usr/bin/env bash
# Fails when the committed stubs differ from what proto/ generates, and when proto/ breaks
# compatibility with the main branch (once main has contracts to compare against).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
scripts/gen_proto.sh "$tmp" >/dev/null 2>&1
if ! diff -r -q -x __pycache__ "$tmp/tzurot/v1" libs/proto/src/tzurot/v1; then
  echo "generated stubs are stale: run 'make proto' and commit the result" >&2
  exit 1
fi
buf=node_modules/.bin/buf
if git rev-parse --verify -q main >/dev/null && git cat-file -e main:proto/tzurot/v1/common.proto 2>/dev/null; then
  "$buf" breaking --against '.git#branch=main'
fi
echo "proto: stubs fresh, lint and breaking checks passed"
