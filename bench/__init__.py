"""Benchmarks: every measurement is reported beside a baseline timed in the same run."""
