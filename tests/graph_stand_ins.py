"""What the graph tests share: the CPU stand-in for recording a step, their small three-class
set, the parameters read back to the host, and Adam's tolerance for the library's pow."""

from __future__ import annotations

import numpy as np


def rerunning(fn):
    """A CPU stand-in for recording a graph: run the step; each replay runs it again."""
    fn()
    return fn


def blobs(n=203, seed=0):
    """Three classes; 203 rows, so batches of 32 leave a last batch of 11."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4))
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0.7)
    return X, y


def host_params(net):
    return [net.backend.to_numpy(p) for p in net.params]


# 1 - beta2 ** t magnifies a last-bit difference in pow about a thousandfold at t = 1 (a GPU's
# pow may be 2 ulp from libm's), so float64 Adam is held to 1e-10, as GPU results are (test_graphs.py).
STEP_SIZE_TOL = {"float64": dict(rtol=1e-10, atol=1e-12), "float32": dict(rtol=1e-5, atol=1e-6)}


def counting_runs(runs: list):
    """The stand-in, noting in `runs` every time the recorded step runs (its first, real run too)."""
    def capture(fn):
        def counted():
            runs.append(1)
            fn()
        return rerunning(counted)
    return capture
