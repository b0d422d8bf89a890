"""rmsprop_rows_step and rmsprop_rows_flush: RMSProp on the rows a minibatch's gradient touched,
the other rows' cache decayed lazily (the Pong trainer's first layer).

The kernel against its twin (float32/float64, 1 and 2 threads, hypothesis shapes and row
subsets); the defining property, that lazy steps on random row subsets then a flush are the dense
rmsprop_step sequence up to float rounding, the gradient consumed; failed calls that leave every
array alone; and rows that overlap an array the step writes, which must move no write."""

import numpy as np
import pytest
from hypothesis import given, strategies as st

import pgcore.kernels as K
import pgcore.reference as R
from helpers import assert_script_prints_ok, assert_close, rtol_of

BACKENDS = pytest.mark.parametrize("module", [K, R], ids=["kernels", "reference"])


def sparse_state(rng, shape, dtype, rows):
    """param, cache (>= 0) and a gradient nonzero only on `rows`, of `shape` and `dtype`."""
    param = rng.standard_normal(shape).astype(dtype)
    cache = np.abs(rng.standard_normal(shape)).astype(dtype)
    grad = np.zeros(shape, dtype)
    grad[rows] = rng.standard_normal((len(rows),) + shape[1:])
    return param, grad, cache


@given(seed=st.integers(0, 2**32 - 1), n_rows=st.sampled_from([0, 1, 5, 300]), width=st.sampled_from([0, 1, 7, 200]),
       fraction=st.sampled_from([0.0, 0.1, 0.5, 1.0]), max_age=st.sampled_from([0, 1, 30, 10_000]),
       decay=st.sampled_from([0.0, 0.5, 0.99, 1.0]), eps=st.sampled_from([0.0, 1e-5]),
       row_dtype=st.sampled_from([np.int64, np.int32, np.uint16]))
def test_kernel_matches_twin(dtype, threads, seed, n_rows, width, fraction, max_age, decay, eps, row_dtype):
    rng = np.random.default_rng(seed)
    rows = rng.permutation(n_rows)[:int(round(fraction * n_rows))].astype(row_dtype)  # any order
    param, grad, cache = sparse_state(rng, (n_rows, width), dtype, rows)
    ages = rng.integers(0, max_age + 1, n_rows)
    results = []
    for module in (K, R):
        state = [param.copy(), grad.copy(), cache.copy(), ages.copy()]
        assert module.rmsprop_rows_step(state[0], state[1], state[2], rows, state[3], 1e-2, decay, eps) is None
        results.append(state)
    (kp, kg, kc, ka), (rp, rg, rc, ra) = results
    assert_close(kp, rp, rtol=rtol_of(dtype), atol=rtol_of(dtype), what="param")
    assert_close(kc, rc, rtol=rtol_of(dtype), atol=1e-30, what="cache")
    assert not kg.any() and not rg.any(), "the step consumes the gradient"
    assert np.array_equal(ka, ra) and ka.dtype == np.int64
    want_ages = ages + 1
    want_ages[rows.astype(np.intp)] = 0
    assert np.array_equal(ka, want_ages)
    untouched = np.setdiff1d(np.arange(n_rows), rows)
    assert np.array_equal(kp[untouched], param[untouched]) and np.array_equal(kc[untouched], cache[untouched])


@BACKENDS
@pytest.mark.parametrize("decay", [0.0, 0.5, 0.9, 0.99, 1.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lazy_steps_then_flush_are_the_dense_steps(module, dtype, threads, decay, seed):
    """k lazy steps on random row subsets (the gradient nonzero only there), then a flush, leave
    param and cache as k dense rmsprop_step calls on the whole arrays do; each lazy step hands the
    gradient back zeroed, and param needs no flush (a row a step does not touch does not move)."""
    rng = np.random.default_rng(seed)
    shape, steps = (40, 6), 12
    param = rng.standard_normal(shape).astype(dtype)
    cache = np.abs(rng.standard_normal(shape)).astype(dtype)
    dense_param, dense_cache = param.copy(), cache.copy()
    lazy_param, lazy_cache, ages = param.copy(), cache.copy(), np.zeros(shape[0], np.int64)
    lazy_grad = np.zeros(shape, dtype)
    for step in range(steps):
        size = [0, shape[0], int(rng.integers(1, shape[0]))][min(step % 4, 2)]  # none, all, or some rows
        rows = rng.choice(shape[0], size, replace=False)
        grad = np.zeros(shape, dtype)
        grad[rows] = rng.standard_normal((size, shape[1]))
        module.rmsprop_step(dense_param, grad, dense_cache, 1e-2, decay, 1e-5)
        lazy_grad += grad  # as sparse_mlp_backward adds into the batch gradient
        module.rmsprop_rows_step(lazy_param, lazy_grad, lazy_cache, rows, ages, 1e-2, decay, 1e-5)
        assert not lazy_grad.any(), "the lazy step zeroes the gradient it consumed"
        assert_close(lazy_param, dense_param, rtol=rtol_of(dtype) * 10, atol=rtol_of(dtype) * 1e-2, what="param")
    module.rmsprop_rows_flush(lazy_cache, ages, decay)
    assert not ages.any()
    assert_close(lazy_cache, dense_cache, rtol=rtol_of(dtype) * 10, atol=1e-30, what="cache after the flush")
    assert_close(lazy_param, dense_param, rtol=rtol_of(dtype) * 10, atol=rtol_of(dtype) * 1e-2, what="param")


@BACKENDS
def test_every_row_at_age_zero_is_rmsprop_step(module, dtype):
    rng = np.random.default_rng(5)
    param, grad, cache = sparse_state(rng, (30, 9), dtype, np.arange(30))
    dense = [param.copy(), grad.copy(), cache.copy()]
    module.rmsprop_step(dense[0], dense[1], dense[2], 3e-3, 0.95, 1e-6)
    rows = rng.permutation(30)
    ages = np.zeros(30, np.int64)
    module.rmsprop_rows_step(param, grad, cache, rows, ages, 3e-3, 0.95, 1e-6)
    assert_close(param, dense[0], rtol=rtol_of(dtype), what="param")
    assert_close(cache, dense[2], rtol=rtol_of(dtype), what="cache")
    assert not grad.any() and not ages.any()


@BACKENDS
def test_flush_decays_each_row_by_its_age(module, dtype):
    cache = np.full((4, 3), 2.0, dtype)
    ages = np.array([0, 1, 3, 10_000_000], np.int64)
    module.rmsprop_rows_flush(cache, ages, 0.5)
    assert np.array_equal(cache, np.array([[2.0] * 3, [1.0] * 3, [0.25] * 3, [0.0] * 3], dtype))
    assert not ages.any() and ages.dtype == np.int64


def test_the_flush_is_one_function_for_both_modules():
    assert K.rmsprop_rows_flush is R.rmsprop_rows_flush


@BACKENDS
@pytest.mark.parametrize("bad", [dict(rows=[0, 3, 3]), dict(rows=[0, 6]), dict(rows=[-1]), dict(rows=[0.0]),
                                 dict(ages=np.zeros(5, np.int64)), dict(ages=np.zeros(6, np.int32)),
                                 dict(ages=np.array([0, 0, 0, 0, 0, -1])), dict(decay=1.5), dict(lr=float("nan")),
                                 dict(grad=np.ones((6, 3), np.float32)), dict(cache=np.ones((6, 2)))])
def test_a_failed_step_leaves_every_array_alone(module, bad):
    param, grad, cache = np.arange(18.0).reshape(6, 3), np.ones((6, 3)), np.full((6, 3), 2.0)
    ages = np.array([4, 0, 1, 2, 3, 5], np.int64)
    kwargs = dict(param=param, grad=grad, cache=cache, rows=[0, 3], ages=ages, lr=0.1) | bad
    with pytest.raises((ValueError, TypeError)):
        module.rmsprop_rows_step(**kwargs)
    assert np.array_equal(param, np.arange(18.0).reshape(6, 3)) and np.array_equal(grad, np.ones((6, 3)))
    assert np.array_equal(cache, np.full((6, 3), 2.0)) and np.array_equal(ages, [4, 0, 1, 2, 3, 5])


@BACKENDS
def test_bad_rows_name_the_argument(module):
    param, grad, cache, ages = np.ones((6, 3)), np.zeros((6, 3)), np.ones((6, 3)), np.zeros(6, np.int64)
    with pytest.raises(ValueError, match=r"^rows must not repeat \(found 3 2 times\)"):
        module.rmsprop_rows_step(param, grad, cache, [3, 0, 3], ages, 0.1)
    with pytest.raises(ValueError, match=r"^rows must be below 6 \(found 6\)"):
        module.rmsprop_rows_step(param, grad, cache, np.array([6], np.uint8), ages, 0.1)
    with pytest.raises(ValueError, match=r"^rows must be below 6"):
        module.rmsprop_rows_step(param, grad, cache, np.array([2**64 - 1], np.uint64), ages, 0.1)
    with pytest.raises(TypeError, match=r"^rows must have an integer dtype"):
        module.rmsprop_rows_step(param, grad, cache, np.array([True]), ages, 0.1)
    module.rmsprop_rows_step(param, grad, cache, np.array([], np.int64), ages, 0.1)  # no row: every age goes up
    assert np.array_equal(ages, np.ones(6))


# Rows that overlap an array the step writes, checked in a child process (a write out of bounds
# would crash it, not pytest): the step must write where the rows said when they were checked.
OVERLAPS = r"""
import numpy as np
import pgcore
import pgcore.kernels as K
import pgcore.reference as R

for threads in (1, 2):
    pgcore.set_num_threads(threads)
    results = []
    for module in (K, R):
        # rows is a view of ages: [2, 0, 1]. After the step ages[:3] = 0, and ages += 1 makes the
        # caller's rows what it may never be used as again.
        ages = np.array([2, 0, 1, 7, 7, 7], np.int64)
        rows = ages[:3]
        rng = np.random.default_rng(0)
        param, cache = rng.standard_normal((6, 4)), np.abs(rng.standard_normal((6, 4)))
        grad = np.zeros((6, 4))
        grad[:3] = 1.0
        module.rmsprop_rows_step(param, grad, cache, rows, ages, 0.1)
        assert ages.tolist() == [0, 0, 0, 8, 8, 8], ages
        # rows is a view of param's first row (its bits read as int64: [0, 2]): the step rewrites
        # that row, which makes the caller's rows huge numbers.
        param2 = np.zeros((3, 200))
        param2[0, :2] = np.array([0, 2], np.int64).view(np.float64)
        rows2 = param2.view(np.int64)[0, :2]
        grad2 = np.zeros((3, 200))
        grad2[[0, 2]] = 1.0
        ages2 = np.zeros(3, np.int64)
        module.rmsprop_rows_step(param2, grad2, np.ones((3, 200)), rows2, ages2, 0.1)
        assert ages2.tolist() == [0, 1, 0] and abs(int(rows2[0])) > 2, (ages2, rows2)
        results.append((param, cache, grad, ages, param2, grad2))
    for a, b in zip(*results):
        assert np.allclose(a, b, rtol=1e-12, atol=1e-300), (a, b)
print("ok")
"""


def test_rows_that_overlap_the_outputs_move_no_write(tmp_path):
    assert_script_prints_ok(OVERLAPS, tmp_path)
