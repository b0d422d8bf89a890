"""Kernels called from several Python threads at once give the results of serial calls; one thread
count holds for the kernels' OpenMP loops and every BLAS library."""
import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import pgcore.kernels as K


def _calls(seed):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((40_000, 6)).astype(np.float32)  # large: the parallel paths run
    actions = rng.integers(0, 6, 40_000)
    weights = rng.standard_normal(40_000).astype(np.float32)
    x = np.zeros((64, 6400), np.float32)
    x[rng.integers(0, 64, 1500), rng.integers(0, 6400, 1500)] = rng.choice([-1.0, 1.0], 1500)
    w1 = rng.standard_normal((6400, 32)).astype(np.float32)
    w2 = rng.standard_normal(32).astype(np.float32)
    rewards = rng.standard_normal((20_000, 4)).astype(np.float32)
    return [
        lambda: K.softmax(logits, 0.5),
        lambda: K.log_softmax(logits, 2.0),
        lambda: K.softmax_policy_grad(logits, actions, weights, 0.7),
        lambda: K.relu_backward(weights, logits[:, 0].copy()),
        lambda: K.standardize(weights),
        lambda: K.discounted_returns(rewards, 0.99, rewards > 1.5),
        lambda: K.mlp_forward(x, w1, w2),
        lambda: K.mlp_backward(x, K.mlp_forward(x, w1, w2)[0], weights[:64], w2),
    ]


def _flatten(result):
    return result if isinstance(result, tuple) else (result,)


def test_kernels_from_four_threads_match_serial_calls(threads):
    calls = [call for seed in range(4) for call in _calls(seed)]
    serial = [_flatten(call()) for call in calls]
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(3):
            concurrent = list(pool.map(lambda call: _flatten(call()), calls))
            for want, got in zip(serial, concurrent):
                for w, g in zip(want, got):
                    assert np.array_equal(w, g)


def test_rmsprop_from_four_threads_on_separate_state(threads):
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(200_000).astype(np.float32) for _ in range(4)]

    def run(grad, out):
        param, cache = np.ones_like(grad), np.zeros_like(grad)
        for _ in range(5):
            K.rmsprop_step(param, grad, cache, 1e-3)
        out.append((param, cache))
        return out

    serial = [run(g, [])[0] for g in grads]
    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(lambda g: run(g, [])[0], grads))
    for (p1, c1), (p2, c2) in zip(serial, concurrent):
        assert np.array_equal(p1, p2) and np.array_equal(c1, c2)


# In a fresh process (BLAS thread counts are process-wide): the count is set either before or after
# pgcore.kernels loads SciPy's BLAS (the one the compiled kernels call), then read back from every
# BLAS library threadpoolctl finds (NumPy's and SciPy's OpenBLAS: two copies, two thread pools).
BLAS_COUNTS = """
import sys
from threadpoolctl import threadpool_info
import pgcore
if sys.argv[1] == "before":
    pgcore.set_num_threads(1)
import pgcore.kernels
if sys.argv[1] == "after":
    pgcore.set_num_threads(1)
blas = [(p["filepath"], p["num_threads"]) for p in threadpool_info() if p["user_api"] == "blas"]
print(pgcore.get_num_threads(), blas)
"""


@pytest.mark.parametrize("when", ["before", "after"])
def test_set_num_threads_limits_every_blas_library(when, tmp_path):
    # run away from the checkout, so that the installed pgcore is imported, not the source folder
    result = subprocess.run([sys.executable, "-c", BLAS_COUNTS, when], capture_output=True, text=True, timeout=300,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    count, blas = result.stdout.split(" ", 1)
    blas = ast.literal_eval(blas)
    assert count == "1" and blas, result.stdout
    assert all(threads == 1 for _, threads in blas), f"set_num_threads(1) {when} the kernels load: {blas}"
