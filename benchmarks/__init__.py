"""Benchmarks of the sanjin product at production sizes (issue #6): `python -m benchmarks --help`."""
