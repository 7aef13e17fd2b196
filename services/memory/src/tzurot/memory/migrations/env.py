"""Alembic env for memory: migrate schema `memory` only."""

from tzurot.db.migrate import run_async_migrations
from tzurot.memory.tables import SCHEMA, metadata

run_async_migrations(metadata, SCHEMA)
