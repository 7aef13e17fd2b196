"""`kubectl tzurot ...`: the kubectl plugin (an executable `kubectl-tzurot` on the PATH).

It runs `tzurot admin ...` commands against the mesh in the current kubectl context and
namespace (or `--context`/`-n`), in one of three ways:

- port-forward (default): finds a Running pod of each service the command needs
  (`app.kubernetes.io/name=<service>`), `kubectl port-forward`s to its gRPC port and runs the
  command here, presenting the operator's `cli` certificate (`--tls-dir`, TZUROT_CLI_TLS_DIR);
- `--exec`: `kubectl exec deploy/gateway -c gateway -- tzurot admin ...`, with the pod's own
  identity and addresses (nothing needed locally but kubectl);
- `--local`: no kubectl, straight to `make run` on this machine.

`doctor` also checks, through kubectl, that the NetworkPolicies are there and that every
migration Job succeeded.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

GRPC_PORTS = {"gateway": 15051, "inference": 15052, "memory": 15053, "keyvault": 15054}
NAME_LABEL = "app.kubernetes.io/name"
PROTECTED = ("gateway", "inference", "memory", "keyvault", "bot", "edge")
_FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+) ->")


class PluginError(Exception):
    """Something the operator must fix; printed as one line."""


def services_needed(args: Sequence[str]) -> tuple[str, ...]:
    command = args[0] if args else ""
    if command in ("health", "doctor"):
        return tuple(GRPC_PORTS)
    if command == "keys":
        return ("keyvault",)
    return ("gateway",)


class Kubectl:
    def __init__(self, context: str | None, namespace: str | None) -> None:
        self.base = [os.environ.get("KUBECTL", "kubectl")]
        if context:
            self.base += ["--context", context]
        if namespace:
            self.base += ["--namespace", namespace]

    def output(self, *args: str) -> str:
        try:
            done = subprocess.run(  # noqa: S603 - kubectl with our own arguments
                [*self.base, *args], capture_output=True, text=True, check=False, timeout=60
            )
        except FileNotFoundError:
            raise PluginError("kubectl is not on the PATH") from None
        if done.returncode != 0:
            raise PluginError(f"kubectl {' '.join(args[:2])}: {done.stderr.strip()}")
        return done.stdout

    def running_pod(self, service: str) -> str:
        name = self.output(
            "get",
            "pods",
            "--selector",
            f"{NAME_LABEL}={service}",
            "--field-selector",
            "status.phase=Running",
            "--output",
            "jsonpath={.items[0].metadata.name}",
        ).strip()
        if not name:
            raise PluginError(
                f"no running {service} pod in this namespace (kubectl config current-context; "
                "pass --namespace)"
            )
        return name

    @contextmanager
    def port_forward(self, pod: str, port: int, within: float = 30.0) -> Iterator[int]:
        """Forwards a free local port to the pod's `port`; yields the local port."""
        process = subprocess.Popen(  # noqa: S603
            [*self.base, "port-forward", f"pod/{pod}", f":{port}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            found: list[int] = []

            def read() -> None:
                assert process.stdout is not None
                for line in process.stdout:
                    match = _FORWARDING.search(line)
                    if match:
                        found.append(int(match.group(1)))
                        return

            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            reader.join(within)
            if not found:
                error = (
                    process.stderr.read() if process.poll() is not None and process.stderr else ""
                )
                raise PluginError(f"kubectl port-forward pod/{pod} failed: {error.strip()}")
            yield found[0]
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


def run_admin(args: Sequence[str], env: dict[str, str]) -> int:
    """`tzurot admin ARGS` in a child process of this Python."""
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", "tzurot.admin", *args], env=env, check=False
    ).returncode


def via_port_forward(kubectl: Kubectl, args: Sequence[str], tls_dir: str | None) -> int:
    env = {k: v for k, v in os.environ.items() if k != "TZUROT_TLS_DIR"}
    if tls_dir:
        env["TZUROT_CLI_TLS_DIR"] = tls_dir
    with ExitStack() as stack:
        for service in services_needed(args):
            pod = kubectl.running_pod(service)
            local = stack.enter_context(kubectl.port_forward(pod, GRPC_PORTS[service]))
            env[f"TZUROT_{service.upper()}_ADDR"] = f"127.0.0.1:{local}"
        return run_admin(args, env)


def via_exec(kubectl: Kubectl, args: Sequence[str]) -> int:
    command = [*kubectl.base, "exec", "deploy/gateway", "-c", "gateway", "--"]
    return subprocess.run([*command, "tzurot", "admin", *args], check=False).returncode  # noqa: S603


def cluster_checks(kubectl: Kubectl) -> list[tuple[bool, str]]:
    """NetworkPolicies present (default deny + one per workload) and migrations complete."""
    results: list[tuple[bool, str]] = []
    policies: list[dict[str, Any]] = json.loads(
        kubectl.output("get", "networkpolicies", "--output", "json")
    )["items"]
    default_deny = any(
        not p["spec"].get("podSelector")
        and {"Ingress", "Egress"} <= set(p["spec"].get("policyTypes", []))
        for p in policies
    )
    results.append((default_deny, "networkpolicy default deny (ingress and egress)"))
    for service in PROTECTED:
        selected = any(
            p["spec"].get("podSelector", {}).get("matchLabels", {}).get(NAME_LABEL) == service
            for p in policies
        )
        results.append((selected, f"networkpolicy for {service}"))
    jobs: list[dict[str, Any]] = json.loads(
        kubectl.output(
            "get", "jobs", "--selector", "app.kubernetes.io/component=migrate", "--output", "json"
        )
    )["items"]
    if not jobs:
        results.append((False, "migration jobs: none found"))
    for job in jobs:
        status = job.get("status", {})
        done = status.get("succeeded", 0) >= 1
        state = "succeeded" if done else f"not complete (failed {status.get('failed', 0)})"
        results.append((done, f"migration {job['metadata']['name']}: {state}"))
    return results


def parse(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog="kubectl tzurot",
        description="Operator tasks against Tzurot in the current kubectl context and namespace. "
        "Commands: personalities {list,import,export,delete}, denylist {list,add,remove}, "
        "usage, jobs {status,retry}, memory stats, keys {rotate,resume,progress}, health, doctor "
        "(`kubectl tzurot <command> --help`).",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--exec", action="store_true", help="run inside the gateway pod")
    mode.add_argument("--local", action="store_true", help="against `make run` here, no kubectl")
    parser.add_argument("--context", help="kubectl context (default: the current one)")
    parser.add_argument("-n", "--namespace", help="namespace (default: the context's)")
    parser.add_argument("--tls-dir", help="the operator's cli certificate folder")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    options = parser.parse_args(argv)
    if not options.command:
        parser.print_help()
        raise SystemExit(2)
    return options, list(options.command)


def main(argv: Sequence[str] | None = None) -> None:
    options, args = parse(sys.argv[1:] if argv is None else argv)
    try:
        if options.local:
            raise SystemExit(run_admin(args, dict(os.environ)))
        kubectl = Kubectl(options.context, options.namespace)
        code = (
            via_exec(kubectl, args)
            if options.exec
            else via_port_forward(kubectl, args, options.tls_dir)
        )
        if args[0] == "doctor" and "--help" not in args:
            for ok, what in cluster_checks(kubectl):
                print(f"{'ok  ' if ok else 'FAIL'} {what}")
                code = code if ok else 1
    except PluginError as exc:
        print(f"kubectl-tzurot: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:  # Ctrl-C: the port-forwards are stopped on the way out
        raise SystemExit(130) from None
    raise SystemExit(code)


if __name__ == "__main__":
    main()
