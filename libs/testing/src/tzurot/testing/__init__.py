"""Test harnesses and protocol-level fakes of what lies beyond this machine."""
