"""Each kernel against its NumPy twin at realistic sizes, with pytest-benchmark.

    pytest benchmarks/ --benchmark-enable --benchmark-group-by=param:case --benchmark-columns=median,iqr,rounds

The cases are those of `pgcore-bench` (pgcore.bench.make_cases), which prints the same
comparison as a table of speed-ups.
"""
import numpy as np
import pytest

from pgcore import bench, kernels, reference

CASES = bench.make_cases(np.float32)


@pytest.mark.parametrize("backend", [reference, kernels], ids=["numpy", "pgcore"])
@pytest.mark.parametrize("case", CASES, ids=[f"{name}[{size}]" for name, size, _ in CASES])
def test_kernel(benchmark, case, backend):
    name, size, build = case
    args = build()
    if name in bench.IN_PLACE:  # each backend works on its own copy of the state it updates
        args = tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args)
    benchmark.group = f"{name} {size}"
    benchmark(getattr(backend, name), *args)
