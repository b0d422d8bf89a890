"""pgcore: policy-gradient reinforcement learning on the CPU, fast.

`pgcore.Agent` trains and runs an agent on any task (Pong from pixels, or gymnasium's
small tasks), as `pgcore-train` and `pgcore-play` do. `pgcore.kernels` holds the compiled
kernels, `pgcore.reference` their NumPy twins (same signatures, same results);
`set_num_threads` sets the one thread count both OpenMP loops and BLAS use. A bad setting
raises `SettingError` (a ValueError naming it), an unusable run directory or checkpoint `RunError`.
"""
from pgcore._threads import get_num_threads, set_num_threads
from pgcore._version import __version__
from pgcore.agent import TASKS, Agent
from pgcore.runs import RunError, SettingError

__all__ = ["Agent", "TASKS", "RunError", "SettingError", "get_num_threads", "set_num_threads", "__version__"]
