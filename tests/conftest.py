"""Shared pytest setup: fixtures come from plugins in tzurot.testing."""

import os

from tzurot.runtime.grpc_options import with_service_grpc_experiments

# Before anything imports grpc: the tests run gRPC as the services are deployed.
with_service_grpc_experiments(os.environ)

pytest_plugins = ["tzurot.testing.postgres"]
