"""Hypothesis settings and the shared fixtures of the tests.

Plain helpers (`assert_close`, `arrange`, `run_cli`, ...) are in helpers.py: test modules
import them with `from helpers import ...`, never from conftest.
"""
import os
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import pgcore
from helpers import BACKENDS, FLOATS, train_run

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

# ---- what is under test ----

def pytest_report_header(config):
    return f"pgcore under test: {pgcore.__file__}"


if os.environ.get("PGCORE_EXPECT_INSTALLED") and "site-packages" not in pgcore.__file__:
    # CI tests the installed wheel: the source folder must not be what the tests import
    raise pytest.UsageError(f"the tests import pgcore from {pgcore.__file__}, not the installed wheel")

# ---- fixtures ----

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


# ---- Pong runs ----

@pytest.fixture(scope="session")
def small_run(tmp_path_factory):
    """One finished 2-episode run (seed 3, SMALL_RUN), shared: copy it before changing anything."""
    return train_run(tmp_path_factory.mktemp("small_run") / "run")


@pytest.fixture
def small_run_copy(small_run, tmp_path):
    """A private copy of `small_run` that a test may resume, corrupt or plot into."""
    destination = tmp_path / "run"
    shutil.copytree(small_run, destination)
    return str(destination)
