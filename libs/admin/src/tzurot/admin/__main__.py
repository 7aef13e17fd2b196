"""`python -m tzurot.admin ...`: what `tzurot admin ...` runs (also inside the gateway pod)."""

import os

# Before gRPC loads: its core logs a failed TLS handshake at INFO on stderr, besides our line.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

from tzurot.admin.commands import main  # after the environment above

if __name__ == "__main__":
    main()
