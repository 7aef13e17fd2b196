"""What `kubectl tzurot` (libs/admin/src/tzurot/admin/kubectl.py) relies on in the manifests.

The plugin finds pods by `app.kubernetes.io/name`, forwards to each service's gRPC port,
execs `tzurot admin` in the `gateway` container of deploy/gateway (whose environment names
the other services and the pod's certificate), and needs an RBAC Role for each way: one for
port-forward and doctor, another (which reads every mounted Secret) for --exec.
"""

from __future__ import annotations

import pytest

from tzurot.admin.kubectl import GRPC_PORTS, NAME_LABEL, PROTECTED
from tzurot.testing.k8s import OVERLAYS, Obj, of_kind, render


def _by_name(objects: tuple[Obj, ...], kind: str) -> dict[str, Obj]:
    return {o["metadata"]["name"]: o for o in of_kind(objects, kind)}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_pod_has_the_label_and_grpc_port_the_plugin_uses(overlay: str) -> None:
    deployments = _by_name(render(overlay), "Deployment")
    for service, port in GRPC_PORTS.items():
        template = deployments[service]["spec"]["template"]
        assert template["metadata"]["labels"][NAME_LABEL] == service
        container = next(c for c in template["spec"]["containers"] if c["name"] == service)
        ports = {p["containerPort"]: p.get("name") for p in container["ports"]}
        assert ports.get(port) == "grpc", (service, ports)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_gateway_container_has_what_tzurot_admin_reads(overlay: str) -> None:
    objects = render(overlay)
    gateway = _by_name(objects, "Deployment")["gateway"]
    (container,) = [c for c in gateway["spec"]["template"]["spec"]["containers"]]
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    assert env["TZUROT_TLS_DIR"]  # the pod's own certificate: identity gateway
    config_maps = _by_name(objects, "ConfigMap")
    sources = [
        config_maps[ref["configMapRef"]["name"]]["data"]
        for ref in container.get("envFrom", [])
        if "configMapRef" in ref
    ]
    addresses = {k: v for data in sources for k, v in data.items() if k.endswith("_ADDR")}
    for service in ("inference", "memory", "keyvault"):
        assert addresses[f"TZUROT_{service.upper()}_ADDR"] == f"{service}:{GRPC_PORTS[service]}"


def _granted(role: Obj) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_operator_role_allows_exactly_what_the_plugin_does(overlay: str) -> None:
    objects = render(overlay)
    roles = _by_name(objects, "Role")
    # Port-forward (the default) and doctor: find pods, forward to them, read policies and jobs.
    assert _granted(roles["tzurot-operator"]) == {
        ("", "pods", "get"),
        ("", "pods", "list"),
        ("", "pods/portforward", "create"),
        ("networking.k8s.io", "networkpolicies", "list"),
        ("batch", "jobs", "list"),
    }
    # --exec: `kubectl exec deploy/gateway`.
    assert _granted(roles["tzurot-operator-exec"]) == {
        ("", "pods", "get"),
        ("", "pods", "list"),
        ("", "pods/exec", "create"),
        ("apps", "deployments", "get"),
    }
    bindings = _by_name(objects, "RoleBinding")
    for name, group in (
        ("tzurot-operator", "tzurot-operators"),
        ("tzurot-operator-exec", "tzurot-operators-exec"),
    ):
        binding = bindings[name]
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": name,
        }
        assert binding["subjects"] == [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}
        ]
        assert binding["metadata"]["namespace"] == roles[name]["metadata"]["namespace"] == "tzurot"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_exec_role_reads_the_mounted_secrets(overlay: str) -> None:
    """Exec into any pod of the namespace (RBAC cannot narrow it to the gateway's) reads every
    Secret a pod mounts, keyvault's master key included: the everyday operator Role has no
    pods/exec, and no Role grants Secrets at all."""
    roles = _by_name(render(overlay), "Role")
    assert ("", "pods/exec", "create") not in _granted(roles["tzurot-operator"])
    exec_roles = {n for n, r in roles.items() if any(g[1] == "pods/exec" for g in _granted(r))}
    assert exec_roles == {"tzurot-operator-exec"}
    for name, role in roles.items():
        assert not any(g[1] == "secrets" for g in _granted(role)), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_doctor_finds_the_policies_and_migration_jobs_it_checks(overlay: str) -> None:
    objects = render(overlay)
    policies = of_kind(objects, "NetworkPolicy")
    assert any(
        not p["spec"].get("podSelector") and {"Ingress", "Egress"} <= set(p["spec"]["policyTypes"])
        for p in policies
    )
    selected = {p["spec"]["podSelector"].get("matchLabels", {}).get(NAME_LABEL) for p in policies}
    assert set(PROTECTED) <= selected
    migrations = [
        j
        for j in of_kind(objects, "Job")
        if j["metadata"]["labels"].get("app.kubernetes.io/component") == "migrate"
    ]
    assert {j["metadata"]["name"] for j in migrations} >= {
        "migrate-gateway",
        "migrate-memory",
        "migrate-keyvault",
    }
