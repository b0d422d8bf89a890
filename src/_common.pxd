# Inline helpers shared by the kernel modules: fused-type math and row-major BLAS.
#
# The kernels keep arrays C-contiguous (row-major); BLAS is column-major, so a
# row-major product C = op(A) @ op(B) is computed as the column-major product
# C^T = op(B)^T @ op(A)^T on the same buffers, with no copies.
from cython cimport floating
from libc.math cimport exp, expf, log, logf, sqrt, sqrtf
from scipy.linalg.cython_blas cimport sgemm, dgemm, sgemv, dgemv

# Below this many elements a kernel runs serial: an empty prange costs ~1 us here.
cdef enum:
    PARALLEL_MIN_ELEMENTS = 32768


cdef inline floating exp_(floating x) noexcept nogil:
    if floating is float:
        return expf(x)
    else:
        return exp(x)


cdef inline floating log_(floating x) noexcept nogil:
    if floating is float:
        return logf(x)
    else:
        return log(x)


cdef inline floating sqrt_(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef inline floating sigmoid_(floating x) noexcept nogil:
    """Stable logistic: exponentiates only -|x| (never overflows); no branch to mispredict."""
    cdef floating e = exp_(-x if x >= 0 else x)
    cdef floating inverse = 1 / (1 + e)
    return inverse if x >= 0 else e * inverse


cdef inline void gemm(bint trans_a, bint trans_b, int m, int n, int k,
                      floating alpha, const floating* a, int lda,
                      const floating* b, int ldb,
                      floating beta, floating* c, int ldc) noexcept nogil:
    """Row-major C (m, n) = alpha * op(A) @ op(B) + beta * C, op(A) (m, k), op(B) (k, n)."""
    cdef char ta = b'T' if trans_b else b'N'
    cdef char tb = b'T' if trans_a else b'N'
    cdef Py_ssize_t i
    if m == 0 or n == 0:
        return
    if k == 0:  # BLAS leaves C alone when k == 0 only if beta == 1; define it here
        for i in range(<Py_ssize_t>m * n):
            c[i] = 0 if beta == 0 else beta * c[i]
        return
    lda = max(lda, 1)
    ldb = max(ldb, 1)
    ldc = max(ldc, 1)
    if floating is float:
        sgemm(&ta, &tb, &n, &m, &k, &alpha, <float*>b, &ldb, <float*>a, &lda, &beta, c, &ldc)
    else:
        dgemm(&ta, &tb, &n, &m, &k, &alpha, <double*>b, &ldb, <double*>a, &lda, &beta, c, &ldc)


cdef inline void gemv(bint trans_a, int m, int n, floating alpha, const floating* a,
                      const floating* x, floating beta, floating* y) noexcept nogil:
    """Row-major y = alpha * op(A) @ x + beta * y for a C-contiguous A (m, n)."""
    cdef char t = b'N' if trans_a else b'T'
    cdef int one = 1, lda = max(n, 1)
    cdef Py_ssize_t i, rows = n if trans_a else m
    if rows == 0:
        return
    if m == 0 or n == 0:
        for i in range(rows):
            y[i] = 0 if beta == 0 else beta * y[i]
        return
    if floating is float:
        sgemv(&t, &n, &m, &alpha, <float*>a, &lda, <float*>x, &one, &beta, y, &one)
    else:
        dgemv(&t, &n, &m, &alpha, <double*>a, &lda, <double*>x, &one, &beta, y, &one)
