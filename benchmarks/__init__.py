"""Benchmarks that print figures (ratios against peers measured in the same run); not tests."""
