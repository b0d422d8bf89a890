"""pgcore: policy-gradient reinforcement learning on the CPU, fast.

`pgcore.Agent` trains and runs an agent on any task (Pong from pixels, or gymnasium's
small tasks), as `pgcore-train` and `pgcore-play` do. `pgcore.kernels` holds the compiled
kernels, `pgcore.reference` their NumPy twins (same signatures, same results);
`set_num_threads` sets the one thread count both OpenMP loops and BLAS use.
"""
from pgcore._threads import get_num_threads, set_num_threads

__version__ = "0.1.0"

from pgcore.agent import TASKS, Agent  # noqa: E402  (after __version__, which run records read)

__all__ = ["Agent", "TASKS", "get_num_threads", "set_num_threads", "__version__"]
