"""The score-function estimator, by Monte Carlo: the mean over samples x ~ p of
f(x) * grad log p(x) matches the exact gradient of E[f(x)], with the kernels supplying
grad log p weighted by f (DESIGN.md: "supervised learning with the sampled action as the
label, each example weighted by its advantage").

Fixed seeds; the tolerance is Z standard errors of the mean, computed from the samples
themselves; each test also checks the estimate is precise enough to tell the right
gradient from a plausible wrong one (so the tolerance is not vacuous).
"""
import numpy as np
import pytest
from scipy.special import softmax as exact_softmax

Z = 5.0  # standard errors
SAMPLES = 200_000


def assert_within_standard_errors(estimate, exact, standard_error, wrong=None):
    estimate, exact, se = (np.asarray(a, np.float64) for a in (estimate, exact, standard_error))
    assert np.all(se > 0)
    z = np.abs(estimate - exact) / se
    assert np.all(z < Z), f"estimate {estimate} vs exact {exact}: {z} standard errors apart"
    if wrong is not None:  # the test has the power to reject a wrong gradient
        z_wrong = np.abs(np.asarray(wrong) - exact) / se
        assert np.max(z_wrong) > 4 * Z, f"a wrong gradient {wrong} would pass too ({z_wrong} s.e.)"


@pytest.mark.parametrize("tau", [0.5, 1.0, 2.0])
def test_categorical_softmax_with_temperature(backend, tau):
    rng = np.random.default_rng(100 + int(10 * tau))
    logits = np.array([0.3, -0.8, 1.1, 0.0]) * tau
    f = np.array([1.0, -2.0, 3.0, 0.5])
    p = exact_softmax(logits / tau)
    # E[f] = sum_a p_a f_a; d/dlogit_b = p_b (f_b - E[f]) / tau
    exact = p * (f - p @ f) / tau

    actions = rng.choice(len(p), size=SAMPLES, p=p)
    per_sample = backend.softmax_policy_grad(np.tile(logits, (SAMPLES, 1)), actions, f[actions], tau=tau)
    assert per_sample.shape == (SAMPLES, len(p))
    estimate = per_sample.mean(axis=0)
    se = per_sample.std(axis=0, ddof=1) / np.sqrt(SAMPLES)
    # a wrong gradient, the slip of DESIGN.md: 1/tau - p for b != a (times f)
    slip = (np.tile(f[actions, None], (1, len(p))) * (1 / tau - p[None, :]))
    slip[np.arange(SAMPLES), actions] = f[actions] * (1 - p[actions]) / tau
    assert_within_standard_errors(estimate, exact, se, wrong=slip.mean(axis=0))


def test_categorical_with_a_baseline_is_unbiased_and_tighter(backend):
    """Subtracting a constant baseline from f keeps the expectation (E[grad log p] = 0) and
    lowers the variance."""
    rng = np.random.default_rng(7)
    tau, logits, f = 1.0, np.array([0.5, 0.1, -0.4]), np.array([10.0, 11.0, 12.5])
    p = exact_softmax(logits / tau)
    exact = p * (f - p @ f) / tau
    actions = rng.choice(3, size=SAMPLES, p=p)
    rows = np.tile(logits, (SAMPLES, 1))
    plain = backend.softmax_policy_grad(rows, actions, f[actions], tau=tau)
    baseline = backend.softmax_policy_grad(rows, actions, f[actions] - p @ f, tau=tau)
    se_plain = plain.std(axis=0, ddof=1) / np.sqrt(SAMPLES)
    se_baseline = baseline.std(axis=0, ddof=1) / np.sqrt(SAMPLES)
    assert_within_standard_errors(plain.mean(axis=0), exact, se_plain)
    assert_within_standard_errors(baseline.mean(axis=0), exact, se_baseline, wrong=np.zeros(3))
    assert np.all(se_baseline < se_plain / 5)


def test_gaussian_mean(backend):
    """x ~ N(mu, sigma^2) as a linear Gaussian policy with states = 1 (theta = [mu]);
    f(x) = x^3 - 2x, so E[f] = mu^3 + 3 mu sigma^2 - 2 mu and dE/dmu = 3 mu^2 + 3 sigma^2 - 2."""
    rng = np.random.default_rng(11)
    mu, sigma = 0.7, 1.3
    exact = 3 * mu**2 + 3 * sigma**2 - 2
    x = mu + sigma * rng.normal(size=SAMPLES)
    f = x**3 - 2 * x
    total = backend.gaussian_policy_grad(np.array([mu]), np.ones((SAMPLES, 1)), x, f, sigma)
    assert total.shape == (1,)
    estimate = total / SAMPLES  # the kernel sums over samples
    per_sample = f * (x - mu) / sigma**2
    np.testing.assert_allclose(estimate, per_sample.mean(), rtol=1e-9)
    se = per_sample.std(ddof=1) / np.sqrt(SAMPLES)
    # a wrong gradient: the score without the 1 / sigma^2
    assert_within_standard_errors(estimate, [exact], [se], wrong=[exact * sigma**2])


def test_gaussian_mean_vector(backend):
    """theta (D, K): K = 2 independent means, x_k ~ N(mu_k, sigma^2), f(x) = x0 x1 + x1^2:
    E[f] = mu0 mu1 + mu1^2 + sigma^2, gradient (mu1, mu0 + 2 mu1)."""
    rng = np.random.default_rng(12)
    mu, sigma = np.array([-0.4, 0.9]), 0.8
    exact = np.array([mu[1], mu[0] + 2 * mu[1]])
    x = mu + sigma * rng.normal(size=(SAMPLES, 2))
    f = x[:, 0] * x[:, 1] + x[:, 1] ** 2
    f = f - (mu[0] * mu[1] + mu[1] ** 2 + sigma**2)  # the exact E[f] as a baseline: same mean, less noise
    total = backend.gaussian_policy_grad(mu[None, :], np.ones((SAMPLES, 1)), x, f, sigma)
    assert total.shape == (1, 2)
    estimate = total[0] / SAMPLES
    per_sample = f[:, None] * (x - mu) / sigma**2
    np.testing.assert_allclose(estimate, per_sample.mean(axis=0), rtol=1e-9)
    se = per_sample.std(axis=0, ddof=1) / np.sqrt(SAMPLES)
    assert_within_standard_errors(estimate, exact, se, wrong=exact[::-1])


def test_bernoulli_sigmoid(backend):
    """x ~ Bernoulli(sigmoid(l)), f(1) = 3, f(0) = -1: E[f] = 4 s - 1, dE/dl = 4 s (1 - s)."""
    rng = np.random.default_rng(13)
    logit = 0.4
    s = 1 / (1 + np.exp(-logit))
    exact = 4 * s * (1 - s)
    x = (rng.random(SAMPLES) < s).astype(np.int64)
    f = np.where(x == 1, 3.0, -1.0)
    per_sample = backend.sigmoid_policy_grad(np.full(SAMPLES, logit), x, f)
    se = per_sample.std(ddof=1) / np.sqrt(SAMPLES)
    assert_within_standard_errors([per_sample.mean()], [exact], [se], wrong=[2 * exact])
