"""Alembic env for gateway: migrate schema `core` only."""

from tzurot.db.migrate import run_async_migrations
from tzurot.gateway.tables import SCHEMA, metadata

run_async_migrations(metadata, SCHEMA)
