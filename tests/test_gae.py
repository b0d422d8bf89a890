"""gae_advantages and squared_error: generalized advantage estimation and the value regression
of a learned baseline (the trainer's use of them: test_value.py).

gae_advantages is checked against its definition written out as a sum (float64), its two limits
(lambda = 1 with V = 0 is discounted_returns exactly; lambda = 0 is the one-step TD error), the
twin (float32/float64, 1 and 2 threads, hypothesis shapes), and bad inputs. squared_error's
gradient against central finite differences of its loss (float64), and against the twin."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import pgcore.kernels as K
import pgcore.reference as R
from helpers import assert_close, central_differences, rtol_of

BACKENDS = pytest.mark.parametrize("module", [K, R], ids=["kernels", "reference"])


def gae_by_definition(rewards, values, dones, gamma, lam, last_value=0.0):
    """A_t = sum_k (gamma lam)^k delta_{t+k} up to the episode's end, delta_t = r_t + gamma V_{t+1} - V_t,
    with V_{t+1} = 0 where step t ends the episode, and last_value after the stream's last step unless
    that step ends an episode: one stream, float64, from scratch."""
    steps = len(rewards)
    ends = [t for t in range(steps) if dones[t]] + [steps - 1]
    advantages = np.zeros(steps)
    for t in range(steps):
        end = min(e for e in ends if e >= t)
        for k in range(t, end + 1):
            next_value = (0.0 if dones[k] or k < steps - 1 else last_value) if k == end else values[k + 1]
            delta = rewards[k] + gamma * next_value - values[k]
            advantages[t] += (gamma * lam) ** (k - t) * delta
    return advantages


@BACKENDS
@pytest.mark.parametrize("gamma, lam", [(0.99, 0.95), (0.9, 0.0), (0.5, 1.0), (1.0, 0.7), (0.0, 0.5)])
def test_gae_is_its_definition(module, gamma, lam):
    rng = np.random.default_rng(1)
    rewards, values = rng.standard_normal(60), rng.standard_normal(60)
    dones = rng.random(60) < 0.1
    got = module.gae_advantages(rewards, values, gamma, lam, dones)
    np.testing.assert_allclose(got, gae_by_definition(rewards, values, dones, gamma, lam), rtol=1e-12, atol=1e-12)


@BACKENDS
@pytest.mark.parametrize("last_done", [False, True])
def test_last_values_bootstrap_a_cut_segment(module, last_done):
    """A segment cut mid-episode: the value after its last step stands in for the future, unless
    that step ends an episode; each column has its own."""
    rng = np.random.default_rng(4)
    rewards, values = rng.standard_normal((50, 3)), rng.standard_normal((50, 3))
    dones = rng.random((50, 3)) < 0.1
    dones[-1] = last_done
    last_values = rng.standard_normal(3)
    got = module.gae_advantages(rewards, values, 0.99, 0.95, dones, last_values=last_values)
    for column in range(3):
        want = gae_by_definition(rewards[:, column], values[:, column], dones[:, column], 0.99, 0.95,
                                 last_values[column])
        np.testing.assert_allclose(got[:, column], want, rtol=1e-12, atol=1e-12)
    # the scalar form for one stream, and the same as appending the bootstrap as a step of its own
    one = module.gae_advantages(rewards[:, 0], values[:, 0], 0.99, 0.95, dones[:, 0], last_values=last_values[0])
    extended = module.gae_advantages(np.append(rewards[:, 0], last_values[0]), np.append(values[:, 0], last_values[0]),
                                     0.99, 0.95, np.append(dones[:, 0], True))[:-1]
    np.testing.assert_allclose(one, extended, rtol=1e-12, atol=1e-12)


@BACKENDS
def test_lambda_1_and_zero_values_are_the_discounted_returns_exactly(module, dtype):
    rng = np.random.default_rng(2)
    rewards = rng.standard_normal((200, 4)).astype(dtype)
    dones = rng.random((200, 4)) < 0.05
    got = module.gae_advantages(rewards, np.zeros_like(rewards), 0.97, 1.0, dones)
    assert np.array_equal(got, module.discounted_returns(rewards, 0.97, dones))
    rewards_1d = rewards[:, 0]
    assert np.array_equal(module.gae_advantages(rewards_1d, np.zeros_like(rewards_1d), 0.97, 1.0),
                          module.discounted_returns(rewards_1d, 0.97))


@BACKENDS
def test_lambda_0_is_the_one_step_td_error(module):
    rng = np.random.default_rng(3)
    rewards, values = rng.standard_normal(30), rng.standard_normal(30)
    want = rewards + 0.9 * np.append(values[1:], 0.0) - values
    np.testing.assert_allclose(module.gae_advantages(rewards, values, 0.9, 0.0), want, rtol=1e-12, atol=1e-15)


@given(seed=st.integers(0, 2**32 - 1), steps=st.integers(0, 40), streams=st.sampled_from([None, 1, 3, 17]),
       gamma=st.sampled_from([0.0, 0.5, 0.99, 1.0]), lam=st.sampled_from([0.0, 0.9, 1.0]),
       with_dones=st.booleans(), bootstrap=st.booleans())
def test_gae_kernel_matches_twin(dtype, threads, seed, steps, streams, gamma, lam, with_dones, bootstrap):
    rng = np.random.default_rng(seed)
    shape = (steps,) if streams is None else (steps, streams)
    rewards = rng.standard_normal(shape).astype(dtype)
    values = rng.standard_normal(shape).astype(dtype)
    dones = rng.random(shape) < 0.1 if with_dones else None
    last_values = rng.standard_normal(shape[1:]) if bootstrap else None
    got = K.gae_advantages(rewards, values, gamma, lam, dones, last_values)
    want = R.gae_advantages(rewards, values, gamma, lam, dones, last_values)
    assert got.dtype == dtype and got.shape == shape
    assert_close(got, want, rtol=rtol_of(dtype), atol=rtol_of(dtype) * 10 * steps, what="gae_advantages")


@BACKENDS
def test_gae_bad_inputs(module):
    rewards, values = np.zeros(5), np.zeros(5)
    with pytest.raises(ValueError, match="values"):
        module.gae_advantages(rewards, np.zeros(4), 0.9, 0.9)
    with pytest.raises(TypeError, match="values"):
        module.gae_advantages(rewards, values.astype(np.float32), 0.9, 0.9)
    with pytest.raises(ValueError, match="lam"):
        module.gae_advantages(rewards, values, 0.9, 1.5)
    with pytest.raises(ValueError, match="gamma"):
        module.gae_advantages(rewards, values, -0.1, 0.9)
    with pytest.raises(ValueError, match="dones"):
        module.gae_advantages(rewards, values, 0.9, 0.9, np.zeros(3, bool))
    with pytest.raises(ValueError, match="last_values"):
        module.gae_advantages(rewards, values, 0.9, 0.9, last_values=np.zeros(2))
    with pytest.raises(TypeError, match="last_values"):
        module.gae_advantages(rewards, values, 0.9, 0.9, last_values="1.0")
    with pytest.raises(TypeError, match="last_values"):
        module.gae_advantages(rewards, values, 0.9, 0.9, last_values=True)


@BACKENDS
@pytest.mark.parametrize("shape", [(37,), (5, 3)])
def test_squared_error_gradient_matches_finite_differences(module, shape):
    rng = np.random.default_rng(4)
    predictions, targets = rng.standard_normal(shape), rng.standard_normal(shape)
    loss, grad = module.squared_error(predictions, targets, 0.7)
    assert loss == pytest.approx(0.35 * np.sum((predictions - targets) ** 2), rel=1e-13)
    assert grad.shape == shape and grad.dtype == np.float64
    numeric = central_differences(lambda: module.squared_error(predictions, targets, 0.7)[0], predictions, eps=1e-6)
    assert_close(grad, numeric, rtol=1e-7, atol=1e-8, what="d loss / d predictions")


@given(seed=st.integers(0, 2**32 - 1), size=st.sampled_from([0, 1, 7, 100, 40_000]),
       scale=st.sampled_from([0.0, 0.5, 1.0, 3.0]), matrix=st.booleans())
def test_squared_error_kernel_matches_twin(dtype, threads, seed, size, scale, matrix):
    rng = np.random.default_rng(seed)
    shape = (size // 4, 4) if matrix else (size,)
    predictions = rng.standard_normal(shape).astype(dtype)
    targets = rng.standard_normal(shape).astype(dtype)
    got_loss, got = K.squared_error(predictions, targets, scale)
    want_loss, want = R.squared_error(predictions, targets, scale)
    assert isinstance(got_loss, float) and got.dtype == dtype and got.shape == shape
    assert got_loss == pytest.approx(want_loss, rel=1e-12, abs=1e-300)
    assert_close(got, want, rtol=rtol_of(dtype), what="squared_error gradient")


@BACKENDS
def test_squared_error_of_equal_arrays_is_zero(module, dtype):
    x = np.linspace(-3, 3, 50).astype(dtype)
    loss, grad = module.squared_error(x, x.copy())
    assert loss == 0.0 and not grad.any()
