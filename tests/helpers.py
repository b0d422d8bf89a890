"""Plain helpers and constants of the tests: tolerances, memory layouts,
finite differences, the console scripts and run directories.

Test modules import them with `from helpers import ...` (pytest puts tests/ on sys.path);
conftest.py holds only the hypothesis settings and the fixtures.
"""
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

import pgcore.kernels
import pgcore.reference

# ---- backends ----

BACKENDS = [pgcore.kernels, pgcore.reference]
FLOATS = [np.float32, np.float64]


# ---- tolerances ----

def assert_same_episodes(got, want, n_envs, dtype, atol):
    """Two episode stores (pong.SparseEpisodes) hold the same steps: rows, actions, logits to dtype's rtol."""
    assert np.array_equal(got.lengths, want.lengths) and np.array_equal(got.starts, want.starts)
    for e in range(n_envs):
        used = got.starts[e, got.lengths[e]]
        assert np.array_equal(got.indices[e, :used], want.indices[e, :used])
        assert np.array_equal(got.signs[e, :used], want.signs[e, :used])
        t = got.lengths[e]
        assert np.array_equal(got.actions[e, :t], want.actions[e, :t])
        assert_close(got.logits[e, :t], want.logits[e, :t], rtol=rtol_of(dtype), atol=atol)


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


# ---- finite differences ----

def central_differences(objective, array, eps=1e-6):
    """The gradient of the scalar objective() with respect to `array`, by central differences.

    `array` (float64, writeable) is what the objective reads (through a closure, or as a dict
    entry): each element in turn is set to x + eps, then x - eps, and restored bit for bit, so
    `array` is unchanged on return. Returns a new float64 array of array's shape.
    """
    if not isinstance(array, np.ndarray) or array.dtype != np.float64:
        raise TypeError(f"central_differences needs a float64 ndarray, got {getattr(array, 'dtype', type(array))}")
    if not array.flags.writeable:
        raise ValueError("central_differences perturbs `array` in place: it must be writeable")
    grad = np.zeros(array.shape, dtype=np.float64)
    for index in np.ndindex(array.shape):
        saved = array[index]
        try:
            array[index] = saved + eps
            up = objective()
            array[index] = saved - eps
            down = objective()
        finally:
            array[index] = saved
        grad[index] = (up - down) / (2 * eps)
    return grad


# ---- Pong trainer and command line (test_pong.py, test_cli.py) ----
#
# Training runs go through the console scripts in subprocesses where possible: the
# trainer sets the process-wide kernel thread count and signal handlers, and an
# emulator problem must not take the test process down with it.

BIN_DIR = os.path.dirname(sys.executable)
PROGRESS_HEADER = ["episode", "frames", "steps", "reward", "running_reward", "wall_s", "steps_per_s"]
# A small, fast, bitwise-reproducible run: one update per episode so the weights move.
# One update a batch of two-action returns (as --preset reinforce): tests of a batch's replay are in
# test_ppo.py, of three actions in test_agent.py, of GAE in test_value.py, of the default preset in test_cli.py
SMALL_RUN = ["--preset", "fast", "--envs", "2", "--hidden", "8", "--batch-episodes", "1", "--sync", "--quiet",
             "--epochs", "1", "--minibatches", "1"]


def script(name):
    """Path of a pgcore console script installed next to this interpreter."""
    path = os.path.join(BIN_DIR, name)
    if not os.path.exists(path):
        pytest.skip(f"console script {name} not installed in {BIN_DIR}")
    return path


def _default_sigint():
    # A child started from a shell without job control may inherit SIGINT ignored, and
    # Python then installs no KeyboardInterrupt handler: give the child the default back.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_cli(name, *args, timeout=120, cwd=None):
    """Runs a console script to completion; returns the CompletedProcess (text)."""
    return subprocess.run([script(name), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, preexec_fn=_default_sigint)


def assert_bad_pong_flags_fail_in_one_line(flags, named, run_dir):
    """`pgcore-train pong FLAGS` exits 2 with a message naming `named`, no traceback, no run directory."""
    result = run_cli("pgcore-train", "pong", *flags, "--run-dir", run_dir, "--max-episodes", 1)
    assert result.returncode == 2
    assert named in result.stderr and "Traceback" not in result.stderr
    assert not os.path.exists(run_dir)


def start_cli(name, *args, cwd=None):
    """Starts a console script (for signal tests); stdout/stderr are pipes."""
    return subprocess.Popen([script(name), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=cwd, preexec_fn=_default_sigint)


def read_progress_csv(run_dir):
    """(header, rows as lists of strings) of RUN_DIR/progress.csv."""
    import csv
    with open(os.path.join(run_dir, "progress.csv"), newline="") as f:
        lines = list(csv.reader(f))
    assert lines, "progress.csv is empty (no header)"
    return lines[0], lines[1:]


def progress_columns(run_dir, names=PROGRESS_HEADER):
    """name -> float64 array of that progress.csv column."""
    header, rows = read_progress_csv(run_dir)
    return {name: np.array([float(row[header.index(name)]) for row in rows], dtype=np.float64)
            for name in names}


def load_run_checkpoint(path):
    """(arrays, meta) of a checkpoint.npz (a file or a run directory), read without pickle."""
    if os.path.isdir(path):
        path = os.path.join(path, "checkpoint.npz")
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    meta = json.loads(arrays.pop("__meta__").tobytes().decode()) if "__meta__" in arrays else None
    return arrays, meta


def write_run_checkpoint(path, arrays, meta):
    """Writes a checkpoint in the trainer's format (arrays + JSON in a uint8 __meta__ array)."""
    payload = dict(arrays)
    if meta is not None:
        payload["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **payload)


def train_run(run_dir, *extra, seed=3, episodes=2, timeout=180):
    """A finished `pgcore-train pong` run of SMALL_RUN settings; returns run_dir."""
    result = run_cli("pgcore-train", "pong", *SMALL_RUN, "--seed", seed, "--max-episodes", episodes,
                     "--run-dir", run_dir, *extra, timeout=timeout)
    assert result.returncode == 0, f"pgcore-train failed ({result.returncode}):\n{result.stderr[-3000:]}"
    return str(run_dir)




def assert_script_prints_ok(script, cwd):
    """Runs `script` in a child Python (a crash there cannot take pytest down) from `cwd`, away from
    the checkout so that the installed pgcore is imported; it must exit 0 and print ok."""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=cwd)
    assert result.returncode == 0 and result.stdout.strip() == "ok", (
        f"exit {result.returncode} (negative: killed by a signal)\n{result.stdout[-2000:]}{result.stderr[-3000:]}")
