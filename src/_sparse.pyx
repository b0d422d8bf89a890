# The Pong net on sparse ternary rows: sparse_mlp_forward and sparse_mlp_backward, the trainer's
# batch forward and gradient (pong_step, in _atari, runs the forward of each new step).
#
# A difference frame has ~26 nonzero pixels of 6400, each -1 or +1, so a step's input is kept
# as those pixels' indices (int16) and signs (int8), CSR-like: row t owns
# indices[starts[t]:starts[t + 1]]. With the frame as well (w1 of 12800 rows), the ~34 object
# pixels of the frame itself follow as indices 6400 + p, each +1. The net's input product is
# then a signed sum of ~26 rows of w1, its gradient a signed scatter into ~26 rows of grad_w1,
# and h is recomputed from the indices in the backward rather than stored (the same float
# operations in the same order, so the same h).
#
# These functions are private: only pgcore/kernels.py calls them, after pgcore._validate has
# checked every argument (the same checks as the NumPy twins'). They trust what they are given:
# starts rising from 0 and within indices, indices in [0, len(w1)), signs -1 or +1, w2 with 1 or
# 3 columns, every shape matching, the in-place outputs C-contiguous and writeable; they do not
# check it again. They read the caller's index arrays before writing any output, so an output
# that overlaps an input cannot move a write out of bounds.
from cython.parallel cimport prange
cimport numpy as cnp
import numpy as np
from cython cimport floating

from _common cimport parallel_parts, part_start
from _sparse_net cimport (add_signed_steps, logit_columns, output_logits, pgcore_rows_level, pgcore_rows_set_level,
                         sparse_hidden)

cnp.import_array()

cdef enum:
    PARALLEL_MIN_ROWS = 256  # sparse rows (steps) below which the sparse net runs serial


def _row_loop_level(int level=-2):
    """The version of the row loop (_sparse_rows.h) this module runs: 2 AVX2, 1 16-byte vectors,
    0 plain. level >= 0 lowers it to that one (tests compare the versions' bits), -1 restores the
    best the CPU has, -2 only asks. _atari has its own, always the best."""
    if level >= -1:
        pgcore_rows_set_level(level)
    return pgcore_rows_level()


cdef inline void _hidden_rows(const cnp.int64_t* starts, const short* indices, const signed char* signs,
                              const floating* w1, const floating* columns, Py_ssize_t n_hidden, Py_ssize_t n_logits,
                              floating* h, floating* logits, Py_ssize_t first, Py_ssize_t stop) noexcept nogil:
    """h and logits of rows first..stop-1 (each prefetching the next rows' pixels of w1); columns: w2's."""
    cdef Py_ssize_t i
    for i in range(first, stop):
        sparse_hidden(indices + starts[i], signs + starts[i], starts[i + 1] - starts[i], starts[stop] - starts[i], w1,
                      n_hidden, h + i * n_hidden)
        output_logits(h + i * n_hidden, columns, n_hidden, n_logits, logits + i * n_logits)


def sparse_mlp_forward(const cnp.int64_t[::1] starts, const short[::1] indices, const signed char[::1] signs,
                       const floating[:, ::1] w1, const floating[:, ::1] w2, int n_threads):
    """h = relu(x @ w1) (N, H), logits = h @ w2 (N, K) for the N sparse ternary rows of x, w2 (H, K)."""
    cdef Py_ssize_t part, n = starts.shape[0] - 1, n_hidden = w1.shape[1], n_logits = w2.shape[1]
    dtype = np.float32 if floating is float else np.float64
    h_array = np.zeros((n, n_hidden), dtype=dtype)
    logits_array = np.zeros((n, n_logits), dtype=dtype)
    if n == 0 or n_hidden == 0:
        return h_array, logits_array
    cdef floating[:, ::1] h = h_array
    cdef floating[:, ::1] logits = logits_array
    cdef floating[:, ::1] columns = np.empty((n_logits, n_hidden), dtype=dtype)
    cdef short no_index = 0
    cdef signed char no_sign = 0
    cdef const short* index = &indices[0] if indices.shape[0] else &no_index
    cdef const signed char* sign = &signs[0] if signs.shape[0] else &no_sign
    cdef int parts = parallel_parts(n, PARALLEL_MIN_ROWS, n_threads)
    with nogil:
        logit_columns(&w2[0, 0], n_hidden, n_logits, &columns[0, 0])
        if parts == 1:  # serial: no OpenMP call at all
            _hidden_rows(&starts[0], index, sign, &w1[0, 0], &columns[0, 0], n_hidden, n_logits, &h[0, 0],
                         &logits[0, 0], 0, n)
        else:
            for part in prange(parts, schedule='static', num_threads=parts):
                _hidden_rows(&starts[0], index, sign, &w1[0, 0], &columns[0, 0], n_hidden, n_logits, &h[0, 0],
                             &logits[0, 0], part_start(n, part, parts), part_start(n, part + 1, parts))
    return h_array, logits_array


cdef inline void _hidden_gradients(const cnp.int64_t* starts, const short* indices, const signed char* signs,
                                   const floating* grad_logits, const floating* w1, const floating* w2,
                                   Py_ssize_t n_hidden, Py_ssize_t n_logits, floating* h, floating* grad_h,
                                   floating* grad_w2, Py_ssize_t first, Py_ssize_t stop) noexcept nogil:
    """For steps first..stop-1: grad_h rows, and their part of grad_w2 added to grad_w2 (h: scratch).
    n_logits 1 or SOFTMAX_ACTIONS; w2 and grad_w2 come transposed, (n_logits, n_hidden) (w2's
    columns, logit_columns), so that with three logits too the loops over units read and write
    contiguously and vectorise (with (n_hidden, 3) it ran scalar: a fifth of the backward's time
    at 200 units)."""
    cdef Py_ssize_t t, j
    cdef floating grad_logit, grad_down, grad_up, grad_stay, grad_unit
    cdef floating* grad_row
    for t in range(first, stop):
        sparse_hidden(indices + starts[t], signs + starts[t], starts[t + 1] - starts[t], starts[stop] - starts[t], w1,
                      n_hidden, h)
        grad_row = grad_h + t * n_hidden
        if n_logits == 1:  # one loop an output: GCC vectorises these, not one loop writing both (or all four)
            grad_logit = grad_logits[t]
            for j in range(n_hidden):
                grad_w2[j] += grad_logit * h[j]
            for j in range(n_hidden):
                grad_unit = grad_logit * w2[j]  # outside the select, or GCC sees a branch and does not vectorise
                grad_row[j] = grad_unit if h[j] > 0 else 0
            continue
        grad_down, grad_up, grad_stay = grad_logits[3 * t], grad_logits[3 * t + 1], grad_logits[3 * t + 2]
        for j in range(n_hidden):
            grad_w2[j] += grad_down * h[j]
        for j in range(n_hidden):
            grad_w2[n_hidden + j] += grad_up * h[j]
        for j in range(n_hidden):
            grad_w2[2 * n_hidden + j] += grad_stay * h[j]
        for j in range(n_hidden):
            grad_unit = grad_down * w2[j] + grad_up * w2[n_hidden + j] + grad_stay * w2[2 * n_hidden + j]
            grad_row[j] = grad_unit if h[j] > 0 else 0


cdef inline void _sort_by_pixel(const cnp.int64_t* starts, const short* indices, const signed char* signs,
                                Py_ssize_t n, Py_ssize_t n_inputs, cnp.int64_t* pixel_starts, int* step_of,
                                signed char* sign_of) noexcept nogil:
    """A counting sort of the nonzeros by pixel, steps in order within a pixel: pixel p's are
    step_of[pixel_starts[p]:pixel_starts[p + 1]] (pixel_starts: n_inputs + 2 zeros). Counted one
    place up, so that the fill, which moves each start to the end of its pixel, leaves them where
    they belong (no pass to move them back)."""
    cdef Py_ssize_t t, k, p, position
    for k in range(starts[n]):
        pixel_starts[indices[k] + 2] += 1
    for p in range(n_inputs):
        pixel_starts[p + 2] += pixel_starts[p + 1]
    for t in range(n):
        for k in range(starts[t], starts[t + 1]):
            position = pixel_starts[indices[k] + 1]
            pixel_starts[indices[k] + 1] = position + 1
            step_of[position] = <int>t
            sign_of[position] = signs[k]


cdef inline void _pixel_gradients(const cnp.int64_t* pixel_starts, const int* step_of, const signed char* sign_of,
                                  const floating* grad_h, Py_ssize_t n_hidden, floating* grad_w1, Py_ssize_t first,
                                  Py_ssize_t stop) noexcept nogil:
    """Rows first..stop-1 of grad_w1: each gathers the grad_h rows of the steps where its pixel changed
    (in step order, prefetching the next pixels' steps)."""
    cdef Py_ssize_t p
    for p in range(first, stop):
        if pixel_starts[p + 1] > pixel_starts[p]:
            add_signed_steps(step_of + pixel_starts[p], sign_of + pixel_starts[p],
                             pixel_starts[p + 1] - pixel_starts[p], pixel_starts[stop] - pixel_starts[p], grad_h,
                             n_hidden, grad_w1 + p * n_hidden)


def sparse_mlp_backward(const cnp.int64_t[::1] starts, const short[::1] indices, const signed char[::1] signs,
                        const floating[:, ::1] grad_logits, const floating[:, ::1] w1, const floating[:, ::1] w2,
                        floating[:, ::1] grad_w1, floating[:, ::1] grad_w2, int n_threads):
    """grad_w1 += x.T @ grad_h, grad_w2 += h.T @ grad_logits (in place; h recomputed); w2,
    grad_w2 (H, K), grad_logits (N, K).

    Two passes, each split over threads for long episodes. By step: h (recomputed), grad_h,
    and grad_w2 (each thread its own partial sum, added in thread order). By pixel: the
    nonzeros sorted by pixel (a counting sort, steps in order), so each row of grad_w1 is read
    and written once, by one thread, while it gathers the grad_h rows of its steps. Every read
    of starts, indices and signs comes before the first write to grad_w1 or grad_w2."""
    cdef Py_ssize_t j, k, part, n = starts.shape[0] - 1, n_hidden = w1.shape[1]
    cdef Py_ssize_t n_inputs = w1.shape[0], n_logits = w2.shape[1]
    if n == 0 or n_hidden == 0:
        return
    cdef int parts = parallel_parts(n, PARALLEL_MIN_ROWS, n_threads)
    dtype = np.float32 if floating is float else np.float64
    nnz = starts[n]
    grad_h_array = np.empty((n, n_hidden), dtype=dtype)
    scratch_array = np.empty((parts, n_hidden), dtype=dtype)             # h, per part
    partial_array = np.zeros((parts, n_hidden * n_logits), dtype=dtype)  # grad_w2 (transposed), per part
    pixel_starts_array = np.zeros(n_inputs + 2, dtype=np.int64)
    step_of_array = np.empty(max(nnz, 1), dtype=np.int32)
    sign_of_array = np.empty(max(nnz, 1), dtype=np.int8)
    cdef floating[:, ::1] grad_h = grad_h_array
    cdef floating[:, ::1] scratch = scratch_array
    cdef floating[:, ::1] partial = partial_array
    cdef cnp.int64_t[::1] pixel_starts = pixel_starts_array
    cdef int[::1] step_of = step_of_array
    cdef signed char[::1] sign_of = sign_of_array
    cdef short no_index = 0
    cdef signed char no_sign = 0
    cdef const short* index = &indices[0] if indices.shape[0] else &no_index
    cdef const signed char* sign = &signs[0] if signs.shape[0] else &no_sign
    cdef floating[:, ::1] columns = np.empty((n_logits, n_hidden), dtype=dtype)
    cdef floating* out_w2 = &grad_w2[0, 0]
    with nogil:
        logit_columns(&w2[0, 0], n_hidden, n_logits, &columns[0, 0])
        if parts == 1:  # serial: no OpenMP call at all
            _hidden_gradients(&starts[0], index, sign, &grad_logits[0, 0], &w1[0, 0], &columns[0, 0], n_hidden,
                              n_logits, &scratch[0, 0], &grad_h[0, 0], &partial[0, 0], 0, n)
        else:
            for part in prange(parts, schedule='static', num_threads=parts):
                _hidden_gradients(&starts[0], index, sign, &grad_logits[0, 0], &w1[0, 0], &columns[0, 0], n_hidden,
                                  n_logits, &scratch[part, 0], &grad_h[0, 0], &partial[part, 0],
                                  part_start(n, part, parts), part_start(n, part + 1, parts))
        _sort_by_pixel(&starts[0], index, sign, n, n_inputs, &pixel_starts[0], &step_of[0], &sign_of[0])
        # The inputs are all read: now the in-place outputs.
        for part in range(parts):  # the partial sums, transposed back
            for j in range(n_hidden):
                for k in range(n_logits):
                    out_w2[j * n_logits + k] += partial[part, k * n_hidden + j]
        if parts == 1:
            _pixel_gradients(&pixel_starts[0], &step_of[0], &sign_of[0], &grad_h[0, 0], n_hidden, &grad_w1[0, 0],
                             0, n_inputs)
        else:
            for part in prange(parts, schedule='static', num_threads=parts):
                _pixel_gradients(&pixel_starts[0], &step_of[0], &sign_of[0], &grad_h[0, 0], n_hidden,
                                 &grad_w1[0, 0], part_start(n_inputs, part, parts),
                                 part_start(n_inputs, part + 1, parts))
