"""Benchmarks: `make bench` (or `python -m bench [--quick]`) prints a table and writes JSON."""
