"""Benchmarks: each compares minewatch against a baseline measured in the same run."""
