"""`python -m tzurot.gateway`: run the gateway until SIGTERM."""

import structlog

from tzurot.gateway.app import start_gateway
from tzurot.gateway.config import GatewaySettings
from tzurot.runtime.config import secret_values
from tzurot.runtime.logging import configure_logging
from tzurot.runtime.main import run_service
from tzurot.runtime.server import wait_for_termination_signal

log = structlog.get_logger("tzurot.gateway")


async def _serve() -> None:
    settings = GatewaySettings.load()
    configure_logging(
        "gateway",
        level=settings.log_level,
        fmt=settings.log_format,
        secrets=secret_values(settings),
    )
    app = await start_gateway(settings)
    try:
        signum = await wait_for_termination_signal()
        log.info("server.draining", signal=signum.name, grace_seconds=settings.grace_seconds)
    finally:
        # Drains (health NOT_SERVING, then `grace` for calls), then releases the jobs still
        # running here: failed-retryable, so a resend is answered at once elsewhere.
        await app.stop()
    log.info("server.stopped")


def main() -> None:
    run_service("gateway", _serve)


if __name__ == "__main__":
    main()
