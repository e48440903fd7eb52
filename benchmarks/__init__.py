"""Benchmarks of the suite (``make bench``): see benchmarks/bench.py."""
