"""pgcore: policy-gradient reinforcement learning on the CPU, fast.

`pgcore.kernels` holds the compiled kernels, `pgcore.reference` their NumPy twins
(same signatures, same results); `set_num_threads` sets the one thread count both
OpenMP loops and BLAS use.
"""
from pgcore._threads import get_num_threads, set_num_threads

__version__ = "0.1.0"
__all__ = ["get_num_threads", "set_num_threads", "__version__"]
