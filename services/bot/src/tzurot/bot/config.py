"""Bot settings (env `TZUROT_*`)."""

from pydantic import Field, SecretStr

from tzurot.runtime.config import ServiceSettings


class BotSettings(ServiceSettings):
    """The Discord token and the gateway's address."""

    discord_token: SecretStr | None = None
    gateway_addr: str = "127.0.0.1:50051"
    generate_timeout_seconds: float = Field(default=600.0, gt=0)
