"""Where the local mesh keeps its state (a module of its own: the CLI's help imports it)."""

from pathlib import Path

DEFAULT_DATA_DIR = Path(".data")
