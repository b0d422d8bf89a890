"""Shared fixtures and helpers of the kernel tests.

Helpers (`assert_close`, `arrange`, ...) are plain functions: test modules import
them with `from conftest import ...` (pytest puts tests/ on sys.path).
"""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import pgcore
import pgcore.kernels
import pgcore.reference

# ---- hypothesis ----

_COMMON = dict(
    deadline=None,
    print_blob=True,
    # The `threads` fixture is function scoped on purpose: it holds for every example of a test.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large],
)
settings.register_profile("pgcore", max_examples=15, **_COMMON)  # default: the suite stays fast
settings.register_profile("thorough", max_examples=300, **_COMMON)  # HYPOTHESIS_PROFILE=thorough
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "pgcore"))

# ---- backends, threads ----

BACKENDS = [pgcore.kernels, pgcore.reference]
FLOATS = [np.float32, np.float64]


@pytest.fixture(params=BACKENDS, ids=["kernels", "reference"])
def backend(request):
    """pgcore.kernels or pgcore.reference: every test that takes it runs on both."""
    return request.param


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request):
    """Runs the test with pgcore.set_num_threads(n), restoring the previous count after."""
    old = pgcore.get_num_threads()
    pgcore.set_num_threads(request.param)
    assert pgcore.get_num_threads() == request.param
    yield request.param
    pgcore.set_num_threads(old)


@pytest.fixture(params=FLOATS, ids=["float32", "float64"])
def dtype(request):
    return np.dtype(request.param)


# ---- tolerances ----

def rtol_of(dtype):
    """The contract's relative agreement of kernels and reference (API.md)."""
    return 1e-5 if np.dtype(dtype) == np.float32 else 1e-12


def assert_close(got, want, rtol, atol=0.0, what="result"):
    """|got - want| <= atol + rtol * |want| elementwise; atol may be an array (an error bound
    per element, e.g. rtol * (|A| @ |B|) for a matrix product). Shapes and dtypes must match,
    NaNs must be in the same places."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    got64, want64 = got.astype(np.float64), want.astype(np.float64)
    nan_got, nan_want = np.isnan(got64), np.isnan(want64)
    assert np.array_equal(nan_got, nan_want), f"{what}: NaN at {np.argwhere(nan_got != nan_want)[:5].tolist()}"
    ok = ~nan_got
    atol = np.broadcast_to(np.asarray(atol, dtype=np.float64), got.shape)
    with np.errstate(invalid="ignore"):
        err = np.abs(got64 - want64)
        # infinities must match exactly
        same_inf = np.isinf(got64) & (got64 == want64)
        bound = atol + rtol * np.abs(want64)
        bad = ok & ~same_inf & ~(err <= bound)
    if bad.any():
        i = tuple(np.argwhere(bad)[0])
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {got.size} elements differ beyond rtol={rtol:g} (+atol); "
            f"first at {i}: got {got64[i]!r}, want {want64[i]!r}, |diff| {err[i]:.3g} > bound {bound[i]:.3g}")


# ---- memory layouts: the same values, other strides ----

LAYOUTS = ["C", "strided", "reversed", "F"]


def arrange(array, layout, writeable=True):
    """`array`'s values in another memory layout: C-contiguous, a step-2 view into a larger
    buffer, negative strides, or Fortran order (a transposed view); optionally read-only."""
    array = np.asarray(array)
    if layout == "C" or array.ndim == 0:
        out = np.array(array, order="C")
    elif layout == "strided":
        buffer = np.zeros(tuple(2 * s + 1 for s in array.shape), dtype=array.dtype)
        out = buffer[tuple(slice(1, None, 2) for _ in array.shape)]
        out[...] = array
    elif layout == "reversed":
        flipped = tuple(slice(None, None, -1) for _ in array.shape)
        out = np.array(array[flipped], order="C")[flipped]
    elif layout == "F":
        out = np.array(array, order="F")
    else:
        raise ValueError(layout)
    assert out.shape == array.shape and np.array_equal(out, array, equal_nan=True)
    if not writeable:
        out.flags.writeable = False
    return out


def read_only(array):
    out = np.array(array)
    out.flags.writeable = False
    return out
