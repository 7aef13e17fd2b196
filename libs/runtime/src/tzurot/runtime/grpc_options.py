"""Channel arguments shared by our servers and clients, and the gRPC core settings that
must be in a service's environment before `grpc` is imported."""

from __future__ import annotations

from collections.abc import MutableMapping

# gRPC core reads its experiments once, when `grpc` is imported: a process's environment
# must carry them from its start (the images' ENV, `tzurot up` for its children).
GRPC_EXPERIMENTS_ENV = "GRPC_EXPERIMENTS"
# Sockets served by gRPC core's iomgr, not its EventEngine (grpcio 1.85). With EventEngine,
# every read and write completes on one of its own threads and is handed to grpc.aio's
# poller thread, which wakes the event loop: three threads a completion. Without, the
# poller thread does the I/O itself. `python -m bench.rpc`: 20 % less CPU a call (unary
# ~580 -> ~460 us, mTLS and our interceptors included); as deployed the EventEngine
# threads' ~2 ms of CPU a turn are gone (docs/PERFORMANCE.md, "gRPC's iomgr").
SERVICE_GRPC_EXPERIMENTS = "-event_engine_client,-event_engine_listener"


def with_service_grpc_experiments(environ: MutableMapping[str, str]) -> None:
    """Sets the services' gRPC experiments in `environ` unless the operator set their own."""
    environ.setdefault(GRPC_EXPERIMENTS_ENV, SERVICE_GRPC_EXPERIMENTS)


MAX_MESSAGE_BYTES = 16 * 1024 * 1024

SERVER_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    # Accept client keepalive pings down to every 10 s, also between calls.
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    # gRPC sets SO_REUSEPORT by default: a second instance would silently share the port.
    ("grpc.so_reuseport", 0),
    # Recycle connections so clients rebalance across new replicas.
    ("grpc.max_connection_age_ms", 30 * 60_000),
    ("grpc.max_connection_age_grace_ms", 10 * 60_000),
)

CLIENT_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    # A peer that restarted is reconnected to within 5 s (gRPC's default backoff grows to
    # 120 s, leaving a service degraded for minutes after its dependency is back).
    ("grpc.max_reconnect_backoff_ms", 5_000),
    # A peer not listening yet at start-up (services start together) is tried again within
    # 0.25 s, not gRPC's default 1 s: calls waiting for it (wait_for_ready) wait that long.
    ("grpc.initial_reconnect_backoff_ms", 250),
)
