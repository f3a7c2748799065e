"""Benchmark scripts: each prints its ratios side by side from one interleaved run."""
