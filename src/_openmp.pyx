# Whether the kernels were compiled with OpenMP (the build falls back to serial without it).
cdef extern from *:
    """
    #ifdef _OPENMP
    #define PGCORE_OPENMP 1
    #else
    #define PGCORE_OPENMP 0
    #endif
    """
    int PGCORE_OPENMP

OPENMP_ENABLED = bool(PGCORE_OPENMP)
