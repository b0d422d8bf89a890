"""Build pgcore's Cython kernels, with OpenMP when the compiler has it.

Environment variables:
  PGCORE_NO_OPENMP=1   build the kernels serial even if OpenMP works
  PGCORE_NATIVE=1      add -march=native (faster here, not portable: never for wheels)
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

MODULES = ["_policy", "_nn", "_returns", "_optim", "_atari", "_sparse", "_openmp"]
OPENMP_PROBE = r"""
#include <omp.h>
int main(void) {
    int total = 0;
    #pragma omp parallel for reduction(+:total) num_threads(2)
    for (int i = 0; i < 100; i++) total += i;
    return total == 4950 && omp_get_max_threads() >= 1 ? 0 : 1;
}
"""


def _truthy(name):
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


class BuildExtWithOpenMP(build_ext):
    """Probes that the compiler compiles, links and runs an OpenMP program."""

    def _openmp_works(self):
        with tempfile.TemporaryDirectory() as tmp:
            source = os.path.join(tmp, "probe.c")
            with open(source, "w") as f:
                f.write(OPENMP_PROBE)
            try:
                objects = self.compiler.compile([source], output_dir=tmp, extra_postargs=["-fopenmp"])
                program = os.path.join(tmp, "probe")
                self.compiler.link_executable(objects, program, extra_postargs=["-fopenmp"])
                return subprocess.run([program], timeout=30).returncode == 0
            except Exception as error:  # any compile, link or run failure means: no OpenMP
                print(f"pgcore: OpenMP probe failed ({error.__class__.__name__})", file=sys.stderr)
                return False

    def build_extensions(self):
        if _truthy("PGCORE_NO_OPENMP"):
            use_openmp = False
            print("pgcore: PGCORE_NO_OPENMP is set: building the kernels serial")
        else:
            use_openmp = self._openmp_works()
            if not use_openmp:
                print("pgcore: the compiler has no working OpenMP: building the kernels serial")
        # Neither errno nor FP exception flags are ever read: these let loops with sqrt
        # and comparisons vectorise, without -ffast-math's changes to results.
        compile_args = ["-O3", "-fno-math-errno", "-fno-trapping-math"]
        if _truthy("PGCORE_NATIVE"):
            compile_args.append("-march=native")
        for ext in self.extensions:
            ext.extra_compile_args = compile_args + (["-fopenmp"] if use_openmp else [])
            ext.extra_link_args = ["-fopenmp"] if use_openmp else []
        super().build_extensions()


# The C headers the kernels include (src/: the sparse net's row loop, _sparse_rows.h, in _sparse
# and _atari through _sparse_net.pxd): a change to one rebuilds the modules.
HEADERS = {"_sparse": ["src/_sparse_rows.h"], "_atari": ["src/_sparse_rows.h"]}

extensions = [
    Extension(
        f"pgcore.{name}",
        [f"src/{name}.pyx"],
        include_dirs=[np.get_include(), "src"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        depends=HEADERS.get(name, []),
    )
    for name in MODULES
]

setup(
    ext_modules=cythonize(
        extensions,
        include_path=["src"],
        compiler_directives={
            "language_level": "3",
            "boundscheck": False,
            "wraparound": False,
            "initializedcheck": False,
            "cdivision": True,
        },
    ),
    cmdclass={"build_ext": BuildExtWithOpenMP},
)
