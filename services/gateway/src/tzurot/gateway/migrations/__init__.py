"""Alembic scripts for schema `core`; `tzurot migrate` finds them through SCRIPT_LOCATION."""

from pathlib import Path

SCRIPT_LOCATION = str(Path(__file__).parent)
SCHEMA = "core"
