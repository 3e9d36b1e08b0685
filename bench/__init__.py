"""Benchmarks (`make bench`): one JSON object per line on standard output, each with a `name`."""
