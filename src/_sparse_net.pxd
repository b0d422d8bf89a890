# Inline helpers of the Pong net on sparse ternary rows, shared by _sparse (sparse_mlp_forward,
# sparse_mlp_backward) and _atari (pong_step, which runs the forward on each step's new row).
#
# A row is ~26 (~60 with the frame) pixel indices, each with a sign -1 or +1: x @ w1 is the
# signed sum of those rows of w1, in index order, so every module computes the same h.
from cython cimport floating
from libc.string cimport memset

cdef enum:
    SOFTMAX_ACTIONS = 3  # a net with w2 (H, 3): a softmax over down, up, stay


cdef inline void sparse_hidden(const short* indices, const signed char* signs, Py_ssize_t count,
                               const floating* w1, Py_ssize_t n_hidden, floating* h) noexcept nogil:
    """h = relu(sum_k signs[k] * w1[indices[k], :]): rows added into h (which stays in L1) in
    order, a sign times a row being exact; then the ReLU as a select, which vectorises (a
    branch per unit mispredicts half the time and doubled the kernel's time)."""
    cdef Py_ssize_t k, j
    cdef const floating* w_row
    cdef floating sign
    memset(h, 0, n_hidden * sizeof(floating))
    for k in range(count):
        w_row = w1 + <Py_ssize_t>indices[k] * n_hidden
        sign = signs[k]
        for j in range(n_hidden):
            h[j] += sign * w_row[j]
    for j in range(n_hidden):
        h[j] = 0 if h[j] <= 0 else h[j]  # NaN passes through, as in np.maximum


cdef inline floating dot(const floating* a, const floating* b, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t j
    cdef floating total = 0
    for j in range(n):
        total += a[j] * b[j]
    return total


cdef inline void output_logits(const floating* h, const floating* w2, Py_ssize_t n_hidden, Py_ssize_t n_logits,
                               floating* logits) noexcept nogil:
    """logits (n_logits,) = h @ w2, w2 (n_hidden, n_logits) row-major, n_logits 1 or
    SOFTMAX_ACTIONS: one dot, or three sums in registers over w2 read once in order (a loop
    over k with the sums kept in `logits`, which may alias w2, made pong_step's three-action row
    of pgcore-bench 84 us instead of 44)."""
    cdef Py_ssize_t j
    cdef floating down = 0, up = 0, stay = 0
    if n_logits == 1:
        logits[0] = dot(h, w2, n_hidden)
        return
    for j in range(n_hidden):
        down += h[j] * w2[3 * j]
        up += h[j] * w2[3 * j + 1]
        stay += h[j] * w2[3 * j + 2]
    logits[0], logits[1], logits[2] = down, up, stay
