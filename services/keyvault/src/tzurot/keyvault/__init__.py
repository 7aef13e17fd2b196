"""Keyvault: the only process that holds the master key; stores users' API keys encrypted."""
