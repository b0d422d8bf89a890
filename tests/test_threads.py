"""Kernels called from several Python threads at once give the results of serial calls."""
from concurrent.futures import ThreadPoolExecutor

import numpy as np

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
