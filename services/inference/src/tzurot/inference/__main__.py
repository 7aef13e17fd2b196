"""`python -m tzurot.inference`: run inference until SIGTERM."""

from tzurot.inference.app import start_inference
from tzurot.inference.config import InferenceSettings
from tzurot.runtime.config import secret_values
from tzurot.runtime.logging import configure_logging
from tzurot.runtime.main import run_service
from tzurot.runtime.server import serve_until_signal


async def _serve() -> None:
    settings = InferenceSettings.load()
    configure_logging(
        "inference",
        level=settings.log_level,
        fmt=settings.log_format,
        secrets=secret_values(settings),
    )
    app = await start_inference(settings)
    try:
        await serve_until_signal(app.running, settings.grace_seconds)
    finally:
        await app.stop()


def main() -> None:
    run_service("inference", _serve)


if __name__ == "__main__":
    main()
