"""`python -m tzurot.keyvault`: run keyvault until SIGTERM."""

from tzurot.keyvault.app import start_keyvault
from tzurot.keyvault.config import KeyVaultSettings
from tzurot.keyvault.masterkey import (
    master_key_secrets,
    parse_master_key_ring,
    read_master_key_text,
)
from tzurot.runtime.config import secret_values
from tzurot.runtime.logging import configure_logging
from tzurot.runtime.main import run_service
from tzurot.runtime.server import serve_until_signal


async def _serve() -> None:
    settings = KeyVaultSettings.load()
    master_text = read_master_key_text(settings.master_key, settings.master_key_file)
    configure_logging(
        "keyvault",
        level=settings.log_level,
        fmt=settings.log_format,
        secrets=[*secret_values(settings), *master_key_secrets(master_text)],
    )
    app = await start_keyvault(settings, ring=parse_master_key_ring(master_text))
    try:
        await serve_until_signal(app.running, settings.grace_seconds)
    finally:
        await app.stop()


def main() -> None:
    run_service("keyvault", _serve)


if __name__ == "__main__":
    main()
