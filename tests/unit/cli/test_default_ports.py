"""Default ports lie below Linux's ephemeral range (32768-60999): an outgoing connection can
never hold a port the mesh needs when a service restarts."""

import pytest
from pydantic_settings import BaseSettings

from tzurot.bot.config import BotSettings
from tzurot.cli.mesh import MeshLayout
from tzurot.cli.settings import CliSettings
from tzurot.gateway.config import GatewaySettings
from tzurot.inference.config import InferenceSettings
from tzurot.keyvault.config import KeyVaultSettings
from tzurot.memory.config import MemorySettings

EPHEMERAL = range(32768, 61000)


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


@pytest.mark.parametrize(
    "settings", [GatewaySettings, InferenceSettings, MemorySettings, KeyVaultSettings, BotSettings]
)
def test_service_defaults_are_outside_the_ephemeral_range(settings: type[BaseSettings]) -> None:
    for name, field in settings.model_fields.items():
        default = field.default
        if (name == "listen" or name.endswith("_addr")) and isinstance(default, str) and default:
            assert _port(default) not in EPHEMERAL, (settings.__name__, name, default)


def test_the_local_mesh_and_the_cli_use_ports_outside_it() -> None:
    layout = MeshLayout(data_dir=__import__("pathlib").Path(".data"))
    for service in ("gateway", "inference", "memory", "keyvault"):
        assert layout.port(service) not in EPHEMERAL
    assert _port(CliSettings().gateway_addr) not in EPHEMERAL
