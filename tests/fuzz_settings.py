"""The bounds every property test runs under (test_fuzz*.py): examples per test and a
per-example deadline, so each file runs in seconds."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# CI draws the same examples every run (derandomize), so a red test is a bug, not bad luck.
# For a longer, fresh hunt: XPNET_FUZZ_EXAMPLES=50 python -m pytest tests/test_fuzz*.py
HUNT = int(os.environ.get("XPNET_FUZZ_EXAMPLES", "0"))
FAST = settings(max_examples=300 * max(HUNT, 1), deadline=2000, derandomize=not HUNT, database=None,
                suppress_health_check=[HealthCheck.too_slow])
SLOWER = settings(FAST, max_examples=120 * max(HUNT, 1), deadline=5000)
