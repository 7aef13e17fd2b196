"""`python -m tzurot.gateway`: run the gateway until SIGTERM."""

from tzurot.gateway.app import start_gateway
from tzurot.gateway.config import GatewaySettings
from tzurot.runtime.config import secret_values
from tzurot.runtime.logging import configure_logging
from tzurot.runtime.main import run_service
from tzurot.runtime.server import serve_until_signal


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
        await serve_until_signal(app.running, settings.grace_seconds)
    finally:
        await app.stop()


def main() -> None:
    run_service("gateway", _serve)


if __name__ == "__main__":
    main()
