"""Operator tasks against a running mesh (`tzurot admin ...`, `kubectl tzurot ...`)."""
