"""Prometheus metrics: RPC counts and latencies, job outcomes, token usage, rate-limit refusals,
deletions under way.

The metrics live in prometheus-client's default registry (one process is one service in
production; Prometheus adds `job` and `pod` labels when it scrapes). `observe_call` is what
the server interceptor reports every finished RPC to; the `record_*` functions are for the
services' own events. `start_metrics_server` serves `/metrics` over plain HTTP on
`TZUROT_METRICS_LISTEN` (unset: nothing listens, as in tests).
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIServer

import grpc
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)

from tzurot.runtime.errors import StartupError

__all__ = [
    "DEGRADED",
    "DELETIONS_PENDING",
    "DELETION_OLDEST_SECONDS",
    "DELETION_SWEEP_FAILURES",
    "EMBEDDED_TEXTS",
    "JOBS",
    "RATE_LIMIT_REFUSALS",
    "RPC_HANDLED",
    "RPC_SECONDS",
    "TOKENS",
    "MetricsServer",
    "observe_call",
    "record_degraded",
    "record_deletion_sweep_failure",
    "record_deletions_pending",
    "record_embedded_texts",
    "record_job",
    "record_rate_limit_refusal",
    "record_tokens",
    "start_metrics_server",
]

RPC_HANDLED = Counter(
    "grpc_server_handled_total",
    "RPCs completed on the server, by method and status code.",
    ["grpc_service", "grpc_method", "grpc_code"],
)
RPC_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Time from a call's arrival to its completion on the server.",
    ["grpc_service", "grpc_method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
JOBS = Counter(
    "tzurot_jobs_total",
    "Generation jobs by outcome (streamed, delivered, failed, replayed).",
    ["outcome", "reason"],
)
TOKENS = Counter(
    "tzurot_llm_tokens_total",
    "LLM tokens used, by provider, model and direction (input or output).",
    ["provider", "model", "direction"],
)
DEGRADED = Counter(
    "tzurot_degraded_answers_total",
    "Answers made without a part of their context because a dependency failed, by what was "
    "missing (e.g. memory_unavailable).",
    ["reason"],
)
RATE_LIMIT_REFUSALS = Counter(
    "tzurot_rate_limit_refusals_total",
    "Calls refused with RESOURCE_EXHAUSTED (rate limits, quotas), by method.",
    ["grpc_service", "grpc_method"],
)

DELETIONS_PENDING = Gauge(
    "tzurot_deletions_pending",
    "Deletions recorded and not finished yet (running, or waiting for a sweep to finish them), "
    "by kind (user, personality), as this replica's last deletion sweep counted them.",
    ["kind"],
)
DELETION_OLDEST_SECONDS = Gauge(
    "tzurot_deletion_oldest_pending_seconds",
    "Age of the oldest deletion not finished yet, by kind (0: none), at this replica's last "
    "deletion sweep.",
    ["kind"],
)
DELETION_SWEEP_FAILURES = Counter(
    "tzurot_deletion_sweep_failures_total",
    "Deletions the deletion sweep took up and could not finish (tried again later), by kind.",
    ["kind"],
)


EMBEDDED_TEXTS = Counter(
    "tzurot_memory_embedded_texts_total",
    "Texts memory's local embedder gave vectors for: run through the model, or reused from "
    "a query read as its turn (per replica: a turn formed by another replica is run again).",
    ["source"],
)


def _split(method: str) -> tuple[str, str]:
    """ "/pkg.Service/Method" -> ("pkg.Service", "Method")."""
    service, _, name = method.lstrip("/").partition("/")
    return service, name


@functools.lru_cache(maxsize=4096)
def _call_metrics(method: str, code: grpc.StatusCode) -> tuple[Any, Any, Any]:
    """The children of the RPC metrics for one method and code (looked up once: `labels()`
    takes a lock and builds a key on every call)."""
    service, name = _split(method)
    refusals = (
        RATE_LIMIT_REFUSALS.labels(service, name)
        if code is grpc.StatusCode.RESOURCE_EXHAUSTED
        else None
    )
    return RPC_HANDLED.labels(service, name, code.name), RPC_SECONDS.labels(service, name), refusals


def observe_call(method: str, code: grpc.StatusCode, seconds: float) -> None:
    """Counts one finished RPC and its duration; RESOURCE_EXHAUSTED also counts as a refusal."""
    handled, duration, refusals = _call_metrics(method, code)
    handled.inc()
    duration.observe(seconds)
    if refusals is not None:
        refusals.inc()


@functools.lru_cache(maxsize=1024)
def _job_counter(outcome: str, reason: str) -> Any:
    return JOBS.labels(outcome, reason)


@functools.lru_cache(maxsize=1024)
def _token_counters(provider: str, model: str) -> tuple[Any, Any]:
    """The input and output children for a provider's model (models are many, hence bounded:
    a child dropped here stays in the metric, it is only looked up again)."""
    return TOKENS.labels(provider, model, "input"), TOKENS.labels(provider, model, "output")


def record_job(outcome: str, reason: str = "") -> None:
    """A job reached `outcome`; `reason` is the machine-readable reason of a failure."""
    _job_counter(outcome, reason).inc()


def record_tokens(provider: str, model: str, *, input_tokens: int, output_tokens: int) -> None:
    """Token usage of one LLM call."""
    inputs, outputs = _token_counters(provider, model)
    inputs.inc(max(input_tokens, 0))
    outputs.inc(max(output_tokens, 0))


def record_degraded(reason: str) -> None:
    """An answer went on without part of its context (`reason` names which part)."""
    DEGRADED.labels(reason).inc()


def record_deletions_pending(kind: str, count: int, oldest_seconds: float) -> None:
    """How many deletions of `kind` are under way, and how long ago the oldest was asked for."""
    DELETIONS_PENDING.labels(kind).set(count)
    DELETION_OLDEST_SECONDS.labels(kind).set(max(oldest_seconds, 0.0))


def record_deletion_sweep_failure(kind: str) -> None:
    """The deletion sweep could not finish a deletion of `kind` (it is tried again later)."""
    DELETION_SWEEP_FAILURES.labels(kind).inc()


def record_embedded_texts(source: str, count: int) -> None:
    """`count` texts embedded by the local model (`model`) or reused (`reused`)."""
    EMBEDDED_TEXTS.labels(source).inc(count)


def record_rate_limit_refusal(method: str) -> None:
    """A refusal that did not end as a RESOURCE_EXHAUSTED status of `method` (e.g. in the bot)."""
    RATE_LIMIT_REFUSALS.labels(*_split(method)).inc()


@dataclass
class MetricsServer:
    """The `/metrics` HTTP endpoint running in a daemon thread."""

    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_metrics_server(address: str, registry: CollectorRegistry = REGISTRY) -> MetricsServer:
    """Serves `registry` at http://`address`/metrics ("host:port"; port 0 picks a free one)."""
    host, sep, port = address.rpartition(":")
    host = host.strip("[]")
    if not sep or not port.isdigit():
        raise StartupError(f"TZUROT_METRICS_LISTEN is not host:port: {address!r}")
    try:
        server, thread = start_http_server(int(port), addr=host or "0.0.0.0", registry=registry)  # noqa: S104  # an empty host means every interface, as for TZUROT_LISTEN
    except OSError as exc:
        raise StartupError(f"cannot listen on {address} for metrics: {exc.strerror}") from None
    return MetricsServer(server, thread)
