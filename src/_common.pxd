# Inline helpers shared by the kernel modules: fused-type math, row-major BLAS and the
# serial/parallel split of a kernel's loop.
#
# The kernels keep arrays C-contiguous (row-major); BLAS is column-major, so a
# row-major product C = op(A) @ op(B) is computed as the column-major product
# C^T = op(B)^T @ op(A)^T on the same buffers, with no copies.
from cython cimport floating
from libc.math cimport exp, sqrt, sqrtf
from scipy.linalg.cython_blas cimport sgemm, dgemm

# Below this many elements a kernel runs serial: an empty prange costs ~1 us here.
cdef enum:
    PARALLEL_MIN_ELEMENTS = 32768


# ---- the serial/parallel split, written once ----
#
# A kernel's loop is a `cdef inline` helper over a range [start, stop), and every kernel runs it
# the same way:
#
#     cdef int parts = parallel_parts(size, THRESHOLD, n_threads)
#     with nogil:
#         if parts == 1:  # serial: no OpenMP call at all
#             helper(..., 0, n)
#         else:
#             for part in prange(parts, schedule='static', num_threads=parts):
#                 helper(..., part_start(n, part, parts), part_start(n, part + 1, parts))
#
# The serial branch is not a prange with one thread: an OpenMP region told not to start threads
# still costs ~1 us a call (DESIGN.md), more than many of these kernels take on small inputs.

cdef inline int parallel_parts(Py_ssize_t size, Py_ssize_t threshold, int n_threads) noexcept nogil:
    """How many parts a loop over work of `size` (elements, rows, frames or a work estimate) is cut
    into: one per thread at or above `threshold`, else 1 (run serial by the calling thread)."""
    return n_threads if n_threads > 1 and size >= threshold else 1


cdef inline Py_ssize_t part_start(Py_ssize_t n, Py_ssize_t part, Py_ssize_t parts) noexcept nogil:
    """Where part `part` of `parts` (static, near-equal) of [0, n) starts; it stops where part + 1
    starts, so the parts cover [0, n) once, in order."""
    return n * part // parts


cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    /* exp for float32 without a libm call, so that loops over it vectorise (glibc's expf
       does not without -ffast-math). Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, a
       degree-6 polynomial for e^r (under 2 ulp), and 2^n built in two factors so results down
       to the subnormal range are right. Returns +inf above 88.72, 0 below -103.97; NaN stays NaN. */
    static inline float pgcore_exp_float(float x) {
        const float log2e = 1.44269504088896341f, ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
        const float shifter = 12582912.0f;  /* 1.5 * 2^23: adding it rounds to an integer (SSE2 has no roundps) */
        float xc = x > 88.7228394f ? 88.7228394f : (x < -103.972084f ? -103.972084f : x);
        float n = (xc * log2e + shifter) - shifter;
        float r = (xc - n * ln2_hi) - n * ln2_lo;
        float p = 1.9875691500e-4f;
        p = p * r + 1.3981999507e-3f;
        p = p * r + 8.3334519073e-3f;
        p = p * r + 4.1665795894e-2f;
        p = p * r + 1.6666665459e-1f;
        p = p * r + 5.0000001201e-1f;
        p = p * r * r + r + 1.0f;
        int32_t ni = (int32_t)n, half = ni >> 1;
        int32_t b1 = (half + 127) << 23, b2 = (ni - half + 127) << 23;
        float s1, s2;
        memcpy(&s1, &b1, 4);
        memcpy(&s2, &b2, 4);
        float result = p * s1 * s2;
        result = x > 88.7228394f ? __builtin_inff() : result;
        result = x < -103.972084f ? 0.0f : result;
        return x != x ? x : result;
    }
    """
    float pgcore_exp_float(float x) nogil


cdef inline floating exp_(floating x) noexcept nogil:
    if floating is float:
        return pgcore_exp_float(x)
    else:
        return exp(x)


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
