# Neural-network kernels: ReLU, linear backward, and the 2-layer policy net.
#
# Design: matrix products go to BLAS (row-major through _common.gemm) with the
# elementwise work fused around them (ReLU applied in place on the hidden layer;
# the masked hidden gradient written once, no outer-product temporary).
#
# Pong difference frames are ternary and ~0.4% nonzero, so the net's input
# product takes a sparse route when every row of x has at most D/16 nonzeros:
# x @ w1 becomes a sum of the ~26 signed rows of w1 that a frame selects, and
# x.T @ grad_h touches only those rows of grad_w1. The check costs one pass over
# x in blocks of 16 (a vectorised "any nonzero"); dense inputs fall back to BLAS.
# x may be int8 (stored frames): it is then used by value, never copied to float
# unless the dense route needs it.
#
# Private: only pgcore/kernels.py calls these, with arguments pgcore._validate has checked (the
# checks the NumPy twins share); they trust them and do not check them again.
from cython.parallel cimport prange
from cython cimport floating
cimport numpy as cnp
import numpy as np
from libc.string cimport memcpy, memset

from _common cimport PARALLEL_MIN_ELEMENTS, gemm, parallel_parts, part_start

cnp.import_array()

ctypedef fused xvalue:
    signed char
    float
    double

cdef enum:
    BLOCK = 16
    SPARSE_FRACTION = 16   # a row is sparse when it has at most D / SPARSE_FRACTION nonzeros
    PARALLEL_MIN_WORK = 262144


cdef inline floating _relu(floating x) noexcept nogil:
    return 0 if x <= 0 else x  # NaN passes through, as in np.maximum


cdef inline floating _relu_backward(floating grad, floating x) noexcept nogil:
    return grad * (x > 0)  # not a branch: an inf or NaN grad still gives NaN, as in NumPy


cdef inline void _relu_range(const floating* x, floating* out, Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(start, stop):
        out[i] = _relu(x[i])


cdef inline void _relu_backward_range(const floating* grad, const floating* x, floating* out, Py_ssize_t start,
                                      Py_ssize_t stop) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(start, stop):
        out[i] = _relu_backward(grad[i], x[i])


def relu(const floating[::1] x_view, int n_threads):
    cdef Py_ssize_t part, n = x_view.shape[0]
    out_array = np.empty(n, dtype=np.float32 if floating is float else np.float64)
    cdef floating[::1] out_view = out_array
    # Raw pointers in locals: the compiler can vectorise (memoryview fields may alias).
    cdef const floating* x = &x_view[0] if n else NULL
    cdef floating* out = &out_view[0] if n else NULL
    cdef int parts = parallel_parts(n, PARALLEL_MIN_ELEMENTS, n_threads)
    with nogil:
        if parts == 1:  # serial: no OpenMP call at all
            _relu_range(x, out, 0, n)
        else:
            for part in prange(parts, schedule='static', num_threads=parts):
                _relu_range(x, out, part_start(n, part, parts), part_start(n, part + 1, parts))
    return out_array


def relu_backward(const floating[::1] grad_view, const floating[::1] x_view, int n_threads):
    cdef Py_ssize_t part, n = x_view.shape[0]
    out_array = np.empty(n, dtype=np.float32 if floating is float else np.float64)
    cdef floating[::1] out_view = out_array
    cdef const floating* grad = &grad_view[0] if n else NULL
    cdef const floating* x = &x_view[0] if n else NULL
    cdef floating* out = &out_view[0] if n else NULL
    cdef int parts = parallel_parts(n, PARALLEL_MIN_ELEMENTS, n_threads)
    with nogil:
        if parts == 1:  # serial: no OpenMP call at all
            _relu_backward_range(grad, x, out, 0, n)
        else:
            for part in prange(parts, schedule='static', num_threads=parts):
                _relu_backward_range(grad, x, out, part_start(n, part, parts), part_start(n, part + 1, parts))
    return out_array


def linear_backward(const floating[:, ::1] x, const floating[:, ::1] grad_out, const floating[:, ::1] w):
    cdef int n = x.shape[0], n_in = x.shape[1], n_out = w.shape[1]
    dtype = np.float32 if floating is float else np.float64
    grad_w_array = np.empty((n_in, n_out), dtype=dtype)
    grad_x_array = np.empty((n, n_in), dtype=dtype)
    cdef floating[:, ::1] grad_w = grad_w_array
    cdef floating[:, ::1] grad_x = grad_x_array
    with nogil:
        gemm(True, False, n_in, n_out, n, 1, &x[0, 0], n_in, &grad_out[0, 0], n_out, 0, &grad_w[0, 0], n_out)
        gemm(False, True, n, n_in, n_out, 1, &grad_out[0, 0], n_out, &w[0, 0], n_out, 0, &grad_x[0, 0], n_in)
    return grad_w_array, grad_x_array


# ---- sparse rows ----

cdef inline bint _block_nonzero(const xvalue* p) noexcept nogil:
    """Whether any of BLOCK values is nonzero, by OR-ing their bits (vectorises; -0.0 counts as 0).
    The bits are copied out with memcpy, not read through an integer pointer: reading a float
    as an integer type breaks C's aliasing rules, which -O3 relies on."""
    cdef int j
    cdef unsigned int[BLOCK] words32
    cdef unsigned long long[BLOCK] words64
    cdef unsigned int bits32 = 0
    cdef unsigned long long bits64 = 0
    cdef unsigned char bits8 = 0
    if xvalue is float:
        memcpy(words32, p, sizeof(words32))
        for j in range(BLOCK):
            bits32 |= words32[j] & 0x7fffffffU
        return bits32 != 0
    elif xvalue is double:
        memcpy(words64, p, sizeof(words64))
        for j in range(BLOCK):
            bits64 |= words64[j] & 0x7fffffffffffffffULL
        return bits64 != 0
    else:
        for j in range(BLOCK):
            bits8 |= <unsigned char>p[j]
        return bits8 != 0


cdef inline Py_ssize_t _row_nonzeros(const xvalue* row, Py_ssize_t d, int* cols, floating* vals,
                                     Py_ssize_t cap) noexcept nogil:
    """Collects the nonzeros of one row into cols/vals; returns their count, or -1 past cap."""
    cdef Py_ssize_t start = 0, j, count = 0
    while start < d:
        if start + BLOCK > d or _block_nonzero(row + start):
            for j in range(start, min(start + BLOCK, d)):
                if row[j] != 0:
                    if count == cap:
                        return -1
                    cols[count] = <int>j
                    vals[count] = <floating>row[j]
                    count += 1
        start += BLOCK
    return count


cdef bint _collect_sparse(const xvalue[:, ::1] x, int[:, ::1] cols, floating[:, ::1] vals,
                          Py_ssize_t[::1] counts, int n_threads) noexcept nogil:
    """Fills each row's nonzeros; False as soon as any row has more than cols.shape[1]."""
    cdef Py_ssize_t i, n = x.shape[0], d = x.shape[1], cap = cols.shape[1]
    cdef int dense_rows = 0
    cdef int parts = parallel_parts(n * d, PARALLEL_MIN_WORK, n_threads)
    if parts > 1:  # rows dealt to the threads one by one; serial, the loop stops at the first dense row
        for i in prange(n, schedule='static', num_threads=parts):
            counts[i] = _row_nonzeros(&x[i, 0], d, &cols[i, 0], &vals[i, 0], cap)
            if counts[i] < 0:
                dense_rows += 1
    else:
        for i in range(n):
            counts[i] = _row_nonzeros(&x[i, 0], d, &cols[i, 0], &vals[i, 0], cap)
            if counts[i] < 0:
                return False
    return dense_rows == 0


cdef inline void _sparse_row_times(const int* cols, const floating* vals, Py_ssize_t count,
                                   const floating[:, ::1] w, floating* out) noexcept nogil:
    """out = sum_k vals[k] * w[cols[k], :] (one row of x @ w for a sparse row of x)."""
    cdef Py_ssize_t k, j, width = w.shape[1]
    cdef const floating* w_row
    cdef floating value
    memset(out, 0, width * sizeof(floating))
    for k in range(count):
        value = vals[k]
        w_row = &w[cols[k], 0]
        for j in range(width):
            out[j] += value * w_row[j]


cdef inline void _sparse_rows_times(const int* cols, const floating* vals, const Py_ssize_t* counts, Py_ssize_t cap,
                                    const floating[:, ::1] w, floating* out, Py_ssize_t start,
                                    Py_ssize_t stop) noexcept nogil:
    """Rows start..stop-1 of x @ w (out (N, w's columns)), for sparse rows of x (cap slots a row)."""
    cdef Py_ssize_t i
    for i in range(start, stop):
        _sparse_row_times(cols + i * cap, vals + i * cap, counts[i], w, out + i * w.shape[1])


cdef inline void _sparse_rows_transposed_times(const int* cols, const floating* vals, const Py_ssize_t* counts,
                                               Py_ssize_t cap, Py_ssize_t n, const floating* grad_h,
                                               Py_ssize_t n_hidden, floating* grad_w1, Py_ssize_t start,
                                               Py_ssize_t stop) noexcept nogil:
    """Columns start..stop-1 of grad_w1 (D, n_hidden) += x.T @ grad_h, for the N sparse rows of x (cap
    slots a row): only the rows of grad_w1 that a nonzero selects are touched."""
    cdef Py_ssize_t i, k, c
    cdef floating value
    cdef floating* w_row
    cdef const floating* g_row
    for i in range(n):
        g_row = grad_h + i * n_hidden
        for k in range(counts[i]):
            w_row = grad_w1 + <Py_ssize_t>cols[i * cap + k] * n_hidden
            value = vals[i * cap + k]
            for c in range(start, stop):
                w_row[c] += value * g_row[c]


def _sparse_buffers(Py_ssize_t n, Py_ssize_t d, dtype):
    cap = max(d // SPARSE_FRACTION, 1)
    return (np.empty((n, cap), dtype=np.int32), np.empty((n, cap), dtype=dtype),
            np.empty(n, dtype=np.intp))


def mlp_forward(x_array, const xvalue[:, ::1] x, const floating[:, ::1] w1, const floating[:, ::1] w2,
                int n_threads):
    """h = relu(x @ w1) (N, H), logits = h @ w2 (N, A)."""
    cdef Py_ssize_t i, j, part, n = x.shape[0], d = x.shape[1], n_hidden = w1.shape[1], n_out = w2.shape[1]
    dtype = np.float32 if floating is float else np.float64
    h_array = np.empty((n, n_hidden), dtype=dtype)
    logits_array = np.empty((n, n_out), dtype=dtype)
    cols_array, vals_array, counts_array = _sparse_buffers(n, d, dtype)
    cdef floating[:, ::1] h = h_array
    cdef floating[:, ::1] logits = logits_array
    cdef int[:, ::1] cols = cols_array
    cdef floating[:, ::1] vals = vals_array
    cdef Py_ssize_t[::1] counts = counts_array
    cdef const floating[:, ::1] x_dense
    cdef bint sparse
    cdef int parts = parallel_parts(n * n_hidden * 32, PARALLEL_MIN_WORK, n_threads)
    with nogil:
        sparse = _collect_sparse(x, cols, vals, counts, n_threads)
    if sparse:
        with nogil:
            if parts == 1:  # serial: no OpenMP call at all
                _sparse_rows_times(&cols[0, 0], &vals[0, 0], &counts[0], cols.shape[1], w1, &h[0, 0], 0, n)
            else:
                for part in prange(parts, schedule='static', num_threads=parts):
                    _sparse_rows_times(&cols[0, 0], &vals[0, 0], &counts[0], cols.shape[1], w1, &h[0, 0],
                                       part_start(n, part, parts), part_start(n, part + 1, parts))
    else:
        x_dense = np.ascontiguousarray(x_array, dtype=dtype)
        with nogil:
            gemm(False, False, n, n_hidden, d, 1, &x_dense[0, 0], d, &w1[0, 0], n_hidden, 0, &h[0, 0], n_hidden)
    with nogil:
        for i in range(n):
            for j in range(n_hidden):
                if h[i, j] <= 0:
                    h[i, j] = 0
        gemm(False, False, n, n_out, n_hidden, 1, &h[0, 0], n_hidden, &w2[0, 0], n_out, 0, &logits[0, 0], n_out)
    return h_array, logits_array


def mlp_backward(x_array, const xvalue[:, ::1] x, const floating[:, ::1] h,
                 const floating[:, ::1] grad_logits, const floating[:, ::1] w2, int n_threads):
    """grad_w2 = h.T @ grad_logits; grad_h = (grad_logits @ w2.T) * (h > 0); grad_w1 = x.T @ grad_h."""
    cdef Py_ssize_t i, j, a, part
    cdef Py_ssize_t n = x.shape[0], d = x.shape[1], n_hidden = h.shape[1], n_out = w2.shape[1]
    cdef floating total
    dtype = np.float32 if floating is float else np.float64
    grad_h_array = np.empty((n, n_hidden), dtype=dtype)
    grad_w2_array = np.empty((n_hidden, n_out), dtype=dtype)
    cdef floating[:, ::1] grad_h = grad_h_array
    cdef floating[:, ::1] grad_w2 = grad_w2_array
    cdef floating[:, ::1] grad_w1
    cdef const floating[:, ::1] x_dense
    with nogil:
        gemm(True, False, n_hidden, n_out, n, 1, &h[0, 0], n_hidden, &grad_logits[0, 0], n_out,
             0, &grad_w2[0, 0], n_out)
        for i in range(n):
            for j in range(n_hidden):
                total = 0
                if not h[i, j] <= 0:
                    for a in range(n_out):
                        total = total + grad_logits[i, a] * w2[j, a]
                grad_h[i, j] = total
    cols_array, vals_array, counts_array = _sparse_buffers(n, d, dtype)
    cdef int[:, ::1] cols = cols_array
    cdef floating[:, ::1] vals = vals_array
    cdef Py_ssize_t[::1] counts = counts_array
    cdef bint sparse
    cdef int parts = parallel_parts(n * n_hidden * 8, PARALLEL_MIN_WORK, n_threads)
    with nogil:
        sparse = _collect_sparse(x, cols, vals, counts, n_threads)
    if sparse:
        grad_w1_array = np.zeros((d, n_hidden), dtype=dtype)
        grad_w1 = grad_w1_array
        with nogil:
            if parts == 1:  # serial: no OpenMP call at all
                _sparse_rows_transposed_times(&cols[0, 0], &vals[0, 0], &counts[0], cols.shape[1], n, &grad_h[0, 0],
                                              n_hidden, &grad_w1[0, 0], 0, n_hidden)
            else:  # threads own disjoint column ranges of grad_w1, so no two write the same element
                for part in prange(parts, schedule='static', num_threads=parts):
                    _sparse_rows_transposed_times(&cols[0, 0], &vals[0, 0], &counts[0], cols.shape[1], n,
                                                  &grad_h[0, 0], n_hidden, &grad_w1[0, 0],
                                                  part_start(n_hidden, part, parts),
                                                  part_start(n_hidden, part + 1, parts))
    else:
        grad_w1_array = np.empty((d, n_hidden), dtype=dtype)
        grad_w1 = grad_w1_array
        x_dense = np.ascontiguousarray(x_array, dtype=dtype)
        with nogil:
            gemm(True, False, d, n_hidden, n, 1, &x_dense[0, 0], d, &grad_h[0, 0], n_hidden,
                 0, &grad_w1[0, 0], n_hidden)
    return grad_w1_array, grad_w2_array
