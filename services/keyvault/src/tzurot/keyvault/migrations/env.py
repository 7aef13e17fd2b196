"""Alembic env for keyvault: migrate schema `vault` only."""

from tzurot.db.migrate import run_async_migrations
from tzurot.keyvault.tables import SCHEMA, metadata

run_async_migrations(metadata, SCHEMA)
