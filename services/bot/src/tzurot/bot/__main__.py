"""`python -m tzurot.bot`: connect to Discord (needs TZUROT_DISCORD_TOKEN) and the gateway.

SIGTERM (Kubernetes, `tzurot up`) stops it as Ctrl-C does: the answers in flight finish
(within TZUROT_GRACE_SECONDS), then it disconnects. Without a handler a container's PID 1
ignores SIGTERM (and runs on until SIGKILL), and any other process dies at once, mid-answer.
"""

import asyncio
import contextlib
import logging
import signal
from typing import Protocol

import discord
import structlog

from tzurot.bot.bot import TzurotBot
from tzurot.bot.config import BotSettings
from tzurot.bot.gateway_client import GatewayClient, gateway_channel
from tzurot.runtime.config import secret_values
from tzurot.runtime.errors import StartupError
from tzurot.runtime.logging import configure_logging
from tzurot.runtime.main import run_service
from tzurot.runtime.probes import start_probe_server
from tzurot.runtime.server import signal_received
from tzurot.v1 import gateway_pb2_grpc

log = structlog.get_logger(__name__)


class Startable(Protocol):
    async def start(self, token: str) -> None: ...
    async def close(self) -> None: ...


async def run_until_terminated(bot: Startable, token: str) -> None:
    """Runs `bot` until it ends or SIGTERM comes; then closes it (its answers in flight
    finish first) and returns once it has stopped."""
    with signal_received((signal.SIGTERM,)) as terminated:
        running = asyncio.create_task(bot.start(token))
        try:
            await asyncio.wait((running, terminated), return_when=asyncio.FIRST_COMPLETED)
            if terminated.done():
                log.info("bot.terminating")
                await bot.close()
            await running
        finally:
            if not running.done():  # cancelled itself (Ctrl-C): the bot's start goes too
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running


async def _serve() -> None:
    settings = BotSettings.load()
    if settings.discord_token is None:
        raise StartupError("TZUROT_DISCORD_TOKEN is not set: the bot needs a Discord bot token")
    configure_logging(
        "bot", level=settings.log_level, fmt=settings.log_format, secrets=secret_values(settings)
    )
    # discord.py logs whole gateway events at DEBUG, modal submissions (API keys) included.
    logging.getLogger("discord").setLevel(max(logging.INFO, logging.getLogger().level))
    channel = gateway_channel(settings)
    gateway = GatewayClient(
        gateway_pb2_grpc.GatewayServiceStub(channel),
        generate_timeout=settings.generate_timeout_seconds,
    )
    bot = TzurotBot(gateway, settings)
    # Kubernetes probes and Prometheus (TZUROT_HEALTH_LISTEN, TZUROT_METRICS_LISTEN).
    probes = await start_probe_server("bot", settings)
    await probes.set_serving(True)
    try:
        async with bot:
            try:
                await run_until_terminated(bot, settings.discord_token.get_secret_value())
            except discord.PrivilegedIntentsRequired as exc:  # Discord closed with 4014
                raise StartupError(
                    "Discord refused the Message Content intent (close code 4014): turn on "
                    "Message Content Intent in the developer portal → your application → Bot → "
                    "Privileged Gateway Intents"
                ) from exc
    finally:
        await probes.stop()
        await channel.close()


def main() -> None:
    run_service("bot", _serve)


if __name__ == "__main__":
    main()
