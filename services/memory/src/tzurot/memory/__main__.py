"""`python -m tzurot.memory`: run memory until SIGTERM."""

from tzurot.memory.app import start_memory
from tzurot.memory.config import MemorySettings
from tzurot.runtime.config import secret_values
from tzurot.runtime.logging import configure_logging
from tzurot.runtime.main import run_service
from tzurot.runtime.server import serve_until_signal


async def _serve() -> None:
    settings = MemorySettings.load()
    configure_logging(
        "memory", level=settings.log_level, fmt=settings.log_format, secrets=secret_values(settings)
    )
    app = await start_memory(settings)
    try:
        await serve_until_signal(app.running, settings.grace_seconds)
    finally:
        await app.stop()


def main() -> None:
    run_service("memory", _serve)


if __name__ == "__main__":
    main()
