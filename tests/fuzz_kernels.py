"""Kernel fuzzer, run in a child process by test_fuzz.py (so a segfault fails the test).

Each call gets random shapes (0 and 1 included), dtypes (sometimes mixed), strides,
read-only flags and values (NaN, inf, huge); the compiled kernel must either raise
ValueError/TypeError exactly when its NumPy twin does, or match it (NaN where it has NaN).

usage: python fuzz_kernels.py N_CALLS SEED
"""
import copy
import sys

import numpy as np

import pgcore
import pgcore.kernels as K
import pgcore.reference as R

SPECIALS = np.array([np.nan, np.inf, -np.inf, 1e30, -1e30, 0.0, -0.0, 1e-30])
# Sums of products that overflow, or mix infinities, give inf or NaN depending on the order of
# summation and on FMA (BLAS and NumPy differ, both correctly): the product kernels get no huge
# or infinite values. The mlp kernels' sparse route skips zero inputs, so a NaN met only through
# a zero input does not propagate (API.md): they get no NaN either.
FINITE_SPECIALS = {
    "linear_backward": np.array([np.nan, 0.0, -0.0, 1e-30]),
    "gaussian_policy_grad": np.array([np.nan, 0.0, -0.0, 1e-30]),
    "mlp_forward": np.array([0.0, -0.0, 1e-30]),
    "mlp_backward": np.array([0.0, -0.0, 1e-30]),
    # Where sigmoid(logit) is subnormal, the kernel's exp and SciPy's expit may round it to 1e-45
    # or to 0: an infinite weight then gives inf or NaN. The weights get no infinities.
    "sigmoid_policy_grad": np.array([np.nan, 1e30, -1e30, 0.0, -0.0, 1e-30]),
    "sparse_mlp_forward": np.array([0.0, -0.0, 1e-30]),
    "sparse_mlp_backward": np.array([0.0, -0.0, 1e-30]),
    "pong_step": np.array([0.0, -0.0, 1e-30]),
    "atari_step": np.array([0.0, -0.0, 1e-30]),
}
PONG_D = 6400


def pong_inputs(rng):
    """A Pong net's input size: the difference frame, or with the frame; now and then another (which
    the sparse net takes and pong_step refuses)."""
    return int(rng.choice([PONG_D, 2 * PONG_D, PONG_D + 1], p=[0.48, 0.48, 0.04]))


def values(rng, shape, dtype, hostile, specials=SPECIALS):
    x = np.asarray(rng.standard_normal(shape) * 10 ** rng.uniform(-3, 3))  # (shape (): a 0-d array, not a scalar)
    if hostile and x.size:
        mask = np.asarray(rng.random(shape) < 0.1)
        x[mask] = rng.choice(specials, mask.sum())
    return x.astype(dtype)


def layout(rng, x):
    """The same values, maybe strided, maybe read-only."""
    if x.ndim and rng.random() < 0.3:
        wide = np.empty(x.shape[:-1] + (2 * x.shape[-1],), x.dtype)
        wide[..., ::2] = x
        x = wide[..., ::2]
    if rng.random() < 0.2:
        x = x.copy() if not x.flags.writeable else x
        x.flags.writeable = False
    return x


def dims(rng, n):
    return tuple(int(rng.choice([0, 1, 2, 3, 7, 33])) for _ in range(n))


def case(rng):
    dtype = rng.choice([np.float32, np.float64])
    other = dtype if rng.random() < 0.9 else (np.float64 if dtype == np.float32 else np.float32)
    hostile = rng.random() < 0.5
    n, a, d, h = dims(rng, 4)
    a = max(a, 1) if rng.random() < 0.9 else a
    name = str(rng.choice(["softmax", "log_softmax", "softmax_policy_grad", "sigmoid_policy_grad", "relu",
                       "relu_backward", "linear_backward", "mlp_forward", "mlp_backward", "discounted_returns",
                       "standardize", "gaussian_policy_grad", "rmsprop_step", "adam_step", "pong_sparse_difference",
                       "sparse_mlp_forward", "sparse_mlp_backward", "pong_step", "gae_advantages",
                       "squared_error", "clipped_sigmoid_policy_grad", "clipped_softmax_policy_grad",
                       "rmsprop_rows_step", "atari_sparse_levels", "atari_step"]))
    specials = FINITE_SPECIALS.get(name, SPECIALS)
    f = lambda shape, d=dtype: layout(rng, values(rng, shape, d, hostile, specials))  # noqa: E731
    tau = float(rng.choice([1.0, 0.5, 1e-3, 10.0, 0.0, -1.0, np.nan]))
    actions = rng.integers(-1 if rng.random() < 0.05 else 0, max(a, 1) + (1 if rng.random() < 0.05 else 0), n)
    if name in ("softmax", "log_softmax"):
        return name, (f((n, a) if rng.random() < 0.7 else (a,)), tau)
    if name == "softmax_policy_grad":
        if rng.random() < 0.5:
            return name, (f((n, a)), actions, f((n,), other), tau)
        return name, (f((n, a)), actions, f((n,), other), tau, float(rng.choice([0.3, -2.0, 0.0, np.inf, np.nan])))
    if name == "sigmoid_policy_grad":
        return name, (f((n,)), rng.integers(0, 2 + (rng.random() < 0.05), n), f((n,), other))
    if name == "clipped_sigmoid_policy_grad":
        return name, (f((n,)), f((n,), other), rng.integers(0, 2 + (rng.random() < 0.05), n), f((n,), other),
                      float(rng.choice([0.2, 0.05, 3.0, 0.0, -1.0, np.inf, np.nan])))
    if name == "clipped_softmax_policy_grad":
        return name, (f((n, a)), f((n, a), other), actions, f((n,), other),
                      float(rng.choice([0.2, 0.05, 3.0, 0.0, -1.0, np.inf, np.nan])))
    if name == "relu":
        return name, (f((n, a)),)
    if name == "relu_backward":
        return name, (f((n, a)), f((n, a), other))
    if name == "linear_backward":
        return name, (f((n, d)), f((n, a), other), f((d, a)))
    if name == "mlp_forward":
        x = f((n, d)) if rng.random() < 0.7 else layout(rng, rng.integers(-1, 2, (n, d)).astype(np.int8))
        w2 = f((h, a)) if rng.random() < 0.5 else f((h,))
        return name, (x, np.nan_to_num(f((d, h), other)), w2)  # non-finite w1: documented sparse-route meaning
    if name == "mlp_backward":
        w2 = f((h, a)) if rng.random() < 0.5 else f((h,))
        return name, (f((n, d)), f((n, h)), f((n,) + w2.shape[1:], other), w2)
    if name == "discounted_returns":
        shape = (n, a) if rng.random() < 0.5 else (n,)
        dones = rng.random(shape) < 0.2 if rng.random() < 0.7 else None
        return name, (f(shape), float(rng.choice([0.0, 0.5, 0.99, 1.0, 1.5])), dones)
    if name == "gae_advantages":
        shape = (n, a) if rng.random() < 0.5 else (n,)
        dones = rng.random(shape) < 0.2 if rng.random() < 0.7 else None
        last_values = f(shape[1:], other) if rng.random() < 0.5 else None
        return name, (f(shape), f(shape, other), float(rng.choice([0.0, 0.5, 0.99, 1.0, 1.5])),
                      float(rng.choice([0.0, 0.95, 1.0, -0.1])), dones, last_values)
    if name == "standardize":
        return name, (f((n, a)), float(rng.choice([1e-8, 0.0, 1.0])))
    if name == "squared_error":
        shape = (n, a) if rng.random() < 0.5 else (n,)
        return name, (f(shape), f(shape, other), float(rng.choice([1.0, 0.5, 0.0, -1.0, np.inf])))
    if name == "gaussian_policy_grad":
        k = (a,) if rng.random() < 0.5 else ()
        return name, (f((d,) + k), f((n, d)), f((n,) + k, other), f((n,)), float(rng.choice([1.0, 0.3, 0.0])))
    if name in ("pong_sparse_difference", "pong_step"):
        return name, pong_case(rng, name, n, h, dtype, f)
    if name in ("atari_sparse_levels", "atari_step"):
        return name, atari_case(rng, name, n, h, dtype, f)
    if name in ("sparse_mlp_forward", "sparse_mlp_backward"):
        inputs = pong_inputs(rng)
        starts, indices, signs = sparse_rows(rng, n, inputs)
        logits = logit_shape(rng)
        w1, w2 = f((inputs, h)), f((h,) + logits, other)
        if name == "sparse_mlp_forward":
            return name, (starts, indices, signs, w1, w2)
        args = (starts, indices, signs, f((len(starts) - 1,) + logits), w1, w2, np.array(f((inputs, h))),
                np.array(f((h,) + logits)))
        given = rng.random()  # h: none (recomputed), the forward's, any values (taken as given), a bad one
        if given < 0.4:
            return name, args
        if given < 0.6:
            try:
                return name, args + (layout(rng, R.sparse_mlp_forward(starts, indices, signs, w1, w2)[0]),)
            except (ValueError, TypeError):
                pass  # bad rows or net: the call is refused whatever h is
        n = len(starts) - 1
        shape = (n, h) if rng.random() < 0.9 else [(n + 1, h), (n, h + 1), (n * h,)][int(rng.integers(0, 3))]
        return name, args + (f(shape),)
    shape = (n, a)
    if name == "rmsprop_rows_step":
        return name, rmsprop_rows_case(rng, n, a, other, f)
    if name == "adam_step":
        return name, (np.array(f(shape)), f(shape, other), np.array(f(shape)), np.abs(np.array(f(shape))),
                      int(rng.choice([1, 10, 0])), float(rng.choice([1e-3, 0.1])))
    return name, (np.array(f(shape)), f(shape, other), np.abs(np.array(f(shape))), float(rng.choice([1e-3, 0.1])))


def rmsprop_rows_case(rng, n, a, other, f):
    """A row subset in any order and integer dtype, the gradient nonzero only there, ages up to
    many steps; now and then a repeated or out-of-range row, bad ages or a strided param."""
    rows = rng.permutation(n)[:int(rng.integers(0, n + 1))].astype(rng.choice([np.int64, np.int32, np.uint16]))
    bad = rng.random()
    if bad < 0.03 and len(rows):
        rows = np.append(rows, rows[0])  # repeated
    elif bad < 0.06:
        rows = np.append(rows, n if rng.random() < 0.5 else -1)  # out of range
    touched = np.unique(rows[(rows >= 0) & (rows < n)]).astype(np.intp)
    grad = np.zeros((n, a), other)
    grad[touched] = f((len(touched), a), other)
    ages = rng.integers(0, int(rng.choice([1, 30, 10**6])), n)
    if rng.random() < 0.03:
        ages = ages.astype(np.int32) if rng.random() < 0.5 else -ages - 1  # wrong dtype, negative
    param = np.array(f((n, a))) if rng.random() < 0.95 else layout(rng, np.array(f((n, a))))
    return (param, grad, np.abs(np.array(f((n, a)))), rows, ages, float(rng.choice([1e-3, 0.1])),
            float(rng.choice([0.99, 0.0, 1.0, 0.5, 1.5])), float(rng.choice([1e-5, 0.0])))


def logit_shape(rng):
    """The logits of a step of a net: one (w2 (H,)), three (w2 (H, 3)), now and then two (which
    pong_step refuses), eighteen, or nineteen or one in a column (refused)."""
    return [(), (3,), (2,), (18,), (19,), (1,)][int(rng.choice(6, p=[0.44, 0.44, 0.03, 0.03, 0.03, 0.03]))]


def sparse_rows(rng, n, inputs):
    """CSR rows of ternary Pong inputs, now and then malformed (the kernels must refuse those)."""
    counts = rng.choice([0, 1, 26, 300], n)
    starts = np.concatenate([[0], np.cumsum(counts)])
    indices = rng.integers(0, inputs, starts[-1]).astype(np.int16)
    signs = rng.choice(np.array([-1, 1], np.int8), starts[-1])
    bad = rng.random()
    if bad < 0.03 and len(indices):
        indices[-1] = inputs if rng.random() < 0.5 else -1
    elif bad < 0.06 and len(signs):
        signs[0] = 0
    elif bad < 0.09 and n > 1:
        starts[1] = starts[-1] + 1
    return starts, indices, signs


def pong_frames(rng, n):
    frames = np.full((n, 210, 160, 3), 144, np.uint8)
    frames[:, 35:195, :, 0][rng.random((n, 160, 160)) < rng.choice([0.0, 0.01, 1.0])] = 236
    return frames


def pong_case(rng, name, n, h, dtype, f):
    envs = n + int(rng.integers(0, 3))
    previous = (rng.random((envs, PONG_D)) < 0.02).astype(np.uint8)
    rows = rng.permutation(envs)[:n] if rng.random() < 0.95 else np.zeros(n, np.int64)
    fresh = rng.random(n) < 0.3
    frames = pong_frames(rng, n) if rng.random() < 0.95 else np.zeros((n, 200, 160, 3), np.uint8)
    if name == "pong_sparse_difference":
        return frames, previous, rows, fresh, [False, True, np.True_, 1][int(rng.integers(4))]  # 1: not a bool, refused
    from pgcore.pong import SparseEpisodes
    inputs, logits = pong_inputs(rng), logit_shape(rng)
    stored = logits if rng.random() < 0.95 else (3,) if logits == () else ()  # a store for another net: refused
    episodes = SparseEpisodes(envs, dtype if rng.random() < 0.95 else np.float16, steps=2,
                              capacity=PONG_D * int(rng.choice([1, 2, 4])), inputs=inputs, logits=(stored or (1,))[0])
    episodes.lengths[:] = rng.integers(0, 3, envs)  # a step count of 2 leaves no room: refused
    return frames, previous, rows, fresh, f((inputs, h)), f((h,) + logits), rng.random(n), episodes


def atari_case(rng, name, n, h, dtype, f):
    """Random frames of a small random size, levels of 1 to 8 bits; now and then frames too
    large, bad bits, a background level too high, a net or a store for other frames."""
    height, width = (int(rng.integers(1, 12)), int(rng.integers(1, 12))) if rng.random() < 0.97 else (130, 130)
    bits = int(rng.integers(1, 9)) if rng.random() < 0.95 else int(rng.choice([0, 9]))
    pixels, top = height * width, 2 ** min(max(bits, 1), 8)
    envs = n + int(rng.integers(0, 3))
    frames = rng.integers(0, 256, (n, height, width), dtype=np.uint8)
    background = rng.integers(0, top + (rng.random() < 0.05), pixels).astype(np.uint8)
    previous = rng.integers(0, top, (envs, pixels)).astype(np.uint8)
    rows = rng.permutation(envs)[:n] if rng.random() < 0.95 else np.zeros(n, np.int64)
    fresh = rng.random(n) < 0.3
    if name == "atari_sparse_levels":
        return frames, background, previous, rows, fresh, bits
    from pgcore.pong import SparseEpisodes
    inputs = 2 * pixels if rng.random() < 0.95 else 2 * pixels + 1
    logits = int(rng.choice([2, 4, 18])) if rng.random() < 0.95 else int(rng.choice([1, 19]))
    episodes = SparseEpisodes(envs, dtype, steps=2, capacity=inputs * int(rng.choice([1, 2])), inputs=inputs,
                              logits=logits)
    episodes.lengths[:] = rng.integers(0, 3, envs)  # a step count of 2 leaves no room: refused
    return frames, background, previous, rows, fresh, f((inputs, h)), f((h, logits)), rng.random(n), episodes, bits


def run_one(function, args):
    args = tuple(a.copy() if isinstance(a, np.ndarray) and a.flags.writeable
                 else copy.deepcopy(a) if hasattr(a, "lengths") else a for a in args)
    try:
        result = function(*args)
    except (ValueError, TypeError) as error:
        return ("error", type(error)), args
    return ("ok", result), args


def same(kernel, twin, dtype, scale_floor=0.0):
    """Equal to rtol, NaN in the same places; `scale_floor` widens the absolute tolerance where
    the result is a small difference of larger terms (weights * (a - p))."""
    rtol = 1e-4 if dtype == np.float32 else 1e-9
    for k, t in zip(kernel if isinstance(kernel, tuple) else (kernel,), twin if isinstance(twin, tuple) else (twin,)):
        k, t = np.asarray(k), np.asarray(t)
        if k.shape != t.shape or k.dtype != t.dtype:
            return False
        scale = np.nanmax(np.abs(t[np.isfinite(t)])) if np.isfinite(t).any() else 1.0
        scale = max(scale, scale_floor)
        if not np.allclose(k, t, rtol=rtol, atol=rtol * scale * 10, equal_nan=True):
            return False
    return True


def main():
    n_calls, seed = int(sys.argv[1]), int(sys.argv[2])
    rng = np.random.default_rng(seed)
    failures = 0
    for i in range(n_calls):
        pgcore.set_num_threads(1 + i % 2)
        name, args = case(rng)
        (k_kind, k_value), k_args = run_one(getattr(K, name), args)
        (r_kind, r_value), r_args = run_one(getattr(R, name), args)
        dtype = next((a.dtype for a in args if isinstance(a, np.ndarray) and a.dtype.kind == "f"), np.float64)
        if name == "rmsprop_step" and k_kind == "ok":
            k_value, r_value = tuple(k_args[::2]), tuple(r_args[::2])  # param and cache, updated in place
        if name == "rmsprop_rows_step" and k_kind == "ok":
            k_value, r_value = k_args[:3] + k_args[4:5], r_args[:3] + r_args[4:5]  # param, grad, cache, ages
        if name == "adam_step" and k_kind == "ok":
            k_value, r_value = (k_args[0],) + k_args[2:4], (r_args[0],) + r_args[2:4]  # param, m, v
        if name == "sparse_mlp_backward" and k_kind == "ok":
            k_value, r_value = k_args[6:8], r_args[6:8]  # grad_w1, grad_w2, added to in place
        if name == "pong_sparse_difference" and k_kind == "ok":
            k_value, r_value = (*k_value, k_args[1]), (*r_value, r_args[1])  # and the previous frames
        if name == "pong_step" and k_kind == "ok":  # and the previous frames, and every array of the episodes
            k_value, r_value = ((k_value, k_args[1], *vars(k_args[7]).values()),
                                (r_value, r_args[1], *vars(r_args[7]).values()))
        if name == "atari_sparse_levels" and k_kind == "ok":
            k_value, r_value = (*k_value, k_args[2]), (*r_value, r_args[2])  # and the previous levels
        if name == "atari_step" and k_kind == "ok":  # and the previous levels, and every array of the episodes
            k_value, r_value = ((k_value, k_args[2], *vars(k_args[8]).values()),
                                (r_value, r_args[2], *vars(r_args[8]).values()))
        floor = 0.0
        if name in ("sigmoid_policy_grad", "softmax_policy_grad") and k_kind == "ok" and np.isfinite(args[2]).any():
            # weights * (onehot - p) / tau: where p rounds to 1, the two differ by one ulp of p (and the
            # entropy bonus's p * (log p + H) by about as much, times the entropy coefficient)
            entropy = abs(args[4]) if len(args) > 4 else 0.0
            floor = (float(np.abs(args[2][np.isfinite(args[2])]).max()) + entropy) / (args[3] if len(args) > 3 else 1.0)
        ok = (k_kind == r_kind == "error") or (k_kind == r_kind == "ok" and same(k_value, r_value, dtype, floor))
        if not ok:
            failures += 1
            shapes = [(a.shape, a.dtype.name, a.flags.c_contiguous, a.flags.writeable) if isinstance(a, np.ndarray)
                      else a for a in args]
            print(f"MISMATCH call {i} {name}: kernel {k_kind} {k_value if k_kind == 'error' else ''}, "
                  f"twin {r_kind} {r_value if r_kind == 'error' else ''}; args {shapes}", flush=True)
    print(f"done {n_calls} calls, {failures} mismatches", flush=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
