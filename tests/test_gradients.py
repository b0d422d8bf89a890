"""Every analytic gradient against central finite differences, in float64, for both
pgcore.kernels and pgcore.reference.

The objectives are written here from their definitions (scipy's logsumexp, np.logaddexp,
plain NumPy products), independently of pgcore, so a slip in a kernel or in its twin
(e.g. the `1/tau - p` softmax slip mentioned in DESIGN.md) shows up as a mismatch.
"""
import numpy as np
import pytest
from scipy.special import logsumexp

from helpers import assert_close, central_differences

TAUS = [1e-3, 0.1, 1.0, 10.0]


def assert_matches_fd(analytic, numeric, rtol=1e-6, what="gradient"):
    """Agreement to rtol relative to the largest entry: FD has no precision for entries much
    smaller than the largest one, so the bound is rtol * max|grad| for each entry."""
    scale = max(np.abs(numeric).max(initial=0.0), 1e-300)
    assert_close(np.asarray(analytic, dtype=np.float64), numeric, rtol=rtol, atol=rtol * scale, what=what)
    # the check has teeth: the gradient is not trivially zero
    assert np.abs(numeric).max() > 0


# ---- softmax with temperature ----

def softmax_objective(logits, actions, weights, tau):
    """sum_i weights[i] * log softmax(logits[i] / tau)[actions[i]], of logits' current values."""
    rows = np.arange(len(actions))

    def f():
        z = logits / tau
        return float(np.sum(weights * (z[rows, actions] - logsumexp(z, axis=1))))
    return f


@pytest.mark.parametrize("tau", TAUS)
def test_softmax_policy_grad_matches_finite_differences(backend, tau):
    rng = np.random.default_rng(1)
    n, a = 5, 4
    # logits ~ N(0, (2 tau)^2): logits / tau is O(1), so the FD is well conditioned at every tau
    logits = rng.normal(0.0, 2.0 * tau, size=(n, a))
    actions = rng.integers(0, a, size=n)
    weights = rng.normal(size=n)
    grad = backend.softmax_policy_grad(logits, actions, weights, tau=tau)
    assert grad.shape == (n, a) and grad.dtype == np.float64
    numeric = central_differences(softmax_objective(logits, actions, weights, tau), logits, eps=1e-4 * tau)
    assert_matches_fd(grad, numeric)
    # each row of the gradient sums to zero (onehot - p sums to 0)
    assert_close(grad.sum(axis=1), np.zeros(n), rtol=0, atol=1e-9 * np.abs(grad).max())


def entropy_bonus_objective(logits, actions, weights, tau, entropy):
    """The score objective above plus entropy * sum_i H(softmax(logits[i] / tau))."""
    score = softmax_objective(logits, actions, weights, tau)

    def f():
        log_p = logits / tau - logsumexp(logits / tau, axis=1, keepdims=True)
        return score() - entropy * float(np.sum(np.exp(log_p) * log_p))
    return f


@pytest.mark.parametrize("tau", TAUS)
@pytest.mark.parametrize("entropy", [0.01, 0.3, 5.0, -1.0])
def test_softmax_policy_grad_entropy_bonus_matches_finite_differences(backend, tau, entropy):
    rng = np.random.default_rng(4)
    n, a = 5, 4
    logits = rng.normal(0.0, 2.0 * tau, size=(n, a))
    actions = rng.integers(0, a, size=n)
    weights = rng.normal(size=n)
    grad = backend.softmax_policy_grad(logits, actions, weights, tau=tau, entropy=entropy)
    numeric = central_differences(entropy_bonus_objective(logits, actions, weights, tau, entropy), logits,
                                  eps=1e-4 * tau)
    assert_matches_fd(grad, numeric)
    # the bonus alone (weights 0) is FD-checked too, and is what the argument adds to the score
    zero = np.zeros(n)
    bonus = backend.softmax_policy_grad(logits, actions, zero, tau=tau, entropy=entropy)
    numeric = central_differences(entropy_bonus_objective(logits, actions, zero, tau, entropy), logits, eps=1e-4 * tau)
    assert_matches_fd(bonus, numeric)
    score = backend.softmax_policy_grad(logits, actions, weights, tau=tau)
    assert_close(grad, score + bonus, rtol=1e-12, atol=1e-12 * np.abs(grad).max())


def test_entropy_bonus_raises_entropy(backend):
    """Steps along the bonus's gradient (weights 0) take any policy toward uniform."""
    logits = np.array([[3.0, 0.0, -1.0, 0.5], [0.0, 0.0, 0.0, 2.0]])
    tau = 0.5

    def entropy_of(z):
        p = backend.softmax(z, tau=tau)
        return -(p * np.log(p)).sum(axis=1)
    start = entropy_of(logits)
    for _ in range(2000):
        logits = logits + 0.05 * backend.softmax_policy_grad(logits, [0, 0], np.zeros(2), tau=tau, entropy=1.0)
    assert np.all(entropy_of(logits) > start)
    assert_close(entropy_of(logits), np.full(2, np.log(4)), rtol=1e-3)


def test_softmax_policy_grad_default_tau_is_one(backend):
    rng = np.random.default_rng(2)
    logits, actions, weights = rng.normal(size=(3, 5)), np.array([0, 4, 2]), rng.normal(size=3)
    numeric = central_differences(softmax_objective(logits, actions, weights, 1.0), logits, eps=1e-5)
    assert_matches_fd(backend.softmax_policy_grad(logits, actions, weights), numeric)


def test_softmax_policy_grad_scales_like_inverse_tau(backend):
    """Same logits/tau ratio at every tau: the gradient is (onehot - p) * w / tau, so tau * grad
    is the same at every tau; the FD gradients show it and the analytic ones match them."""
    rng = np.random.default_rng(3)
    ratio = rng.normal(size=(4, 6))
    actions = rng.integers(0, 6, size=4)
    weights = rng.normal(size=4)
    scaled_fd, scaled_analytic = [], []
    for tau in TAUS:
        logits = ratio * tau
        numeric = central_differences(softmax_objective(logits, actions, weights, tau), logits, eps=1e-4 * tau)
        grad = backend.softmax_policy_grad(logits, actions, weights, tau=tau)
        assert_matches_fd(grad, numeric)
        scaled_fd.append(tau * numeric)
        scaled_analytic.append(tau * grad)
    for tau, fd, analytic in zip(TAUS[1:], scaled_fd[1:], scaled_analytic[1:]):
        assert_close(fd, scaled_fd[0], rtol=1e-6, atol=1e-6 * np.abs(scaled_fd[0]).max(),
                     what=f"tau * FD gradient at tau={tau} vs tau={TAUS[0]}")
        assert_close(analytic, scaled_analytic[0], rtol=1e-9, atol=1e-12,
                     what=f"tau * gradient at tau={tau} vs tau={TAUS[0]}")
    # and the unscaled gradient really grows: 1e4 times larger at tau=1e-3 than at tau=10
    big = backend.softmax_policy_grad(ratio * 1e-3, actions, weights, tau=1e-3)
    small = backend.softmax_policy_grad(ratio * 10.0, actions, weights, tau=10.0)
    assert_close(big, 1e4 * small, rtol=1e-9, atol=1e-9 * np.abs(big).max())


def entropy(p):
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log(p), 0.0)
    return terms.sum(axis=-1)


def test_softmax_temperature_limits(backend):
    """Small tau: near one-hot on the largest logit (entropy ~ 0); large tau: near uniform
    (entropy ~ log A); in between the entropy grows with tau."""
    logits = np.array([[2.0, 1.0, 0.5, -1.0], [-3.0, 0.0, 0.25, 0.2]])
    n_actions = logits.shape[1]
    cold = backend.softmax(logits, tau=1e-3)
    assert np.all(np.isfinite(cold))
    assert_close(cold, np.eye(n_actions)[logits.argmax(axis=1)], rtol=0, atol=1e-12)
    assert np.all(entropy(cold) < 1e-12)
    hot = backend.softmax(logits, tau=1e4)
    assert_close(hot, np.full_like(logits, 1 / n_actions), rtol=0, atol=1e-3 / n_actions)
    assert np.all(entropy(hot) > np.log(n_actions) - 1e-6)
    entropies = np.array([entropy(backend.softmax(logits, tau=t)) for t in [1e-3, 0.1, 1.0, 10.0, 1e4]])
    assert np.all(np.diff(entropies, axis=0) > 0), entropies
    # log_softmax agrees with log(softmax) where that is representable (no p underflows to 0)
    for tau in [0.1, 1.0, 10.0]:
        assert_close(backend.log_softmax(logits, tau=tau), np.log(backend.softmax(logits, tau=tau)),
                     rtol=1e-9, atol=1e-12, what=f"log_softmax at tau={tau}")


# ---- Bernoulli (sigmoid) ----

def test_sigmoid_policy_grad_matches_finite_differences(backend):
    rng = np.random.default_rng(4)
    n = 8
    logits = rng.normal(0.0, 2.0, size=n)
    actions = rng.integers(0, 2, size=n)
    actions[:2] = [0, 1]
    weights = rng.normal(size=n)

    def f():
        # log sigmoid(l) = l - log(1 + e^l), log(1 - sigmoid(l)) = -log(1 + e^l)
        return float(np.sum(weights * (actions * logits - np.logaddexp(0.0, logits))))
    grad = backend.sigmoid_policy_grad(logits, actions, weights)
    assert grad.shape == (n,) and grad.dtype == np.float64
    assert_matches_fd(grad, central_differences(f, logits, eps=1e-5))


# ---- linear Gaussian ----

@pytest.mark.parametrize("n_out", [None, 3], ids=["theta(D,)", "theta(D,K)"])
@pytest.mark.parametrize("sigma", [0.7, 2.5])
def test_gaussian_policy_grad_matches_finite_differences(backend, n_out, sigma):
    rng = np.random.default_rng(5)
    n, d = 7, 4
    theta_shape = (d,) if n_out is None else (d, n_out)
    theta = rng.normal(size=theta_shape)
    states = rng.normal(size=(n, d))
    actions = states @ theta + sigma * rng.normal(size=(n,) + theta_shape[1:])
    weights = rng.normal(size=n)
    w = weights if n_out is None else weights[:, None]

    def f():
        # sum_i w_i log N(a_i; s_i . theta, sigma^2), constants dropped
        return float(np.sum(w * -((actions - states @ theta) ** 2) / (2 * sigma**2)))
    grad = backend.gaussian_policy_grad(theta, states, actions, weights, sigma)
    assert grad.shape == theta_shape and grad.dtype == np.float64
    assert_matches_fd(grad, central_differences(f, theta, eps=1e-4))


# ---- network layers ----

def test_relu_backward_matches_finite_differences(backend):
    rng = np.random.default_rng(6)
    # away from the kink at 0
    x = rng.choice([-1.0, 1.0], size=(5, 7)) * rng.uniform(0.1, 2.0, size=(5, 7))
    grad_out = rng.normal(size=(5, 7))
    numeric = central_differences(lambda: float(np.sum(np.maximum(x, 0.0) * grad_out)), x, eps=1e-6)
    assert_matches_fd(backend.relu_backward(grad_out, x), numeric)
    # x may be the post-activation as well
    assert_matches_fd(backend.relu_backward(grad_out, np.maximum(x, 0.0)), numeric)
    assert_close(backend.relu(x), np.maximum(x, 0.0), rtol=0)


def test_linear_backward_matches_finite_differences(backend):
    rng = np.random.default_rng(7)
    n, n_in, n_out = 4, 5, 3
    x, w = rng.normal(size=(n, n_in)), rng.normal(size=(n_in, n_out))
    grad_y = rng.normal(size=(n, n_out))
    grad_w, grad_x = backend.linear_backward(x, grad_y, w)
    assert grad_w.shape == (n_in, n_out) and grad_x.shape == (n, n_in)

    def objective():
        return float(np.sum((x @ w) * grad_y))
    assert_matches_fd(grad_w, central_differences(objective, w, eps=1e-5), what="grad_w")
    assert_matches_fd(grad_x, central_differences(objective, x, eps=1e-5), what="grad_x")


def _net_inputs(x_kind, rng, n, d):
    if x_kind == "float":
        return rng.normal(size=(n, d))
    x = rng.choice(np.array([-1, 0, 1], dtype=np.int8), size=(n, d), p=[0.2, 0.6, 0.2])
    x[:, 0] = 1  # no empty row
    return x


@pytest.mark.parametrize("x_kind", ["float", "int8"])
@pytest.mark.parametrize("n_out", [None, 3], ids=["w2(H,)", "w2(H,A)"])
def test_mlp_backward_matches_finite_differences(backend, n_out, x_kind):
    """Gradient of sum(logits * G) with respect to w1 and w2, logits = relu(x @ w1) @ w2."""
    n, d, hidden = 6, 5, 7
    for seed in range(100):  # the first draw whose pre-activations are all away from the kink
        rng = np.random.default_rng(seed)
        x = _net_inputs(x_kind, rng, n, d)
        w1 = rng.normal(size=(d, hidden)) / np.sqrt(d)
        if np.abs(x.astype(np.float64) @ w1).min() > 1e-3:
            break
    else:
        pytest.fail("no input away from the ReLU kink")
    w2 = rng.normal(size=(hidden,) if n_out is None else (hidden, n_out))
    grad_logits = rng.normal(size=(n,) if n_out is None else (n, n_out))
    xf = x.astype(np.float64)

    h, logits = backend.mlp_forward(x, w1, w2)
    assert_close(h, np.maximum(xf @ w1, 0.0), rtol=1e-12, atol=1e-14, what="h")
    assert_close(logits, np.maximum(xf @ w1, 0.0) @ w2, rtol=1e-12, atol=1e-14, what="logits")
    assert 0 < (h > 0).sum() < h.size  # both sides of the ReLU are exercised

    grad_w1, grad_w2 = backend.mlp_backward(x, h, grad_logits, w2)
    assert grad_w1.shape == w1.shape and grad_w2.shape == w2.shape

    def objective():
        return float(np.sum((np.maximum(xf @ w1, 0.0) @ w2) * grad_logits))
    assert_matches_fd(grad_w1, central_differences(objective, w1, eps=1e-6), what="grad_w1")
    assert_matches_fd(grad_w2, central_differences(objective, w2, eps=1e-6), what="grad_w2")
