"""Slash commands: one module per area, each a thin `app_commands.Group` over the gateway."""
