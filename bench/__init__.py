"""Benchmark scripts: each prints its ratios side by side from one run, its contestants taking turns."""
