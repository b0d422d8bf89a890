# Inline helpers of the Pong net on sparse ternary rows, shared by _sparse (sparse_mlp_forward,
# sparse_mlp_backward) and _atari (pong_step, which runs the forward on each step's new row).
#
# A row is ~26 (~60 with the frame) pixel indices, each with a sign -1 or +1: x @ w1 is the
# signed sum of those rows of w1, in index order, so every module computes the same h. That sum
# (and the gradient's, grad_w1 rows from grad_h rows) is the net's hot loop: it is written in C,
# _sparse_rows.h, in versions for AVX2 and for 16-byte vectors picked at run time (the wheels
# are built for SSE2), all of which give the same bits.
from cython cimport floating
from libc.string cimport memset


cdef extern from "_sparse_rows.h" nogil:
    void pgcore_add_rows_f32_s16(const short* rows, const signed char* signs, Py_ssize_t count, Py_ssize_t ahead,
                                 const float* base, Py_ssize_t n, float* out)
    void pgcore_add_rows_f64_s16(const short* rows, const signed char* signs, Py_ssize_t count, Py_ssize_t ahead,
                                 const double* base, Py_ssize_t n, double* out)
    void pgcore_add_rows_f32_p32(const int* rows, const signed char* signs, Py_ssize_t count, Py_ssize_t ahead,
                                 const float* base, Py_ssize_t n, float* out)
    void pgcore_add_rows_f64_p32(const int* rows, const signed char* signs, Py_ssize_t count, Py_ssize_t ahead,
                                 const double* base, Py_ssize_t n, double* out)
    int pgcore_rows_level()
    int pgcore_rows_set_level(int level)

cdef enum:
    MAX_ACTIONS = 18  # the most logits of a softmax net: ALE's full action set


cdef inline void add_signed_rows(const short* rows, const signed char* signs, Py_ssize_t count, Py_ssize_t ahead,
                                 const floating* base, Py_ssize_t n, floating* out) noexcept nogil:
    """out (n,) += sum_k signs[k] * base[rows[k], :], in k order; rows[count:ahead] are the caller's
    next rows (read only to prefetch them)."""
    if floating is float:
        pgcore_add_rows_f32_s16(rows, signs, count, ahead, base, n, out)
    else:
        pgcore_add_rows_f64_s16(rows, signs, count, ahead, base, n, out)


cdef inline int packed_step(Py_ssize_t step, signed char sign) noexcept nogil:
    """A step number and its sign (-1 or +1) in one int, as add_packed_steps reads them: step for
    +1, ~step (-step - 1) for -1."""
    return (<int>step) ^ -(<int>(sign < 0))  # a select GCC compiled to a branch, mispredicted half the time


cdef inline void add_packed_steps(const int* steps, Py_ssize_t count, Py_ssize_t ahead, const floating* base,
                                  Py_ssize_t n, floating* out) noexcept nogil:
    """add_signed_rows with int row numbers (steps of an episode, which may pass 32767), each with
    its sign packed in (packed_step)."""
    if floating is float:
        pgcore_add_rows_f32_p32(steps, NULL, count, ahead, base, n, out)
    else:
        pgcore_add_rows_f64_p32(steps, NULL, count, ahead, base, n, out)


cdef inline void sparse_hidden(const short* indices, const signed char* signs, Py_ssize_t count, Py_ssize_t ahead,
                               const floating* w1, Py_ssize_t n_hidden, floating* h) noexcept nogil:
    """h = relu(sum_k signs[k] * w1[indices[k], :]): rows added into h in order, a sign times a row
    being exact (indices[count:ahead] are the caller's next rows, prefetched); then the ReLU as a
    select, which vectorises (a branch per unit mispredicts half the time and doubled the
    kernel's time)."""
    cdef Py_ssize_t j
    memset(h, 0, n_hidden * sizeof(floating))
    add_signed_rows(indices, signs, count, ahead, w1, n_hidden, h)
    for j in range(n_hidden):
        h[j] = 0 if h[j] <= 0 else h[j]  # NaN passes through, as in np.maximum


cdef inline floating dot(const floating* a, const floating* b, Py_ssize_t n) noexcept nogil:
    """sum_j a[j] b[j] as eight partial sums (of j = l mod 8, each in j order), added pairwise at the
    end: eight chains of adds rather than one, which the compiler vectorises (one chain of 200 adds,
    3 to 4 cycles each, was ~15% of the forward at 200 units). The order is fixed: the same bits
    in every module."""
    cdef floating part[8]
    cdef Py_ssize_t j, l, whole = n - n % 8
    for l in range(8):
        part[l] = 0
    for j in range(0, whole, 8):
        for l in range(8):
            part[l] += a[j + l] * b[j + l]
    for j in range(whole, n):
        part[j - whole] += a[j] * b[j]
    return ((part[0] + part[4]) + (part[2] + part[6])) + ((part[1] + part[5]) + (part[3] + part[7]))


cdef inline void logit_columns(const floating* w2, Py_ssize_t n_hidden, Py_ssize_t n_logits,
                               floating* columns) noexcept nogil:
    """columns (n_logits, n_hidden) = w2 (n_hidden, n_logits) transposed: each logit's weights
    contiguous, as output_logits and the gradient's loops read them."""
    cdef Py_ssize_t j, k
    for j in range(n_hidden):
        for k in range(n_logits):
            columns[k * n_hidden + j] = w2[j * n_logits + k]


cdef inline void output_logits(const floating* h, const floating* columns, Py_ssize_t n_hidden, Py_ssize_t n_logits,
                               floating* logits) noexcept nogil:
    """logits (n_logits,) = h @ w2, from w2's columns (logit_columns): a dot each."""
    cdef Py_ssize_t k
    for k in range(n_logits):
        logits[k] = dot(h, columns + k * n_hidden, n_hidden)
