"""Channel arguments shared by our servers and clients."""

from __future__ import annotations

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
