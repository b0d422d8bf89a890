"""Edge cases of the kernels, on both backends: extreme logits at small temperature,
constant inputs to standardize, gamma 0 and 1, empty and 0-d inputs."""
import numpy as np
import pytest

import pgcore.kernels as K
import pgcore.reference as R
from helpers import BACKENDS, assert_close, rtol_of

# ---- extreme logits, small temperature ----


def test_extreme_logits_at_small_tau(backend, dtype):
    tau = 1e-3
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]], dtype)
    rtol = rtol_of(dtype)

    p = backend.softmax(logits, tau=tau)
    assert p.dtype == dtype and np.all(np.isfinite(p))
    assert_close(p, np.array([[1, 0, 0], [0, 0.5, 0.5]], dtype), rtol, atol=0, what="softmax")
    assert_close(backend.softmax(logits[0], tau=tau), p[0], rtol, what="softmax (A,)")

    logp = backend.log_softmax(logits, tau=tau)
    assert np.all(np.isfinite(logp))
    expected = np.array([[0, -2e7, -1e7], [-2e7 - np.log(2), -np.log(2), -np.log(2)]])
    assert_close(logp, expected.astype(dtype), rtol, atol=rtol, what="log_softmax")

    grad = backend.softmax_policy_grad(logits, np.array([1, 0]), np.array([1.0, -2.0], dtype), tau=tau)
    assert np.all(np.isfinite(grad))
    expected = np.array([[-1, 1, 0], [-2, 1, 1]]) * 1e3  # w * (onehot - p) / tau
    assert_close(grad, expected.astype(dtype), rtol, atol=rtol * 1e3, what="softmax_policy_grad")
    # p underflows to 0 in both rows: the entropy bonus adds nothing there (p log p -> 0), never NaN;
    # row 1's two equal p = 1/2 are a maximum of the entropy, so its bonus gradient is 0 too
    bonus = backend.softmax_policy_grad(logits, np.array([1, 0]), np.array([1.0, -2.0], dtype), tau=tau,
                                        entropy=3.0)
    assert np.all(np.isfinite(bonus))
    assert_close(bonus, grad, rtol, atol=rtol * 1e3, what="softmax_policy_grad with entropy")

    sig = backend.sigmoid_policy_grad(np.array([1e4, -1e4, 1e4, -1e4], dtype), np.array([0, 1, 1, 0]),
                                      np.array([1, 1, 1, 3], dtype))
    assert np.all(np.isfinite(sig))
    assert_close(sig, np.array([-1, 1, 0, 0], dtype), rtol, atol=0, what="sigmoid_policy_grad")


def test_softmax_finite_for_huge_finite_logits(backend):
    """API.md: softmax is "finite for any finite logits and tau down to 1e-3". logits / tau
    overflows to inf for logits near the dtype's range; the result must still be the one-hot."""
    for dtype in (np.float32, np.float64):
        for tau in (1.0, 1e-3):
            big = np.finfo(dtype).max / 2 if tau == 1.0 else (1e36 if dtype == np.float32 else 1e306)
            _check_huge_logits(backend, dtype, tau, big)


def _check_huge_logits(backend, dtype, tau, big):
    logits = np.array([[big, 0.0, -big], [0.0, -big, big]], dtype)
    p = backend.softmax(logits, tau=tau)
    assert np.all(np.isfinite(p)), p
    assert_close(p, np.array([[1, 0, 0], [0, 0, 1]], dtype), rtol=0, atol=0)
    grad = backend.softmax_policy_grad(logits, np.array([0, 0]), np.ones(2, dtype), tau=tau)
    assert np.all(np.isfinite(grad)), grad
    assert_close(grad, (np.array([[0, 0, 0], [1, 0, -1]]) / tau).astype(dtype), rtol_of(dtype))


# ---- standardize ----

@pytest.mark.parametrize("value", [0.0, 0.1, -3.0, 1e10, -1e10, 1e30])
@pytest.mark.parametrize("shape", [(1,), (2,), (7,), (3, 5), (40000,)])
def test_standardize_all_equal_gives_zeros(backend, threads, dtype, value, shape):
    x = np.full(shape, value, dtype)
    out = backend.standardize(x)
    assert out.dtype == dtype and out.shape == shape
    assert np.array_equal(out, np.zeros(shape, dtype)), out


def test_standardize_all_equal_gives_zeros_for_any_allowed_eps(backend):
    """API.md: "all-equal input gives zeros, never NaN"; eps = 0 is accepted by the argument
    checks (eps >= 0), so it must keep that promise as well."""
    for dtype in (np.float32, np.float64):
        for value in (0.1, 1e10):
            out = backend.standardize(np.full(5, value, dtype), eps=0.0)
            assert not np.any(np.isnan(out)), f"{np.dtype(dtype)} {value}: {out}"
            assert np.array_equal(out, np.zeros(5, dtype))


def test_standardize_result(backend, dtype):
    x = np.array([1.0, 2.0, 3.0, 4.0], dtype)
    std = np.sqrt(1.25)
    expected = (np.array([-1.5, -0.5, 0.5, 1.5]) / (std + 1e-8)).astype(dtype)
    assert_close(backend.standardize(x), expected, rtol_of(dtype))
    out = backend.standardize(np.array([1e10, 1e10 + 2 ** 11], np.float64), eps=0.0)  # small spread, big offset
    assert_close(out, np.array([-1.0, 1.0]), 1e-12)


# ---- discounted returns ----

def test_discounted_returns_by_hand(backend, dtype):
    rewards = np.array([1, 2, 3, 4], dtype)
    got = backend.discounted_returns(rewards, 0.5)
    assert_close(got, np.array([1 + 0.5 * 2 + 0.25 * 3 + 0.125 * 4, 2 + 0.5 * 3 + 0.25 * 4, 3 + 0.5 * 4, 4], dtype),
                 rtol_of(dtype))
    got = backend.discounted_returns(rewards, 0.5, dones=np.array([0, 1, 0, 0]))
    # the future after t=1 is cut: G1 = 2, G0 = 1 + 0.5 * 2
    assert_close(got, np.array([2, 2, 5, 4], dtype), rtol_of(dtype))
    # the done of the last step changes nothing (its future is empty anyway)
    assert_close(backend.discounted_returns(rewards, 0.5, dones=np.array([0, 0, 0, 1])),
                 backend.discounted_returns(rewards, 0.5), rtol=0)


def _random_rewards_and_dones(shape, seed=0):
    rng = np.random.default_rng(seed)
    rewards = rng.integers(-3, 4, size=shape).astype(np.float64)  # integers: every sum is exact
    dones = rng.random(shape) < 0.25
    return rewards, dones


@pytest.mark.parametrize("shape", [(1,), (30,), (30, 4)])
@pytest.mark.parametrize("with_dones", [False, True])
def test_gamma_zero_gives_the_rewards(backend, dtype, shape, with_dones):
    rewards, dones = _random_rewards_and_dones(shape)
    rewards = (rewards * 1.37).astype(dtype)
    got = backend.discounted_returns(rewards, 0.0, dones if with_dones else None)
    assert got.dtype == dtype
    assert np.array_equal(got, rewards)


@pytest.mark.parametrize("shape", [(1,), (30,), (30, 4)])
@pytest.mark.parametrize("with_dones", [False, True])
def test_gamma_one_is_a_reverse_cumsum_cut_at_dones(backend, dtype, shape, with_dones):
    rewards, dones = _random_rewards_and_dones(shape, seed=1)
    if not with_dones:
        dones[...] = False
    expected = np.zeros_like(rewards)
    streams = expected.reshape(len(rewards), -1)
    r, d = rewards.reshape(streams.shape), dones.reshape(streams.shape)
    for j in range(streams.shape[1]):  # segment by segment: a done ends a segment
        start = 0
        for t in range(len(rewards)):
            if d[t, j] or t == len(rewards) - 1:
                segment = r[start:t + 1, j]
                streams[start:t + 1, j] = np.cumsum(segment[::-1])[::-1]
                start = t + 1
    if not with_dones:
        assert np.array_equal(expected, np.flip(np.cumsum(np.flip(rewards, 0), 0), 0))
    got = backend.discounted_returns(rewards.astype(dtype), 1.0, dones if with_dones else None)
    assert np.array_equal(got, expected.astype(dtype))


def test_done_cuts_a_non_finite_future(backend):
    """The future after a done is cut to 0 (API.md), whatever it holds."""
    rewards = np.array([1.0, np.inf, 2.0])
    got = backend.discounted_returns(rewards, 0.9, dones=np.array([1, 0, 0]))
    assert got[0] == 1.0, got
    assert np.isinf(got[1]) and got[2] == 2.0


# ---- empty inputs ----

def _empty_cases():
    f = np.ones
    frames = np.zeros((0, 210, 160, 3), np.uint8)
    return {
        # name: (function, args, expected outputs: arrays, or the shapes of all-zero results)
        "softmax(0,3)": ("softmax", (f((0, 3)),), [(0, 3)]),
        "log_softmax(0,3)": ("log_softmax", (f((0, 3)),), [(0, 3)]),
        "softmax_policy_grad(N=0)": ("softmax_policy_grad", (f((0, 3)), np.zeros(0, int), f(0)), [(0, 3)]),
        "sigmoid_policy_grad(N=0)": ("sigmoid_policy_grad", (f(0), np.zeros(0, int), f(0)), [(0,)]),
        "clipped_sigmoid_policy_grad(N=0)": ("clipped_sigmoid_policy_grad", (f(0), f(0), np.zeros(0, int), f(0)),
                                             [(0,)]),
        "clipped_softmax_policy_grad(N=0)": ("clipped_softmax_policy_grad",
                                             (f((0, 3)), f((0, 3)), np.zeros(0, int), f(0)), [(0, 3)]),
        "relu(0,)": ("relu", (f(0),), [(0,)]),
        "relu(5,0)": ("relu", (f((5, 0)),), [(5, 0)]),
        "relu_backward(0,4)": ("relu_backward", (f((0, 4)), f((0, 4))), [(0, 4)]),
        "linear_backward(N=0)": ("linear_backward", (f((0, 3)), f((0, 2)), f((3, 2))), [(3, 2), (0, 3)]),
        "linear_backward(I=0)": ("linear_backward", (f((4, 0)), f((4, 2)), f((0, 2))), [(0, 2), (4, 0)]),
        "linear_backward(O=0)": ("linear_backward", (f((4, 3)), f((4, 0)), f((3, 0))), [(3, 0), (4, 3)]),
        "mlp_forward(N=0)": ("mlp_forward", (f((0, 3)), f((3, 4)), f((4, 2))), [(0, 4), (0, 2)]),
        "mlp_forward(N=0,w2(H,))": ("mlp_forward", (f((0, 3)), f((3, 4)), f(4)), [(0, 4), (0,)]),
        "mlp_forward(D=0)": ("mlp_forward", (f((2, 0)), f((0, 4)), f((4, 2))), [(2, 4), (2, 2)]),
        "mlp_forward(D=0,int8)": ("mlp_forward", (np.zeros((2, 0), np.int8), f((0, 4)), f(4)), [(2, 4), (2,)]),
        "mlp_forward(H=0)": ("mlp_forward", (f((2, 3)), f((3, 0)), f((0, 2))), [(2, 0), (2, 2)]),
        "mlp_forward(H=0,w2(H,))": ("mlp_forward", (f((2, 3)), f((3, 0)), f(0)), [(2, 0), (2,)]),
        "mlp_forward(A=0)": ("mlp_forward", (f((2, 3)), f((3, 4)), f((4, 0))), [np.full((2, 4), 3.0), (2, 0)]),
        "mlp_backward(N=0)": ("mlp_backward", (f((0, 3)), f((0, 4)), f((0, 2)), f((4, 2))), [(3, 4), (4, 2)]),
        "mlp_backward(N=0,w2(H,))": ("mlp_backward", (f((0, 3)), f((0, 4)), f(0), f(4)), [(3, 4), (4,)]),
        "mlp_backward(N=0,int8)": ("mlp_backward", (np.zeros((0, 32), np.int8), f((0, 4)), f(0), f(4)),
                                   [(32, 4), (4,)]),
        "mlp_backward(D=0)": ("mlp_backward", (f((2, 0)), f((2, 4)), f((2, 2)), f((4, 2))),
                              [(0, 4), np.full((4, 2), 2.0)]),
        "mlp_backward(H=0)": ("mlp_backward", (f((2, 3)), f((2, 0)), f((2, 2)), f((0, 2))), [(3, 0), (0, 2)]),
        "mlp_backward(A=0)": ("mlp_backward", (f((2, 3)), f((2, 4)), f((2, 0)), f((4, 0))), [(3, 4), (4, 0)]),
        "discounted_returns(T=0)": ("discounted_returns", (f(0), 0.9), [(0,)]),
        "discounted_returns(T=0,N=3)": ("discounted_returns", (f((0, 3)), 0.9), [(0, 3)]),
        "discounted_returns(T=0,dones)": ("discounted_returns", (f(0), 0.9, np.zeros(0, bool)), [(0,)]),
        "discounted_returns(T=3,N=0)": ("discounted_returns", (f((3, 0)), 0.9, np.zeros((3, 0))), [(3, 0)]),
        "standardize(0,)": ("standardize", (f(0),), [(0,)]),
        "standardize(0,3)": ("standardize", (f((0, 3)),), [(0, 3)]),
        "gaussian_policy_grad(N=0)": ("gaussian_policy_grad", (f(4), f((0, 4)), f(0), f(0), 1.0), [(4,)]),
        "gaussian_policy_grad(N=0,K=2)": ("gaussian_policy_grad", (f((4, 2)), f((0, 4)), f((0, 2)), f(0), 1.0),
                                          [(4, 2)]),
        "gaussian_policy_grad(D=0)": ("gaussian_policy_grad", (f(0), f((3, 0)), f(3), f(3), 1.0), [(0,)]),
        "gaussian_policy_grad(D=0,K=2)": ("gaussian_policy_grad", (f((0, 2)), f((3, 0)), f((3, 2)), f(3), 1.0),
                                          [(0, 2)]),
        "gaussian_policy_grad(K=0)": ("gaussian_policy_grad", (f((4, 0)), f((3, 4)), f((3, 0)), f(3), 1.0),
                                      [(4, 0)]),
        "pong_preprocess(N=0)": ("pong_preprocess", (frames,), [(0, 6400)]),
    }


EMPTY_CASES = _empty_cases()


@pytest.mark.parametrize("case", list(EMPTY_CASES))
def test_empty_inputs(backend, case):
    """Sizes 0 that the argument checks accept: a result of the right shape and dtype, zeros
    where the result is a sum over an empty dimension (never an exception)."""
    for dtype in (np.dtype(np.float32), np.dtype(np.float64)):
        _check_empty(backend, np.dtype(dtype), *EMPTY_CASES[case])


def _check_empty(backend, dtype, name, args, shapes):
    args = tuple(a.astype(dtype) if isinstance(a, np.ndarray) and a.dtype == np.float64 else a for a in args)
    out = getattr(backend, name)(*args)
    outs = out if isinstance(out, tuple) else (out,)
    assert len(outs) == len(shapes)
    want_dtype = np.float32 if name == "pong_preprocess" else dtype
    for result, expected in zip(outs, shapes):
        expected = np.zeros(expected) if isinstance(expected, tuple) else expected
        assert result.shape == expected.shape and result.dtype == want_dtype
        assert np.array_equal(result, expected.astype(want_dtype))


def test_empty_rmsprop_step(backend, dtype):
    param, cache = np.ones(0, dtype), np.ones((0, 3), dtype)[:, 0]
    assert backend.rmsprop_step(param, np.ones(0, dtype), cache, 0.1) is None
    assert param.shape == (0,)


def test_softmax_policy_grad_without_actions_consistent():
    """N = 0 rows of A = 0 actions: the backends must agree (both raise a ValueError naming
    logits, as softmax does for A = 0, or both return an empty (0, 0) gradient)."""
    outcomes = []
    for module in BACKENDS:
        try:
            outcomes.append(("returned", module.softmax_policy_grad(np.ones((0, 0)), np.zeros(0, int),
                                                                    np.ones(0)).shape))
        except ValueError as error:
            assert "logits" in str(error)
            outcomes.append(("raised ValueError", None))
    assert outcomes[0] == outcomes[1], f"kernels: {outcomes[0]}, reference: {outcomes[1]}"


# ---- 0-d inputs of the any-shape kernels ----

def test_zero_dim_inputs_keep_their_shape(backend):
    """relu, relu_backward and standardize take any shape, 0-d included: the result has the
    input's shape; rmsprop_step updates a 0-d param in place."""
    for dtype in (np.float32, np.float64):
        _check_zero_dim(backend, dtype)


def _check_zero_dim(backend, dtype):
    x = np.array(-2.0, dtype)
    assert backend.relu(x).shape == ()
    assert backend.relu(np.array(3.0, dtype)) == 3.0
    assert backend.relu_backward(np.array(5.0, dtype), np.array(1.0, dtype)).shape == ()
    out = backend.standardize(np.array(7.0, dtype))
    assert out.shape == () and out == 0
    param, cache = np.array(1.0, dtype), np.array(0.0, dtype)
    backend.rmsprop_step(param, np.array(2.0, dtype), cache, 0.1, decay=0.0, eps=0.0)
    assert cache == 4.0 and param == np.asarray(0.9, dtype)


# ---- the sparse route keeps the dense meaning ----

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sparse_route_reads_only_selected_weight_rows(dtype):
    """Documented meaning of the sparse route (API.md): x @ w1 is the sum of the rows of w1
    that x's nonzeros select. A NaN in a selected row propagates; rows that x does not
    select are never read, so a NaN there does not turn 0 * NaN into NaN as BLAS would."""
    x = np.zeros((2, 64), dtype)
    x[0, 3], x[1, 5] = 1, -1  # sparse rows: the compiled kernels' sparse route
    w1 = np.ones((64, 4), dtype)
    w1[7, 0] = np.nan  # a row no input selects
    w2 = np.ones(4, dtype)
    h, logits = K.mlp_forward(x, w1, w2)
    unselected_zeroed = w1.copy()
    unselected_zeroed[7] = 0
    rh, rlogits = R.mlp_forward(x, unselected_zeroed, w2)
    assert_close(h, rh, rtol_of(dtype), what="h")
    assert_close(logits, rlogits, rtol_of(dtype), what="logits")
    w1[3, 1] = np.nan  # a row the first input selects
    h, _ = K.mlp_forward(x, w1, w2)
    assert np.isnan(h[0, 1]) and not np.isnan(h[1]).any()
