"""Every compiled kernel against its NumPy twin (API.md: 1e-5 relative in float32, 1e-12 in
float64), on hypothesis-generated shapes (sizes 0 and 1 included), both float dtypes,
1 and 2 threads, non-contiguous (strided, negative-stride, transposed) and read-only
inputs, and large inputs that take the kernels' parallel paths.

Where a result is a sum (matrix products, returns, ...) the absolute part of the tolerance
is rtol times the matching sum of magnitudes (e.g. rtol * |A| @ |B| for A @ B): the
rounding error bound of that sum, so an honest reordering passes and a wrong term fails.

Sizes 0 of a few dimensions are left to test_edge_cases.py::test_empty_inputs, which
covers every kernel on empty inputs explicitly (see the note at each strategy).
"""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import pgcore.kernels as K
import pgcore.reference as R
from helpers import LAYOUTS, arrange, assert_close, read_only, rtol_of

layouts = st.sampled_from(LAYOUTS)
seeds = st.integers(0, 2**32 - 1)
scales = st.sampled_from([1e-3, 1.0, 1e3])
taus = st.sampled_from([1e-3, 0.1, 1.0, 10.0]) | st.floats(1e-3, 1e3)
int_dtypes = st.sampled_from([np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
                              np.uint64, np.intp])


def normal(rng, shape, dtype, scale=1.0):
    return np.asarray(rng.normal(size=shape) * scale, dtype=dtype)


def both(name, *args, **kwargs):
    """(kernels result, reference result) of one call."""
    return getattr(K, name)(*args, **kwargs), getattr(R, name)(*args, **kwargs)


# ---- policy outputs ----

def _check_softmax(logits, tau, dtype):
    rtol = rtol_of(dtype)
    got, want = both("softmax", logits, tau)
    assert_close(got, want, rtol, atol=np.finfo(dtype).tiny * 1e3, what="softmax")
    assert np.all(np.isfinite(got))
    if got.size:
        assert_close(got.sum(axis=-1), np.ones(got.shape[:-1], dtype), rtol=0,
                     atol=50 * np.finfo(dtype).eps, what="softmax row sums")
    got, want = both("log_softmax", logits, tau)
    atol = rtol * max(1.0, np.log(logits.shape[-1]))
    assert_close(got, want, rtol, atol=atol, what="log_softmax")


@given(shape=st.tuples(st.integers(0, 12), st.integers(1, 12)) | st.tuples(st.integers(1, 12)),
       scale=scales, tau=taus, seed=seeds, layout=layouts)
def test_softmax_and_log_softmax(threads, dtype, shape, scale, tau, seed, layout):
    logits = arrange(normal(np.random.default_rng(seed), shape, dtype, scale), layout)
    _check_softmax(logits, tau, dtype)


def test_softmax_default_tau(dtype):
    logits = normal(np.random.default_rng(0), (3, 4), dtype)
    assert_close(K.softmax(logits), R.softmax(logits, tau=1.0), rtol_of(dtype))
    assert_close(K.log_softmax(logits), R.log_softmax(logits, 1.0), rtol_of(dtype), atol=rtol_of(dtype))


def _check_softmax_policy_grad(logits, actions, weights, tau, dtype, entropy=0.0):
    got, want = both("softmax_policy_grad", logits, actions, weights, tau, entropy)
    # (onehot - p) * w / tau: an entry whose p is ~1 cancels, so each row's bound includes rtol * |w / tau|;
    # the bonus's p * (log p + H) / tau cancels too, and |p log p| <= 1/e, p * H <= log(A)
    bonus = abs(entropy) * (1 + np.log(max(logits.shape[1], 1)))
    atol = rtol_of(dtype) * ((np.abs(np.asarray(weights, np.float64)) + bonus) / tau)[:, None]
    assert_close(got, want, rtol_of(dtype), atol=atol, what="softmax_policy_grad")


entropies = st.sampled_from([0.0, 0.01, 0.3, 5.0]) | st.floats(-10, 10)


@given(n=st.integers(0, 12), n_actions=st.integers(1, 10), scale=scales, tau=taus, entropy=entropies, seed=seeds,
       action_dtype=int_dtypes, layout=layouts, layout_w=layouts)
def test_softmax_policy_grad(threads, dtype, n, n_actions, scale, tau, entropy, seed, action_dtype, layout,
                             layout_w):
    rng = np.random.default_rng(seed)
    logits = arrange(normal(rng, (n, n_actions), dtype, scale), layout)
    actions = arrange(rng.integers(0, n_actions, size=n).astype(action_dtype), layout_w)
    weights = arrange(normal(rng, n, dtype, 2.0), layout_w)
    _check_softmax_policy_grad(logits, actions, weights, tau, dtype, entropy)


def _check_sigmoid_policy_grad(logits, actions, weights, dtype):
    got, want = both("sigmoid_policy_grad", logits, actions, weights)
    # a - sigmoid(l) cancels when sigmoid(l) ~ a: the bound includes rtol * |w|
    atol = rtol_of(dtype) * np.abs(np.asarray(weights, np.float64))
    assert_close(got, want, rtol_of(dtype), atol=atol, what="sigmoid_policy_grad")


@given(n=st.integers(0, 30), scale=scales, seed=seeds, action_dtype=int_dtypes | st.just(np.bool_),
       layout=layouts)
def test_sigmoid_policy_grad(threads, dtype, n, scale, seed, action_dtype, layout):
    rng = np.random.default_rng(seed)
    logits = arrange(normal(rng, n, dtype, scale), layout)
    actions = arrange(rng.integers(0, 2, size=n).astype(action_dtype), layout)
    weights = arrange(normal(rng, n, dtype), layout)
    _check_sigmoid_policy_grad(logits, actions, weights, dtype)


# ---- elementwise network layers ----

# Note: ndim >= 1 here: 0-d arrays are test_edge_cases.py::test_zero_dim_inputs_keep_their_shape.
shapes_any = st.lists(st.integers(0, 7), min_size=1, max_size=3).map(tuple)


def _with_specials(array, rng):
    """Some exact zeros, negative zeros, and values around 0 on both sides."""
    flat = array.reshape(-1)
    if flat.size:
        picks = rng.integers(0, flat.size, size=min(3, flat.size))
        flat[picks] = np.array([0.0, -0.0, np.finfo(array.dtype).tiny], array.dtype)[: len(picks)]
    return array


@given(shape=shapes_any, scale=scales, seed=seeds, layout=layouts)
def test_relu(threads, dtype, shape, scale, seed, layout):
    rng = np.random.default_rng(seed)
    x = arrange(_with_specials(normal(rng, shape, dtype, scale), rng), layout)
    got, want = both("relu", x)
    assert got.shape == x.shape
    assert_close(got, want, rtol=0, what="relu")  # exact
    assert np.all(got >= 0)


@given(shape=shapes_any, scale=scales, seed=seeds, layout=layouts, layout_g=layouts)
def test_relu_backward(threads, dtype, shape, scale, seed, layout, layout_g):
    rng = np.random.default_rng(seed)
    x = arrange(_with_specials(normal(rng, shape, dtype), rng), layout)
    grad_out = arrange(normal(rng, shape, dtype, scale), layout_g)
    got, want = both("relu_backward", grad_out, x)
    assert got.shape == x.shape
    assert_close(got, want, rtol=0, what="relu_backward")  # exact
    assert np.all(got[x <= 0] == 0)


def _check_linear_backward(x, grad_out, w, dtype):
    rtol = rtol_of(dtype)
    (gw, gx), (rw, rx) = both("linear_backward", x, grad_out, w)
    ax, ag, aw = (np.abs(np.asarray(a, np.float64)) for a in (x, grad_out, w))
    assert_close(gw, rw, rtol, atol=rtol * (ax.T @ ag), what="grad_w")
    assert_close(gx, rx, rtol, atol=rtol * (ag @ aw.T), what="grad_x")


@given(n=st.integers(0, 12), n_in=st.integers(0, 12), n_out=st.integers(0, 12), scale=scales, seed=seeds,
       layouts3=st.tuples(layouts, layouts, layouts))
def test_linear_backward(threads, dtype, n, n_in, n_out, scale, seed, layouts3):
    rng = np.random.default_rng(seed)
    x = arrange(normal(rng, (n, n_in), dtype, scale), layouts3[0])
    grad_out = arrange(normal(rng, (n, n_out), dtype), layouts3[1])
    w = arrange(normal(rng, (n_in, n_out), dtype), layouts3[2])
    _check_linear_backward(x, grad_out, w, dtype)


# ---- the 2-layer net: dense (BLAS) and sparse routes, float and int8 inputs ----

X_KINDS = ["dense", "sparse", "sparse_int8", "dense_int8", "ternary_over_cap"]


def net_input(rng, kind, n, d, dtype):
    """x (n, d) of one kind. sparse*: every row has at most d // 16 nonzeros (the compiled
    kernels' sparse route, d >= 16); ternary_over_cap: some row has more (dense route)."""
    cap = d // 16
    if kind == "dense":
        return normal(rng, (n, d), dtype)
    if kind == "dense_int8":
        return rng.integers(-128, 128, size=(n, d)).astype(np.int8)
    x = np.zeros((n, d), dtype=np.int8 if kind.endswith("int8") else dtype)
    for i in range(n):
        count = rng.integers(0, cap + 1) if i else cap  # the first row sits exactly at the cap
        if kind == "ternary_over_cap" and i == n - 1:
            count = min(cap + 1 + rng.integers(0, 3), d)
        cols = rng.choice(d, size=count, replace=False)
        x[i, cols] = rng.choice([-1, 1], size=count)
        if kind == "sparse_int8" and i % 2:  # int8 is used by value: not only +-1
            x[i, cols] = rng.choice(np.r_[-128:0, 1:128], size=count)
    if kind == "sparse" and n and x.any():
        x[x != 0] *= rng.uniform(0.5, 2.0, size=int((x != 0).sum())).astype(dtype)  # not only +-1
    return x


def _as_float(x):
    return np.asarray(x, dtype=np.float64)


def _check_mlp(x, w1, w2, grad_logits, dtype):
    rtol = rtol_of(dtype)
    (h, logits), (rh, rlogits) = both("mlp_forward", x, w1, w2)
    ax, aw1, aw2 = np.abs(_as_float(x)), np.abs(_as_float(w1)), np.abs(_as_float(w2))
    pre_bound = ax @ aw1  # sum of |x_ij w1_jk|: bound of the rounding of x @ w1
    assert_close(h, rh, rtol, atol=rtol * pre_bound, what="h")
    assert_close(logits, rlogits, rtol, atol=2 * rtol * (pre_bound @ aw2), what="logits")
    if x.ndim == 1:
        return
    (gw1, gw2), (rw1, rw2) = both("mlp_backward", x, rh, grad_logits, w2)
    agl = np.abs(_as_float(grad_logits))
    grad_h_bound = (agl[:, None] * aw2[None, :]) if w2.ndim == 1 else agl @ aw2.T
    assert_close(gw2, rw2, rtol, atol=rtol * (np.abs(_as_float(rh)).T @ agl), what="grad_w2")
    assert_close(gw1, rw1, rtol, atol=2 * rtol * (ax.T @ grad_h_bound), what="grad_w1")


# Note: n >= 1 and hidden >= 1 here: empty batches / hidden layers are test_edge_cases.py::test_empty_inputs.
@given(kind=st.sampled_from(X_KINDS), n=st.integers(1, 9), d=st.integers(0, 70), hidden=st.integers(1, 12),
       n_out=st.none() | st.integers(0, 4), single=st.booleans(), seed=seeds, layouts4=st.tuples(*[layouts] * 4))
def test_mlp_forward_backward(threads, dtype, kind, n, d, hidden, n_out, single, seed, layouts4):
    rng = np.random.default_rng(seed)
    if kind != "dense" and kind != "dense_int8":
        d = max(d, 16)
    x = net_input(rng, kind, n, d, dtype)
    if single:
        x = x[0]
    w1 = normal(rng, (d, hidden), dtype, 1 / np.sqrt(max(d, 1)))
    w2 = normal(rng, (hidden,) if n_out is None else (hidden, n_out), dtype)
    grad_logits = normal(rng, (n,) if n_out is None else (n, n_out), dtype)
    x, w1, w2, grad_logits = (arrange(a, lay) for a, lay in zip((x, w1, w2, grad_logits), layouts4))
    _check_mlp(x, w1, w2, grad_logits, dtype)


# ---- returns, advantages ----

def _check_returns(rewards, gamma, dones, dtype):
    got, want = both("discounted_returns", rewards, gamma, dones)
    future = np.flip(np.cumsum(np.flip(np.abs(_as_float(rewards)), 0), 0), 0)  # sum of |r| from t on
    assert_close(got, want, rtol_of(dtype), atol=rtol_of(dtype) * future, what="discounted_returns")


# Note: T >= 1 here: T = 0 is test_edge_cases.py::test_empty_inputs.
@given(t=st.integers(1, 40), streams=st.none() | st.integers(0, 5),
       gamma=st.sampled_from([0.0, 1.0, 0.99]) | st.floats(0, 1), with_dones=st.booleans(),
       done_dtype=st.sampled_from([np.bool_, np.int64, np.uint8, np.float32, np.float64]),
       scale=scales, seed=seeds, layout=layouts, layout_d=layouts)
def test_discounted_returns(threads, dtype, t, streams, gamma, with_dones, done_dtype, scale, seed, layout, layout_d):
    rng = np.random.default_rng(seed)
    shape = (t,) if streams is None else (t, streams)
    rewards = arrange(normal(rng, shape, dtype, scale), layout)
    dones = arrange((rng.random(shape) < 0.2).astype(done_dtype), layout_d) if with_dones else None
    _check_returns(rewards, gamma, dones, dtype)


def _check_standardize(x, eps, dtype):
    got, want = both("standardize", x, eps)
    assert got.shape == x.shape
    flat = _as_float(x).reshape(-1)
    spread = np.abs(flat - flat[0]).max(initial=0.0) / (flat.std() + eps) if flat.size else 0.0
    assert_close(got, want, rtol_of(dtype), atol=rtol_of(dtype) * (1 + spread), what="standardize")


@given(shape=shapes_any, loc=st.sampled_from([0.0, 1.0, -1e3, 1e6]), scale=scales, constant=st.booleans(),
       eps=st.sampled_from([1e-8, 1e-3, 0.5]), seed=seeds, layout=layouts)
def test_standardize(threads, dtype, shape, loc, scale, constant, eps, seed, layout):
    rng = np.random.default_rng(seed)
    x = np.full(shape, loc, dtype) if constant else (loc + scale * rng.normal(size=shape)).astype(dtype)
    _check_standardize(arrange(x, layout), eps, dtype)


def test_standardize_default_eps(dtype):
    x = normal(np.random.default_rng(0), 50, dtype, 3.0) + 7
    assert_close(K.standardize(x), R.standardize(x, 1e-8), rtol_of(dtype), atol=10 * rtol_of(dtype))


# ---- linear Gaussian policy ----

def _check_gaussian(theta, states, actions, weights, sigma, dtype):
    got, want = both("gaussian_policy_grad", theta, states, actions, weights, sigma)
    at, as_, aa, aw = (np.abs(_as_float(a)) for a in (theta, states, actions, weights))
    residual_bound = aa + as_ @ at
    weighted = residual_bound * (aw if theta.ndim == 1 else aw[:, None])
    assert_close(got, want, rtol_of(dtype), atol=3 * rtol_of(dtype) * (as_.T @ weighted) / sigma**2,
                 what="gaussian_policy_grad")


# Note: D >= 1 here: D = 0 is test_edge_cases.py::test_empty_inputs.
@given(n=st.integers(0, 20), d=st.integers(1, 8), k=st.none() | st.integers(0, 4),
       sigma=st.sampled_from([0.1, 1.0, 3.0]) | st.floats(1e-2, 1e2), scale=scales, seed=seeds,
       layouts4=st.tuples(*[layouts] * 4))
def test_gaussian_policy_grad(threads, dtype, n, d, k, sigma, scale, seed, layouts4):
    rng = np.random.default_rng(seed)
    theta_shape = (d,) if k is None else (d, k)
    theta = normal(rng, theta_shape, dtype)
    states = normal(rng, (n, d), dtype, scale)
    actions = normal(rng, (n,) + theta_shape[1:], dtype, scale)
    weights = normal(rng, n, dtype)
    args = [arrange(a, lay) for a, lay in zip((theta, states, actions, weights), layouts4)]
    _check_gaussian(*args, sigma, dtype)


# ---- optimizer ----

def _rmsprop_both(param, grad, cache, lr, decay, eps, layouts3=("C", "C", "C")):
    """Runs both backends on fresh arrays of the given layouts; returns their (param, cache)."""
    results = []
    for module in (K, R):
        p, g, c = (arrange(a, lay) for a, lay in zip((param, grad, cache), layouts3))
        ret = module.rmsprop_step(p, g, c, lr, decay=decay, eps=eps)
        assert ret is None
        results.append((p, c))
    return results


def _check_rmsprop(param, grad, cache, lr, decay, eps, dtype, layouts3=("C", "C", "C")):
    (kp, kc), (rp, rc) = _rmsprop_both(param, grad, cache, lr, decay, eps, layouts3)
    rtol = rtol_of(dtype)
    g2 = _as_float(grad) ** 2
    assert_close(kc, rc, rtol, atol=rtol * (_as_float(cache) + g2), what="cache")
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.abs(lr * _as_float(grad) / (np.sqrt(_as_float(rc)) + eps))
    assert_close(kp, rp, rtol, atol=rtol * np.nan_to_num(step), what="param")
    # and the update happened: the expected value, not the old one (where they differ)
    expected_cache = decay * _as_float(cache) + (1 - decay) * g2
    assert_close(_as_float(kc), expected_cache, rtol=10 * rtol, atol=10 * rtol * (_as_float(cache) + g2))


@given(shape=shapes_any, lr=st.sampled_from([1e-4, 1e-2, 1.0]), decay=st.sampled_from([0.0, 0.9, 0.99, 1.0]),
       eps=st.sampled_from([1e-5, 1e-8, 0.1]), scale=scales, seed=seeds, layouts3=st.tuples(*[layouts] * 3))
def test_rmsprop_step(threads, dtype, shape, lr, decay, eps, scale, seed, layouts3):
    rng = np.random.default_rng(seed)
    param = normal(rng, shape, dtype)
    grad = normal(rng, shape, dtype, scale)
    cache = (rng.random(shape) * scale**2).astype(dtype)
    _check_rmsprop(param, grad, cache, lr, decay, eps, dtype, layouts3)


@given(shape=shapes_any, lr=st.sampled_from([1e-4, 1e-2, 1.0]), step=st.sampled_from([1, 2, 10, 10**6]),
       betas=st.sampled_from([(0.9, 0.999), (0.0, 0.0), (0.5, 0.9)]), eps=st.sampled_from([1e-8, 1e-3]),
       scale=scales, seed=seeds, layouts4=st.tuples(*[layouts] * 4))
def test_adam_step(threads, dtype, shape, lr, step, betas, eps, scale, seed, layouts4):
    rng = np.random.default_rng(seed)
    beta1, beta2 = betas
    state = (normal(rng, shape, dtype), normal(rng, shape, dtype, scale),
             normal(rng, shape, dtype, scale), (rng.random(shape) * scale**2).astype(dtype))
    results = []
    for module in (K, R):
        param, grad, m, v = (arrange(a, lay) for a, lay in zip(state, layouts4))
        assert module.adam_step(param, grad, m, v, step, lr, beta1=beta1, beta2=beta2, eps=eps) is None
        results.append((param, m, v))
    (kp, km, kv), (rp, rm, rv) = results
    rtol = rtol_of(dtype)
    grad = _as_float(state[1])
    assert_close(km, rm, rtol, atol=rtol * (np.abs(_as_float(state[2])) + np.abs(grad)), what="m")
    assert_close(kv, rv, rtol, atol=rtol * (_as_float(state[3]) + grad**2), what="v")
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        size = np.abs(lr * _as_float(rm) / (1 - beta1**step) / (np.sqrt(_as_float(rv) / (1 - beta2**step)) + eps))
    assert_close(kp, rp, rtol, atol=10 * rtol * np.nan_to_num(size, posinf=np.finfo(dtype).max), what="param")


def test_adam_first_step_moves_each_param_by_lr(backend, dtype):
    """From zero moments the bias-corrected first step is lr * g / (|g| + eps): lr times the
    sign of g, whatever its size; a zero gradient moves nothing."""
    grad = np.array([3.0, -0.5, 1e-3, 0.0], dtype)
    param, m, v = np.ones(4, dtype), np.zeros(4, dtype), np.zeros(4, dtype)
    backend.adam_step(param, grad, m, v, 1, 0.01, eps=1e-12)
    assert_close(param, np.array([0.99, 1.01, 0.99, 1.0], dtype), rtol=10 * rtol_of(dtype), atol=1e-7)


@pytest.mark.parametrize("view", ["every_2nd", "column_slice", "transposed", "reversed"])
def test_rmsprop_step_updates_a_strided_param_view(backend, threads, dtype, view):
    """The param (and cache) given as views into larger arrays: the view is updated in place,
    the rest of the larger array is not touched."""
    rng = np.random.default_rng(11)
    views = {
        "every_2nd": lambda a: a[::2],
        "column_slice": lambda a: a.reshape(400, 200)[:, 50:150],
        "transposed": lambda a: a.reshape(400, 200).T,
        "reversed": lambda a: a[::-1],
    }
    base_param = normal(rng, 80000, dtype)
    base_cache = (rng.random(80000) + 0.5).astype(dtype)
    big_param, big_cache = base_param.copy(), base_cache.copy()
    param, cache = views[view](big_param), views[view](big_cache)
    assert not param.flags.c_contiguous and not cache.flags.c_contiguous
    grad = normal(rng, param.shape, dtype)
    expect_param, expect_cache = np.array(param), np.array(cache)
    R.rmsprop_step(expect_param, grad, expect_cache, 1e-2, decay=0.9, eps=1e-5)

    backend.rmsprop_step(param, grad, cache, 1e-2, decay=0.9, eps=1e-5)
    rtol = rtol_of(dtype)
    assert_close(cache, expect_cache, rtol, atol=rtol, what="cache view")
    assert_close(param, expect_param, rtol, atol=rtol, what="param view")
    assert not np.array_equal(param, views[view](base_param))  # it moved
    # nothing outside the views changed
    mask = np.ones(80000, bool)
    views[view](mask.reshape(-1))[...] = False
    assert np.array_equal(big_param[mask], base_param[mask])
    assert np.array_equal(big_cache[mask], base_cache[mask])


# ---- Atari frames ----

PALETTE = np.array([0, 144, 109, 53, 92, 236, 1, 255, 143, 145, 108, 110], dtype=np.uint8)


def synthetic_frames(rng, batch):
    shape = (210, 160, 3) if batch is None else (batch, 210, 160, 3)
    frames = rng.integers(0, 256, size=shape, dtype=np.uint8)
    # mostly the two background shades and 0, some paddles/ball colours and near misses
    mask = rng.random(shape[:-1]) < 0.9
    frames[..., 0][mask] = rng.choice(PALETTE, size=int(mask.sum()))
    return frames


def _check_pong(frames):
    got, want = both("pong_preprocess", frames)
    assert got.dtype == np.float32 and want.dtype == np.float32
    assert got.shape == frames.shape[:-3] + (6400,)
    assert np.array_equal(got, want)
    assert set(np.unique(got)) <= {0.0, 1.0}


@given(batch=st.sampled_from([None, 0, 1, 2, 5]), layout=st.sampled_from(["C", "rgba_view", "strided"]),
       seed=seeds)
def test_pong_preprocess_synthetic(threads, batch, layout, seed):
    rng = np.random.default_rng(seed)
    frames = synthetic_frames(rng, batch)
    if layout == "rgba_view":  # the RGB channels of an RGBA array: not contiguous
        rgba = np.zeros(frames.shape[:-1] + (4,), np.uint8)
        rgba[..., :3] = frames
        frames = rgba[..., :3]
    elif layout == "strided":
        frames = arrange(frames, "strided")
    _check_pong(frames)


@pytest.mark.parametrize("module", [K, R], ids=["kernels", "reference"])
def test_pong_preprocess_pixel_mapping(module):
    """Independent of the twin: which input pixel lands where, and which values count."""
    frame = np.full((210, 160, 3), 144, np.uint8)
    frame[35 + 2 * 7, 2 * 11, 0] = 236  # -> out[7 * 80 + 11] = 1
    frame[35 + 2 * 79, 2 * 79, 0] = 1  # bottom-right kept pixel, any nonzero value counts
    frame[35 + 2 * 3 + 1, 2 * 5, 0] = 236  # odd row: dropped
    frame[35 + 2 * 3, 2 * 5 + 1, 0] = 236  # odd column: dropped
    frame[35 + 2 * 4, 2 * 6, 1] = 236  # green channel: ignored
    frame[34, 0, 0] = 236  # above the crop
    frame[195, 0, 0] = 236  # below the crop
    frame[35 + 2 * 20, 2 * 20, 0] = 109  # the other background shade
    frame[35 + 2 * 21, 2 * 21, 0] = 0
    out = module.pong_preprocess(frame)
    expected = np.zeros(6400, np.float32)
    expected[[7 * 80 + 11, 79 * 80 + 79]] = 1
    assert np.array_equal(out, expected)


@pytest.fixture(scope="module")
def pong_frames():
    """Real frames of ALE Pong under random actions: (64, 210, 160, 3) uint8."""
    gymnasium = pytest.importorskip("gymnasium")
    ale_py = pytest.importorskip("ale_py")
    gymnasium.register_envs(ale_py)
    env = gymnasium.make("ALE/Pong-v5")
    try:
        obs, _ = env.reset(seed=0)
        rng = np.random.default_rng(0)
        frames = [obs]
        while len(frames) < 64:
            obs, _, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
            frames.append(obs)
            if terminated or truncated:
                obs, _ = env.reset()
    finally:
        env.close()
    frames = np.stack(frames)
    assert frames.shape == (64, 210, 160, 3) and frames.dtype == np.uint8
    return frames


def test_pong_preprocess_real_frames(threads, pong_frames):
    for frame in pong_frames[::16]:
        _check_pong(frame)  # single
    _check_pong(pong_frames)  # batched (parallel path with 2 threads)
    _check_pong(pong_frames[::3])  # a strided batch
    out = K.pong_preprocess(pong_frames)
    # paddles (and mostly the ball) are there, the background is not: a handful of pixels on
    assert np.all(out.sum(axis=1) > 0) and np.all(out.sum(axis=1) < 400)
    assert np.any(out[1:] != out[:-1])  # things move


@pytest.mark.parametrize("x_dtype", ["float", "int8"])
def test_mlp_on_real_difference_frames(threads, dtype, pong_frames, x_dtype):
    """The Pong data path: difference frames are ternary and sparse (sparse route)."""
    pre = R.pong_preprocess(pong_frames).astype(dtype)
    diff = pre[1:] - pre[:-1]
    assert set(np.unique(diff)) <= {-1, 0, 1} and (diff != 0).sum(axis=1).max() <= 6400 // 16
    x = diff.astype(np.int8) if x_dtype == "int8" else diff
    rng = np.random.default_rng(3)
    w1 = normal(rng, (6400, 200), dtype, 1 / 80)
    w2 = normal(rng, 200, dtype, 1 / np.sqrt(200))
    grad_logits = normal(rng, len(x), dtype)
    _check_mlp(x, w1, w2, grad_logits, dtype)
    _check_mlp(x[5], w1, w2, None, dtype)  # one state


# ---- large inputs: the parallel paths (40000+ elements) ----

def test_large_policy_outputs(threads, dtype):
    rng = np.random.default_rng(21)
    logits = normal(rng, (8000, 6), dtype, 3.0)
    _check_softmax(logits, 0.5, dtype)
    _check_softmax(logits.reshape(40, 1200), 2.0, dtype)  # longer rows
    actions = rng.integers(0, 6, size=8000)
    _check_softmax_policy_grad(logits, actions, normal(rng, 8000, dtype), 0.5, dtype)
    _check_softmax_policy_grad(logits, actions, normal(rng, 8000, dtype), 0.5, dtype, entropy=0.3)
    flat = normal(rng, 40000, dtype, 3.0)
    _check_sigmoid_policy_grad(flat, rng.integers(0, 2, size=40000), normal(rng, 40000, dtype), dtype)


@pytest.mark.parametrize("n_actions", [1000, 48000])
def test_softmax_long_rows(threads, dtype, n_actions):
    """A single row of many actions: the row sum must be accurate enough for the contract's
    1e-5 (float32) agreement. (A float32 running sum over 48000 terms is not.)"""
    logits = normal(np.random.default_rng(25), n_actions, dtype, 3.0)
    _check_softmax(logits, 1.0, dtype)
    _check_softmax(np.stack([logits, logits[::-1]]), 1.0, dtype)


def test_large_elementwise(threads, dtype):
    rng = np.random.default_rng(22)
    x = normal(rng, (200, 200), dtype)
    got, want = both("relu", x)
    assert_close(got, want, rtol=0)
    grad_out = normal(rng, (200, 200), dtype)
    got, want = both("relu_backward", grad_out, x)
    assert_close(got, want, rtol=0)
    got, want = both("relu_backward", grad_out.T, x.T)  # transposed: copied, same values
    assert_close(got, want, rtol=0)
    _check_standardize(normal(rng, 40000, dtype, 3.0) + 100, 1e-8, dtype)
    _check_standardize(normal(rng, (200, 200), dtype)[:, ::2], 1e-8, dtype)
    param = normal(rng, 40000, dtype)
    _check_rmsprop(param, normal(rng, 40000, dtype), rng.random(40000).astype(dtype), 1e-3, 0.99, 1e-5, dtype)


def test_large_products(threads, dtype):
    rng = np.random.default_rng(23)
    _check_linear_backward(normal(rng, (500, 80), dtype), normal(rng, (500, 60), dtype),
                           normal(rng, (80, 60), dtype), dtype)
    theta = normal(rng, (8, 2), dtype)
    states = normal(rng, (5000, 8), dtype)
    _check_gaussian(theta, states, normal(rng, (5000, 2), dtype), normal(rng, 5000, dtype), 0.5, dtype)
    _check_gaussian(theta[:, 0], states, normal(rng, 5000, dtype), normal(rng, 5000, dtype), 0.5, dtype)
    rewards = normal(rng, (2000, 20), dtype)
    _check_returns(rewards, 0.99, rng.random((2000, 20)) < 0.01, dtype)
    _check_returns(rewards[:, 3], 0.99, None, dtype)


@pytest.mark.parametrize("kind", X_KINDS)
@pytest.mark.parametrize("n_out", [None, 3], ids=["w2(H,)", "w2(H,A)"])
def test_large_mlp(threads, dtype, kind, n_out):
    n, d, hidden = 192, 1600, 200  # n*d and n*hidden past the kernels' parallel thresholds
    rng = np.random.default_rng(24)
    x = net_input(rng, kind, n, d, dtype)
    w1 = normal(rng, (d, hidden), dtype, 1 / 40)
    w2 = normal(rng, (hidden,) if n_out is None else (hidden, n_out), dtype, 1 / np.sqrt(hidden))
    grad_logits = normal(rng, (n,) if n_out is None else (n, n_out), dtype)
    _check_mlp(x, w1, w2, grad_logits, dtype)


# ---- read-only inputs ----

def _read_only_calls(dtype):
    """Every kernel called with arguments that are all read-only arrays."""
    rng = np.random.default_rng(31)
    f = lambda *shape: normal(rng, shape, dtype)  # noqa: E731
    x = np.zeros((4, 32), np.int8)
    x[:, 3] = 1
    h = np.maximum(f(4, 5), 0)
    return {
        "softmax": (f(4, 3),),
        "softmax_1d": (f(3),),
        "log_softmax": (f(4, 3),),
        "softmax_policy_grad": (f(4, 3), np.array([0, 1, 2, 0]), f(4)),
        "sigmoid_policy_grad": (f(4), np.array([0, 1, 1, 0]), f(4)),
        "clipped_sigmoid_policy_grad": (f(4), f(4), np.array([0, 1, 1, 0]), f(4)),
        "clipped_softmax_policy_grad": (f(4, 3), f(4, 3), np.array([0, 1, 2, 0]), f(4)),
        "relu": (f(4, 3),),
        "relu_backward": (f(4, 3), f(4, 3)),
        "linear_backward": (f(4, 3), f(4, 2), f(3, 2)),
        "mlp_forward": (f(4, 32), f(32, 5), f(5, 2)),
        "mlp_forward_int8": (x, f(32, 5), f(5)),
        "mlp_backward": (f(4, 32), h, f(4, 2), f(5, 2)),
        "discounted_returns": (f(6), 0.9, np.array([0, 1, 0, 0, 1, 0])),
        "standardize": (f(4, 3),),
        "gaussian_policy_grad": (f(3), f(4, 3), f(4), f(4), 0.5),
        "pong_preprocess": (synthetic_frames(rng, 2),),
    }


READ_ONLY_CASES = list(_read_only_calls(np.float64))


@pytest.mark.parametrize("case", READ_ONLY_CASES)
@pytest.mark.parametrize("layout", ["C", "strided"])
def test_read_only_inputs(case, layout):
    """API.md: inputs are read, never written; read-only arrays (np.load(mmap_mode='r'),
    broadcast views, frozen buffers) must be accepted by both backends alike."""
    for dtype in (np.float32, np.float64):
        args = _read_only_calls(dtype)[case]
        frozen = [arrange(a, layout, writeable=False) if isinstance(a, np.ndarray) else a for a in args]
        name = case.replace("_1d", "").replace("_int8", "")
        want = getattr(R, name)(*args)
        got = getattr(K, name)(*frozen)
        want, got = (want, got) if isinstance(want, tuple) else ((want,), (got,))
        for g, w in zip(got, want):
            assert_close(g, w, rtol_of(dtype), atol=rtol_of(dtype) * 100, what=f"{name} ({np.dtype(dtype)})")
        assert all(not a.flags.writeable for a in frozen if isinstance(a, np.ndarray))


@pytest.mark.parametrize("module", [K, R], ids=["kernels", "reference"])
def test_rmsprop_step_read_only_grad_is_fine(module, dtype):
    param, cache = np.ones(5, dtype), np.ones(5, dtype)
    module.rmsprop_step(param, read_only(np.full(5, 2.0, dtype)), cache, 0.1)
    assert np.all(param < 1) and np.all(cache > 1)


def test_pong_difference_matches_twin_over_a_rollout(threads, pong_frames):
    """The trainer's use: each step a distinct subset of envs comes back, some starting an episode."""
    rng = np.random.default_rng(0)
    n_envs = 6
    previous_k = np.zeros((n_envs, 6400), np.uint8)
    previous_r = previous_k.copy()
    for step in range(12):
        batch = int(rng.integers(1, n_envs + 1))
        rows = rng.permutation(n_envs)[:batch]
        fresh = rng.random(batch) < 0.25
        frames = pong_frames[rng.integers(0, len(pong_frames), batch)]
        got = K.pong_difference(frames, previous_k, rows, fresh)
        want = R.pong_difference(frames, previous_r, rows, fresh)
        assert got.dtype == np.int8 and got.shape == (batch, 6400)
        assert np.array_equal(got, want), f"step {step}: differences differ"
        assert np.array_equal(previous_k, previous_r), f"step {step}: previous frames differ"
        assert np.all(got[fresh] == 0)
        assert set(np.unique(got)) <= {-1, 0, 1}
    # rows default to arange(N): previous then holds each frame's preprocessed image
    previous = np.zeros((4, 6400), np.uint8)
    K.pong_difference(pong_frames[:4], previous)
    assert np.array_equal(previous, R.pong_preprocess(pong_frames[:4]).astype(np.uint8))


@pytest.mark.parametrize("backend", [K, R], ids=["kernels", "reference"])
def test_pong_difference_bad_inputs(backend, pong_frames):
    frames = pong_frames[:2]
    good = np.zeros((4, 6400), np.uint8)
    with pytest.raises(TypeError, match="^previous"):
        backend.pong_difference(frames, good.astype(np.float32), [0, 1])
    with pytest.raises(ValueError, match="^previous"):
        backend.pong_difference(frames, good[:, ::2], [0, 1])
    with pytest.raises(ValueError, match="^previous"):
        backend.pong_difference(frames, good[:, :100].copy(), [0, 1])
    with pytest.raises(ValueError, match="^rows"):
        backend.pong_difference(frames, good, [1, 1])
    with pytest.raises(ValueError, match="^rows"):
        backend.pong_difference(frames, good, [0, 4])
    with pytest.raises(ValueError, match="^previous"):
        backend.pong_difference(frames, good)  # no rows: needs one row per frame
    with pytest.raises(TypeError, match="^fresh"):
        backend.pong_difference(frames, good, [0, 1], fresh=[0, 1])
    with pytest.raises(ValueError, match="^frames"):
        backend.pong_difference(frames[0], good[:1])
    read_only_previous = good.copy()
    read_only_previous.flags.writeable = False
    with pytest.raises(ValueError, match="^previous"):
        backend.pong_difference(frames, read_only_previous, [0, 1])
