"""Postgres access shared by the services that own a schema (gateway, memory, keyvault).

`engine` builds async engines and checks a database at startup; `migrate` runs each
service's Alembic migrations inside that service's own schema.
"""
