"""Benchmarks. Each prints one JSON line per case; see docs/benchmarks.md."""
