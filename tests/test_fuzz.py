"""Kernel fuzzing in a child process: a crash fails the test instead of killing pytest.

The default run makes 1,000 calls; `pytest -m slow` adds the 10,000-call run.
"""
import os
import subprocess
import sys

import pytest

FUZZER = os.path.join(os.path.dirname(__file__), "fuzz_kernels.py")


def run_fuzzer(calls, seed):
    result = subprocess.run([sys.executable, FUZZER, str(calls), str(seed)], capture_output=True, text=True,
                            timeout=1200)
    assert result.returncode == 0, (f"fuzzer exited with {result.returncode} (negative: killed by a signal)\n"
                                    f"{result.stdout[-4000:]}{result.stderr[-2000:]}")
    assert f"done {calls} calls, 0 mismatches" in result.stdout


def test_fuzz_kernels_quick():
    run_fuzzer(1000, seed=1)


@pytest.mark.slow
def test_fuzz_kernels_10000_calls():
    run_fuzzer(10_000, seed=2)
