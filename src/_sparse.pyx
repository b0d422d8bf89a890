# The Pong net on sparse ternary rows: sparse_mlp_forward and sparse_mlp_backward, the trainer's
# batch forward and gradient (pong_step, in _atari, runs the forward of each new step).
#
# A difference frame has ~26 nonzero pixels of 6400, each -1 or +1, so a step's input is kept
# as those pixels' indices (int16) and signs (int8), CSR-like: row t owns
# indices[starts[t]:starts[t + 1]]. With the frame as well (w1 of 12800 rows), the ~34 object
# pixels of the frame itself follow as indices 6400 + p, each +1. The net's input product is
# then a signed sum of ~26 rows of w1, its gradient a signed scatter into ~26 rows of grad_w1.
# The backward takes the forward's h where the caller kept it (the trainer's learner, which
# runs the forward on the same minibatch just before), or recomputes it from the indices (the
# same float operations in the same order, so the same h).
#
# These functions are private: only pgcore/kernels.py calls them, after pgcore._validate has
# checked every argument (the same checks as the NumPy twins'). They trust what they are given:
# starts rising from 0 and within indices, indices in [0, len(w1)), signs -1 or +1, w2 with 1 or
# 3 columns, every shape matching, the in-place outputs C-contiguous and writeable; they do not
# check it again. They read the caller's index arrays (and the backward's h) before writing any
# output, so an output that overlaps an input cannot move a write out of bounds.
from cython.parallel cimport prange
cimport numpy as cnp
import numpy as np
from cython cimport floating
from libc.stdlib cimport calloc, free, malloc

from _common cimport parallel_parts, part_start
from _sparse_net cimport (add_packed_steps, logit_columns, output_logits, packed_step, pgcore_rows_level,
                         pgcore_rows_set_level, sparse_hidden)

cnp.import_array()

cdef enum:
    PARALLEL_MIN_ROWS = 256  # sparse rows (steps) below which the sparse net runs serial
    PIXELS_AHEAD = 2  # the backward prefetches the row of grad_w1 this many touched pixels ahead


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
    if n == 0 or n_hidden == 0:  # (no hidden units: logits of 0)
        return np.zeros((n, n_hidden), dtype=dtype), np.zeros((n, n_logits), dtype=dtype)
    h_array = np.empty((n, n_hidden), dtype=dtype)  # every value written below: not zeroed first
    logits_array = np.empty((n, n_logits), dtype=dtype)
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
                                   const floating* given_h, Py_ssize_t n_hidden, Py_ssize_t n_logits,
                                   floating* scratch, floating* grad_h, floating* grad_w2, Py_ssize_t first,
                                   Py_ssize_t stop) noexcept nogil:
    """For steps first..stop-1: grad_h rows, and their part of grad_w2 added to grad_w2. h: the
    rows of given_h (the forward's), or where given_h is NULL recomputed into scratch, row by row.
    n_logits 1 to MAX_ACTIONS; w2 and grad_w2 come transposed, (n_logits, n_hidden) (w2's
    columns, logit_columns), so that with several logits too the loops over units read and write
    contiguously and vectorise (with (n_hidden, 3) it ran scalar: a fifth of the backward's time
    at 200 units). Three logits (Pong's) have loops of their own; any other number adds each
    logit's terms in turn, in the same order."""
    cdef Py_ssize_t t, j, k
    cdef floating grad_logit, grad_down, grad_up, grad_stay, grad_unit
    cdef floating* grad_row
    cdef const floating* h
    for t in range(first, stop):
        if given_h != NULL:
            h = given_h + t * n_hidden
        else:
            sparse_hidden(indices + starts[t], signs + starts[t], starts[t + 1] - starts[t], starts[stop] - starts[t],
                          w1, n_hidden, scratch)
            h = scratch
        grad_row = grad_h + t * n_hidden
        if n_logits == 1:  # one loop an output: GCC vectorises these, not one loop writing both (or all four)
            grad_logit = grad_logits[t]
            for j in range(n_hidden):
                grad_w2[j] += grad_logit * h[j]
            for j in range(n_hidden):
                grad_unit = grad_logit * w2[j]  # outside the select, or GCC sees a branch and does not vectorise
                grad_row[j] = grad_unit if h[j] > 0 else 0
            continue
        if n_logits != 3:
            for k in range(n_logits):
                grad_logit = grad_logits[n_logits * t + k]
                for j in range(n_hidden):
                    grad_w2[k * n_hidden + j] += grad_logit * h[j]
            for j in range(n_hidden):
                grad_unit = grad_logits[n_logits * t] * w2[j]
                for k in range(1, n_logits):
                    grad_unit = grad_unit + grad_logits[n_logits * t + k] * w2[k * n_hidden + j]
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


cdef extern from *:
    """
    /* The number of the lowest set bit of a nonzero word. */
    static inline int pgcore_lowest_bit(unsigned long long word) {
    #if defined(__GNUC__) || defined(__clang__)
        return __builtin_ctzll(word);
    #else
        int bit = 0;
        while (!(word & 1)) { word >>= 1; bit++; }
        return bit;
    #endif
    }
    """
    int pgcore_lowest_bit(unsigned long long word) nogil


cdef extern from *:
    """
    /* Asks for the cache lines of bytes [p, p + size) ahead of a read and write. */
    static inline void pgcore_prefetch_for_write(const void* p, Py_ssize_t size) {
    #if defined(__GNUC__) || defined(__clang__)
        Py_ssize_t b;
        for (b = 0; b < size; b += 64) __builtin_prefetch((const char*)p + b, 1);
    #else
        (void)p; (void)size;
    #endif
    }
    """
    void pgcore_prefetch_for_write(const void* p, Py_ssize_t size) nogil


cdef inline Py_ssize_t _sort_by_pixel(const cnp.int64_t* starts, const short* indices, const signed char* signs,
                                      Py_ssize_t n, Py_ssize_t n_inputs, Py_ssize_t* cursor,
                                      unsigned long long* seen, int* pixels, Py_ssize_t* pixel_starts,
                                      int* step_of) noexcept nogil:
    """A counting sort of the nonzeros by pixel, steps in order within a pixel, over the pixels
    the rows touch only: returns their number m, pixels[:m] those pixels (rising), and the q-th's
    steps step_of[pixel_starts[q]:pixel_starts[q + 1]], each with its sign (packed_step: one
    scattered write a nonzero, not two). cursor (n_inputs) and seen ((n_inputs + 63) // 64 words)
    come zeroed. Nothing here loops over all n_inputs pixels: a bit a pixel in `seen` finds the
    touched ones (a scan of the 12800 counts, and of 12800 pixels for work, took ~17 us a call,
    the value net's backward of 512 steps ~7% of its time)."""
    cdef Py_ssize_t t, k, w, m = 0, position = 0, count
    cdef int p
    cdef unsigned long long word
    for k in range(starts[n]):
        p = indices[k]
        cursor[p] += 1
        seen[p >> 6] |= (<unsigned long long>1) << (p & 63)
    for w in range((n_inputs + 63) // 64):  # each touched pixel, rising: where its steps start
        word = seen[w]
        while word:
            p = <int>(w * 64 + pgcore_lowest_bit(word))
            word &= word - 1
            count = cursor[p]
            cursor[p] = position
            pixels[m] = p
            pixel_starts[m] = position
            position += count
            m += 1
    pixel_starts[m] = position
    for t in range(n):
        for k in range(starts[t], starts[t + 1]):
            p = indices[k]
            position = cursor[p]
            cursor[p] = position + 1
            step_of[position] = packed_step(t, signs[k])
    return m


cdef inline void _pixel_gradients(const int* pixels, const Py_ssize_t* pixel_starts, const int* step_of,
                                  const floating* grad_h, Py_ssize_t n_hidden, floating* grad_w1, Py_ssize_t first,
                                  Py_ssize_t stop) noexcept nogil:
    """Touched pixels first..stop-1 (_sort_by_pixel's numbering): each row of grad_w1 gathers the
    grad_h rows of the steps where its pixel changed (in step order, prefetching the next pixels'
    steps)."""
    cdef Py_ssize_t q
    for q in range(first, stop):
        if q + PIXELS_AHEAD < stop:
            pgcore_prefetch_for_write(grad_w1 + pixels[q + PIXELS_AHEAD] * n_hidden, n_hidden * sizeof(floating))
        add_packed_steps(step_of + pixel_starts[q], pixel_starts[q + 1] - pixel_starts[q],
                         pixel_starts[stop] - pixel_starts[q], grad_h, n_hidden, grad_w1 + pixels[q] * n_hidden)


def sparse_mlp_backward(const cnp.int64_t[::1] starts, const short[::1] indices, const signed char[::1] signs,
                        const floating[:, ::1] grad_logits, const floating[:, ::1] w1, const floating[:, ::1] w2,
                        floating[:, ::1] grad_w1, floating[:, ::1] grad_w2, int n_threads, h=None):
    """grad_w1 += x.T @ grad_h, grad_w2 += h.T @ grad_logits (in place); w2, grad_w2 (H, K),
    grad_logits (N, K); h (N, H) the forward's (sparse_mlp_forward of these rows and this w1:
    taken as it is), or None to recompute it from the rows (the same bits).

    Two passes, each split over threads for long episodes. By step: h (given, or recomputed),
    grad_h, and grad_w2 (each thread its own partial sum, added in thread order). By pixel: the
    nonzeros sorted by pixel (a counting sort, steps in order), so each row of grad_w1 is read
    and written once, by one thread, while it gathers the grad_h rows of its steps. Every read
    of starts, indices, signs and h comes before the first write to grad_w1 or grad_w2. The
    scratch memory is malloc'd, not NumPy arrays and their memoryviews: with the sort's pixel scans
    gone too, a call of one row takes ~5 us, not ~28."""
    cdef Py_ssize_t j, k, part, m, n = starts.shape[0] - 1, n_hidden = w1.shape[1]
    cdef Py_ssize_t n_inputs = w1.shape[0], n_logits = w2.shape[1]
    if n == 0 or n_hidden == 0:
        return
    cdef int parts = parallel_parts(n, PARALLEL_MIN_ROWS, n_threads)
    cdef Py_ssize_t nnz = starts[n]
    cdef const floating[:, ::1] forward_h
    cdef const floating* given_h = NULL
    if h is not None:
        forward_h = h
        given_h = &forward_h[0, 0]
    cdef short no_index = 0
    cdef signed char no_sign = 0
    cdef const short* index = &indices[0] if indices.shape[0] else &no_index
    cdef const signed char* sign = &signs[0] if signs.shape[0] else &no_sign
    cdef floating* out_w2 = &grad_w2[0, 0]
    # scratch: grad_h (n, H); h, per part (when recomputed); grad_w2 (transposed), per part;
    # w2's columns; and the sort's
    cdef floating* grad_h = <floating*>malloc(n * n_hidden * sizeof(floating))
    cdef floating* scratch = <floating*>malloc(parts * n_hidden * sizeof(floating))
    cdef floating* partial = <floating*>calloc(parts * n_hidden * n_logits, sizeof(floating))
    cdef floating* columns = <floating*>malloc(n_logits * n_hidden * sizeof(floating))
    cdef Py_ssize_t* cursor = <Py_ssize_t*>calloc(n_inputs, sizeof(Py_ssize_t))
    cdef unsigned long long* seen = <unsigned long long*>calloc((n_inputs + 63) // 64, sizeof(unsigned long long))
    cdef int* pixels = <int*>malloc(min(nnz, n_inputs) * sizeof(int) + 1)
    cdef Py_ssize_t* pixel_starts = <Py_ssize_t*>malloc((min(nnz, n_inputs) + 1) * sizeof(Py_ssize_t))
    cdef int* step_of = <int*>malloc(nnz * sizeof(int) + 1)
    try:
        if (grad_h == NULL or scratch == NULL or partial == NULL or columns == NULL or cursor == NULL
                or seen == NULL or pixels == NULL or pixel_starts == NULL or step_of == NULL):
            raise MemoryError(f"sparse_mlp_backward: no memory for the scratch of {n} steps, {nnz} nonzeros")
        with nogil:
            logit_columns(&w2[0, 0], n_hidden, n_logits, columns)
            if parts == 1:  # serial: no OpenMP call at all
                _hidden_gradients(&starts[0], index, sign, &grad_logits[0, 0], &w1[0, 0], columns, given_h,
                                  n_hidden, n_logits, scratch, grad_h, partial, 0, n)
            else:
                for part in prange(parts, schedule='static', num_threads=parts):
                    _hidden_gradients(&starts[0], index, sign, &grad_logits[0, 0], &w1[0, 0], columns, given_h,
                                      n_hidden, n_logits, scratch + part * n_hidden, grad_h,
                                      partial + part * n_hidden * n_logits, part_start(n, part, parts),
                                      part_start(n, part + 1, parts))
            m = _sort_by_pixel(&starts[0], index, sign, n, n_inputs, cursor, seen, pixels, pixel_starts, step_of)
            # The inputs are all read: now the in-place outputs.
            for part in range(parts):  # the partial sums, transposed back
                for j in range(n_hidden):
                    for k in range(n_logits):
                        out_w2[j * n_logits + k] += partial[part * n_hidden * n_logits + k * n_hidden + j]
            if parts == 1:
                _pixel_gradients(pixels, pixel_starts, step_of, grad_h, n_hidden, &grad_w1[0, 0], 0, m)
            else:
                for part in prange(parts, schedule='static', num_threads=parts):
                    _pixel_gradients(pixels, pixel_starts, step_of, grad_h, n_hidden, &grad_w1[0, 0],
                                     part_start(m, part, parts), part_start(m, part + 1, parts))
    finally:
        free(grad_h)
        free(scratch)
        free(partial)
        free(columns)
        free(cursor)
        free(seen)
        free(pixels)
        free(pixel_starts)
        free(step_of)
