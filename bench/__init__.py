"""Benchmarks: `make bench` (or `python -m bench [--quick]`) prints a table and writes JSON."""

import os

from tzurot.runtime.grpc_options import with_service_grpc_experiments

# Before anything imports grpc: the in-process mesh runs gRPC as the services are deployed,
# and the processes `bench.deployed` starts inherit it.
with_service_grpc_experiments(os.environ)
