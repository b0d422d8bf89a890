"""The one thread count used by every kernel: our OpenMP loops and BLAS alike.

Kernels run one at a time, so OpenMP regions and BLAS calls never overlap; giving
both the same count uses the cores without oversubscribing them.
"""
import os

from threadpoolctl import threadpool_limits

from pgcore import _validate


def _default_threads():
    env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


_n_threads = _default_threads()


def set_num_threads(n):
    """Sets the thread count of every pgcore kernel, and of BLAS (through threadpoolctl)."""
    global _n_threads
    _n_threads = _validate.thread_count(n)
    # threadpoolctl limits the BLAS libraries loaded when it is called: NumPy's (the twins') came with
    # NumPy; load SciPy's too (its own OpenBLAS, with its own thread pool: the one the compiled kernels
    # call, through scipy.linalg.cython_blas), or a count set before pgcore.kernels loads misses it.
    import scipy.linalg.cython_blas  # noqa: F401
    threadpool_limits(limits=_n_threads, user_api="blas")


def get_num_threads():
    return _n_threads
