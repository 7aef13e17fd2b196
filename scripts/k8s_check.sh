#!/usr/bin/env bash
# Renders every overlay with `kubectl kustomize`, validates the objects with
# `kubernetes-validate --strict` against Kubernetes $K8S_VERSION from the schemas the package
# ships (offline), then runs the policy tests on the rendered objects (tests/k8s).
# Custom resources have no schema in kubernetes-validate: only the kinds listed in CRD_KINDS
# may go unvalidated (the policy tests check their fields); any other warning fails.
set -euo pipefail
cd "$(dirname "$0")/.."
K8S_VERSION=${K8S_VERSION:-1.37.0}
CRD_KINDS='Certificate|ClusterIssuer|ServiceMonitor|Cluster|ScheduledBackup'
bin=$(dirname "$("${UV:-uv}" run --frozen python -c 'import sys; print(sys.executable)')")
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"${UV:-uv}" run --frozen python scripts/k8s_dev_secrets.py 2>/dev/null
for overlay in deploy/k8s/overlays/*/; do
  name=$(basename "$overlay")
  "$bin/kubectl" kustomize "$overlay" > "$out/$name.yaml"
  report=$("$bin/kubernetes-validate" --strict --kubernetes-version "$K8S_VERSION" "$out/$name.yaml" 2>&1) || {
    echo "$report" | grep -v '^INFO' >&2
    echo "k8s: overlay $name is not valid against Kubernetes $K8S_VERSION" >&2
    exit 1
  }
  unexpected=$(echo "$report" | grep -v '^INFO' | grep -Ev "Couldn't find schema for kind ($CRD_KINDS) " || true)
  if [[ -n "$unexpected" ]]; then
    echo "$unexpected" >&2
    echo "k8s: overlay $name has objects kubernetes-validate could not check" >&2
    exit 1
  fi
  echo "k8s: overlay $name: $(grep -c '^kind:' "$out/$name.yaml") objects valid against Kubernetes $K8S_VERSION (strict)"
done
"${UV:-uv}" run --frozen pytest -q -p no:cacheprovider tests/k8s
