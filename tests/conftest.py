"""Shared pytest setup: fixtures come from plugins in tzurot.testing."""

pytest_plugins = ["tzurot.testing.postgres"]
