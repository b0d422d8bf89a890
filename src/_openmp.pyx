# The OpenMP runtime as the build has it: whether kernels were compiled with
# OpenMP, and the runtime's own thread count (for information; pgcore passes its
# thread count to every parallel loop explicitly).
cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define PGCORE_OPENMP 1
    static int pgcore_omp_max_threads(void) { return omp_get_max_threads(); }
    #else
    #define PGCORE_OPENMP 0
    static int pgcore_omp_max_threads(void) { return 1; }
    #endif
    """
    int PGCORE_OPENMP
    int pgcore_omp_max_threads() nogil

OPENMP_ENABLED = bool(PGCORE_OPENMP)


def omp_max_threads():
    return pgcore_omp_max_threads()
