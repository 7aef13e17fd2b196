"""Alembic scripts for schema `vault`; `tzurot migrate` finds them through SCRIPT_LOCATION."""

from pathlib import Path

SCRIPT_LOCATION = str(Path(__file__).parent)
SCHEMA = "vault"
