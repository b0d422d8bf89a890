# Atari frame preprocessing for Pong, as in the classic "Pong from pixels" agent, and
# the trainer's per-step input: the difference of consecutive preprocessed frames.
#
# Design: one pass per frame reads only the pixels it keeps (rows 35..194, every
# 2nd row and column, red channel) and writes 0/1 float32 directly: no crop copy,
# no boolean masks. Frames are split over threads when there are several.
# pong_difference fuses preprocessing, the difference with each env's previous
# frame (kept as 0/1 bytes) and its update into that same pass, and emits int8:
# the ternary input the sparse route of mlp_forward reads 4x faster than float32.
from cython.parallel cimport prange
cimport numpy as cnp
import numpy as np
from cython cimport floating
from libc.math cimport exp
from libc.string cimport memcpy, memset

from _common cimport sigmoid_

cnp.import_array()

cdef enum:
    TOP = 35
    OUT_SIDE = 80
    BACKGROUND_A = 144
    BACKGROUND_B = 109


cdef enum:
    ROW_BYTES = 160 * 3
    FRAME_BYTES = 210 * ROW_BYTES
    INPUT_SIZE = OUT_SIDE * OUT_SIDE
    PARALLEL_MIN_ROWS = 256  # sparse rows (steps) below which the sparse net runs serial
    UP = 2     # Pong's minimal action set: RIGHT moves the paddle up...
    DOWN = 3   # ...LEFT down...
    NOOP = 0   # ...and NOOP leaves it
    SOFTMAX_ACTIONS = 3  # a net with w2 (H, 3): a softmax over down, up, stay


# The ALE action of each action code an episode stores: 0 down, 1 up (a one-logit net's
# Bernoulli), 2 stay.
cdef int ACTION_CODES[3]
ACTION_CODES[:] = [DOWN, UP, NOOP]


cdef inline void _object_row(const unsigned char* row, unsigned char* now) noexcept nogil:
    """now = 1 for the paddles' and ball's pixels of one kept row (80 values), 0 for black and
    the two background shades. The stride-6 gather of the red bytes is scalar; the comparisons
    then run on 80 contiguous bytes, which vectorise."""
    cdef unsigned char red[OUT_SIDE]
    cdef Py_ssize_t c
    for c in range(OUT_SIDE):
        red[c] = row[6 * c]  # red channel of every 2nd pixel
    for c in range(OUT_SIDE):
        now[c] = (red[c] != 0) & (red[c] != BACKGROUND_A) & (red[c] != BACKGROUND_B)


cdef inline void _preprocess_frame(const unsigned char* frame, float* out) noexcept nogil:
    cdef Py_ssize_t r, c
    cdef unsigned char now[OUT_SIDE]
    for r in range(OUT_SIDE):
        _object_row(frame + (TOP + 2 * r) * ROW_BYTES, now)
        for c in range(OUT_SIDE):
            out[r * OUT_SIDE + c] = now[c]


def _check_frames(const unsigned char[:, :, :, ::1] frames, const unsigned char[:, ::1] previous=None,
                  const cnp.intp_t[::1] rows=None, const unsigned char[::1] fresh=None):
    """The compiled loops index raw memory with Pong's fixed sizes: check them at every entry."""
    cdef Py_ssize_t i
    if frames.shape[1] != 210 or frames.shape[2] != 160 or frames.shape[3] != 3:
        raise ValueError(f"frames must have shape (N, 210, 160, 3), not {tuple(frames.shape)[:4]}")
    if previous is None:
        return
    if previous.shape[1] != INPUT_SIZE or rows.shape[0] != frames.shape[0] or fresh.shape[0] != frames.shape[0]:
        raise ValueError("previous must have shape (E, 6400), rows and fresh one entry per frame")
    seen_array = np.zeros(previous.shape[0], dtype=np.uint8)
    cdef unsigned char[::1] seen = seen_array
    for i in range(rows.shape[0]):
        if rows[i] < 0 or rows[i] >= previous.shape[0]:
            raise ValueError(f"rows must be in [0, {previous.shape[0]}), not {rows[i]}")
        if seen[rows[i]]:
            raise ValueError("rows must not repeat (each names the env of one frame)")
        seen[rows[i]] = 1


cdef inline void _preprocess_frames(const unsigned char* pixels, float* processed, Py_ssize_t start,
                                    Py_ssize_t stop) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(start, stop):
        _preprocess_frame(pixels + i * FRAME_BYTES, processed + i * INPUT_SIZE)


def pong_preprocess(const unsigned char[:, :, :, ::1] frames, int n_threads):
    cdef Py_ssize_t part, n = frames.shape[0]
    _check_frames(frames)
    out_array = np.empty((n, OUT_SIDE * OUT_SIDE), dtype=np.float32)
    cdef float[:, ::1] out = out_array
    if n == 0:
        return out_array
    cdef const unsigned char* pixels = &frames[0, 0, 0, 0]
    cdef float* processed = &out[0, 0]
    cdef int threads = n_threads if n >= 4 else 1
    with nogil:
        if threads == 1:  # no OpenMP call at all: it costs ~1 us even when told not to start threads
            _preprocess_frames(pixels, processed, 0, n)
        else:
            for part in prange(threads, schedule='static', num_threads=threads):
                _preprocess_frames(pixels, processed, n * part // threads, n * (part + 1) // threads)
    return out_array


cdef inline void _difference_row(const unsigned char* row, unsigned char* previous, signed char* change) noexcept nogil:
    """change = preprocess(one kept row) - previous (80 values); previous = preprocess(the row)."""
    cdef unsigned char now[OUT_SIDE]
    cdef Py_ssize_t c
    _object_row(row, now)
    for c in range(OUT_SIDE):
        change[c] = <signed char>now[c] - <signed char>previous[c]
        previous[c] = now[c]


cdef inline void _difference_frame(const unsigned char* frame, unsigned char* previous, bint fresh,
                                   signed char* out) noexcept nogil:
    """out = preprocess(frame) - previous (0 if fresh); previous = preprocess(frame)."""
    cdef Py_ssize_t r
    for r in range(OUT_SIDE):
        _difference_row(frame + (TOP + 2 * r) * ROW_BYTES, previous + r * OUT_SIDE, out + r * OUT_SIDE)
    if fresh:
        memset(out, 0, OUT_SIDE * OUT_SIDE)


cdef inline void _difference_frames(const unsigned char* pixels, unsigned char* previous, const cnp.intp_t* rows,
                                    const unsigned char* fresh, signed char* differences, Py_ssize_t start,
                                    Py_ssize_t stop) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(start, stop):
        _difference_frame(pixels + i * FRAME_BYTES, previous + rows[i] * INPUT_SIZE, fresh[i],
                          differences + i * INPUT_SIZE)


def pong_difference(const unsigned char[:, :, :, ::1] frames, unsigned char[:, ::1] previous,
                    const cnp.intp_t[::1] rows, const unsigned char[::1] fresh, int n_threads):
    cdef Py_ssize_t part, n = frames.shape[0]
    _check_frames(frames, previous, rows, fresh)
    out_array = np.empty((n, OUT_SIDE * OUT_SIDE), dtype=np.int8)
    cdef signed char[:, ::1] out = out_array
    if n == 0:
        return out_array
    cdef const unsigned char* pixels = &frames[0, 0, 0, 0]
    cdef unsigned char* last = &previous[0, 0]
    cdef signed char* differences = &out[0, 0]
    cdef int threads = n_threads if n >= 4 else 1
    with nogil:
        if threads == 1:
            _difference_frames(pixels, last, &rows[0], &fresh[0], differences, 0, n)
        else:
            for part in prange(threads, schedule='static', num_threads=threads):
                _difference_frames(pixels, last, &rows[0], &fresh[0], differences, n * part // threads,
                                   n * (part + 1) // threads)
    return out_array


# ---- sparse inputs end to end: the Pong trainer's step and its episode gradient ----
#
# A difference frame has ~26 nonzero pixels of 6400, each -1 or +1, so a step's input is
# kept as those pixels' indices (int16) and signs (int8), CSR-like: step t of a stream owns
# indices[starts[t]:starts[t + 1]]. With the frame as well (w1 of 12800 rows), the ~34 object
# pixels of the frame itself follow as indices 6400 + p, each +1: a difference alone hides a
# paddle that did not move, the frame shows where it is. The net's input product is then a signed sum of ~26 rows
# of w1, its gradient a signed scatter into ~26 rows of grad_w1, and h is recomputed from
# the indices in the backward rather than stored (the same float operations in the same
# order, so the same h).


cdef inline Py_ssize_t _sparse_difference_frame(const unsigned char* frame, unsigned char* previous, bint fresh,
                                                bint with_frame, short* indices, signed char* signs) noexcept nogil:
    """Writes the nonzeros of preprocess(frame) - previous (none if fresh) as indices and signs,
    then with_frame those of preprocess(frame) as indices INPUT_SIZE + p, sign +1; returns their
    count; previous = preprocess(frame). Room for INPUT_SIZE (2 INPUT_SIZE with_frame) entries is needed."""
    cdef Py_ssize_t r, c, p, word, count = 0
    cdef signed char change[OUT_SIDE]
    cdef unsigned long long bits
    for r in range(OUT_SIDE):
        _difference_row(frame + (TOP + 2 * r) * ROW_BYTES, previous + r * OUT_SIDE, change)
        if fresh:
            continue
        for word in range(OUT_SIDE // 8):  # most rows do not change: skip them 8 pixels at a time
            memcpy(&bits, change + 8 * word, 8)
            if bits == 0:
                continue
            for c in range(8 * word, 8 * word + 8):
                if change[c] != 0:
                    indices[count] = <short>(r * OUT_SIDE + c)
                    signs[count] = change[c]
                    count += 1
    if with_frame:
        for word in range(INPUT_SIZE // 8):
            memcpy(&bits, previous + 8 * word, 8)
            if bits == 0:
                continue
            for p in range(8 * word, 8 * word + 8):
                if previous[p]:
                    indices[count] = <short>(INPUT_SIZE + p)
                    signs[count] = 1
                    count += 1
    return count


cdef inline void _sparse_hidden(const short* indices, const signed char* signs, Py_ssize_t count,
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


cdef inline floating _dot(const floating* a, const floating* b, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t j
    cdef floating total = 0
    for j in range(n):
        total += a[j] * b[j]
    return total


cdef inline void _output(const floating* h, const floating* w2, Py_ssize_t n_hidden, Py_ssize_t n_logits,
                         floating* logits) noexcept nogil:
    """logits (n_logits,) = h @ w2, w2 (n_hidden, n_logits) row-major, n_logits 1 or
    SOFTMAX_ACTIONS: one dot, or three sums in registers over w2 read once in order (a loop
    over k with the sums kept in `logits`, which may alias w2, made pong_step's three-action row
    of pgcore-bench 84 us instead of 44)."""
    cdef Py_ssize_t j
    cdef floating down = 0, up = 0, stay = 0
    if n_logits == 1:
        logits[0] = _dot(h, w2, n_hidden)
        return
    for j in range(n_hidden):
        down += h[j] * w2[3 * j]
        up += h[j] * w2[3 * j + 1]
        stay += h[j] * w2[3 * j + 2]
    logits[0], logits[1], logits[2] = down, up, stay


cdef inline unsigned char _sampled(const floating* logits, Py_ssize_t n_logits, double uniform) noexcept nogil:
    """The action code drawn by `uniform` in [0, 1): one logit, 1 (up) if uniform < sigmoid(logit)
    else 0; several, the first whose cumulative softmax probability passes it (in double, as the
    NumPy twin: uniform * sum(e) against the running sum of e = exp(logit - max))."""
    cdef Py_ssize_t k
    cdef floating top
    cdef double total = 0, running = 0
    cdef double exps[SOFTMAX_ACTIONS]  # each exp once: the draw runs every agent step
    if n_logits == 1:
        return uniform < <double>sigmoid_(logits[0])
    top = logits[0]
    for k in range(1, n_logits):
        if logits[k] > top:
            top = logits[k]
    for k in range(n_logits):
        exps[k] = exp(<double>(logits[k] - top))
        total += exps[k]
    for k in range(n_logits - 1):
        running += exps[k]
        if uniform * total < running:
            return <unsigned char>k
    return <unsigned char>(n_logits - 1)


def _check_csr(const cnp.int64_t[::1] starts, Py_ssize_t n_values):
    """The compiled code trusts these: starts rise from 0 and stay within the values."""
    cdef Py_ssize_t t
    if starts.shape[0] == 0 or starts[0] != 0:
        raise ValueError("starts must begin with 0")
    for t in range(starts.shape[0] - 1):
        if starts[t + 1] < starts[t]:
            raise ValueError("starts must not decrease")
    if starts[starts.shape[0] - 1] > n_values:
        raise ValueError(f"starts reaches {starts[starts.shape[0] - 1]}, past the {n_values} indices")


def _check_indices(const short[::1] indices, Py_ssize_t count, Py_ssize_t n_inputs):
    cdef Py_ssize_t k
    for k in range(count):
        if indices[k] < 0 or indices[k] >= n_inputs:
            raise ValueError(f"indices must be pixel numbers in [0, {n_inputs}), not {indices[k]}")


def pong_sparse_difference(const unsigned char[:, :, :, ::1] frames, unsigned char[:, ::1] previous,
                           const cnp.intp_t[::1] rows, const unsigned char[::1] fresh, bint with_frame):
    """(starts (B + 1,) int64, indices (nnz,) int16, signs (nnz,) int8) of the difference frames
    (followed by the frames themselves, with_frame)."""
    cdef Py_ssize_t i, n = frames.shape[0]
    _check_frames(frames, previous, rows, fresh)
    starts_array = np.zeros(n + 1, dtype=np.int64)
    indices_array = np.empty(n * INPUT_SIZE * (2 if with_frame else 1), dtype=np.int16)
    signs_array = np.empty(n * INPUT_SIZE * (2 if with_frame else 1), dtype=np.int8)
    cdef cnp.int64_t[::1] starts = starts_array
    cdef short* indices = <short*>cnp.PyArray_DATA(indices_array)
    cdef signed char* signs = <signed char*>cnp.PyArray_DATA(signs_array)
    with nogil:
        for i in range(n):
            starts[i + 1] = starts[i] + _sparse_difference_frame(
                &frames[i, 0, 0, 0], &previous[rows[i], 0], fresh[i], with_frame, indices + starts[i],
                signs + starts[i])
    return starts_array, indices_array[:starts[n]].copy(), signs_array[:starts[n]].copy()


cdef inline void _hidden_rows(const cnp.int64_t* starts, const short* indices, const signed char* signs,
                              const floating* w1, const floating* w2, Py_ssize_t n_hidden, Py_ssize_t n_logits,
                              floating* h, floating* logits, Py_ssize_t first, Py_ssize_t stop) noexcept nogil:
    """h and logits of rows first..stop-1."""
    cdef Py_ssize_t i
    for i in range(first, stop):
        _sparse_hidden(indices + starts[i], signs + starts[i], starts[i + 1] - starts[i], w1, n_hidden,
                       h + i * n_hidden)
        _output(h + i * n_hidden, w2, n_hidden, n_logits, logits + i * n_logits)


def sparse_mlp_forward(const cnp.int64_t[::1] starts, const short[::1] indices, const signed char[::1] signs,
                       const floating[:, ::1] w1, const floating[:, ::1] w2, int n_threads):
    """h = relu(x @ w1) (N, H), logits = h @ w2 (N, K) for the N sparse ternary rows of x, w2 (H, K)."""
    cdef Py_ssize_t part, n = starts.shape[0] - 1, n_hidden = w1.shape[1], n_logits = w2.shape[1]
    _check_csr(starts, indices.shape[0])
    _check_indices(indices, starts[n], w1.shape[0])
    if w2.shape[0] != n_hidden or (n_logits != 1 and n_logits != SOFTMAX_ACTIONS):
        raise ValueError("sparse_mlp_forward: shapes do not match (w2 must have 1 or 3 columns)")
    dtype = np.float32 if floating is float else np.float64
    h_array = np.zeros((n, n_hidden), dtype=dtype)
    logits_array = np.zeros((n, n_logits), dtype=dtype)
    if n == 0 or n_hidden == 0:
        return h_array, logits_array
    cdef floating[:, ::1] h = h_array
    cdef floating[:, ::1] logits = logits_array
    cdef short no_index = 0
    cdef signed char no_sign = 0
    cdef const short* index = &indices[0] if indices.shape[0] else &no_index
    cdef const signed char* sign = &signs[0] if signs.shape[0] else &no_sign
    cdef int threads = n_threads if n >= PARALLEL_MIN_ROWS else 1
    with nogil:
        if threads == 1:  # no OpenMP call at all: it costs ~1 us even when told not to start threads
            _hidden_rows(&starts[0], index, sign, &w1[0, 0], &w2[0, 0], n_hidden, n_logits, &h[0, 0],
                         &logits[0, 0], 0, n)
        else:
            for part in prange(threads, schedule='static', num_threads=threads):
                _hidden_rows(&starts[0], index, sign, &w1[0, 0], &w2[0, 0], n_hidden, n_logits, &h[0, 0],
                             &logits[0, 0], n * part // threads, n * (part + 1) // threads)
    return h_array, logits_array


cdef inline void _hidden_gradients(const cnp.int64_t* starts, const short* indices, const signed char* signs,
                                   const floating* grad_logits, const floating* w1, const floating* w2,
                                   Py_ssize_t n_hidden, Py_ssize_t n_logits, floating* h, floating* grad_h,
                                   floating* grad_w2, Py_ssize_t first, Py_ssize_t stop) noexcept nogil:
    """For steps first..stop-1: grad_h rows, and their part of grad_w2 (n_hidden, n_logits) added to
    grad_w2 (h: scratch); n_logits 1 or SOFTMAX_ACTIONS, each with its own loop (the step's
    three gradients in registers)."""
    cdef Py_ssize_t t, j
    cdef floating grad_logit, grad_down, grad_up, grad_stay, grad_unit
    for t in range(first, stop):
        _sparse_hidden(indices + starts[t], signs + starts[t], starts[t + 1] - starts[t], w1, n_hidden, h)
        if n_logits == 1:  # the one-logit loop vectorises
            grad_logit = grad_logits[t]
            for j in range(n_hidden):
                grad_w2[j] += grad_logit * h[j]
                grad_h[t * n_hidden + j] = grad_logit * w2[j] if h[j] > 0 else 0
            continue
        grad_down, grad_up, grad_stay = grad_logits[3 * t], grad_logits[3 * t + 1], grad_logits[3 * t + 2]
        for j in range(n_hidden):
            grad_w2[3 * j] += grad_down * h[j]
            grad_w2[3 * j + 1] += grad_up * h[j]
            grad_w2[3 * j + 2] += grad_stay * h[j]
            grad_unit = grad_down * w2[3 * j] + grad_up * w2[3 * j + 1] + grad_stay * w2[3 * j + 2]
            grad_h[t * n_hidden + j] = grad_unit if h[j] > 0 else 0


cdef inline void _pixel_gradients(const cnp.int64_t* pixel_starts, const int* step_of, const signed char* sign_of,
                                  const floating* grad_h, Py_ssize_t n_hidden, floating* grad_w1, Py_ssize_t first,
                                  Py_ssize_t stop) noexcept nogil:
    """Rows first..stop-1 of grad_w1: each gathers the grad_h rows of the steps where its pixel changed."""
    cdef Py_ssize_t p, k, j
    cdef floating sign
    cdef floating* g_row
    cdef const floating* gh_row
    for p in range(first, stop):
        g_row = grad_w1 + p * n_hidden
        for k in range(pixel_starts[p], pixel_starts[p + 1]):
            gh_row = grad_h + <Py_ssize_t>step_of[k] * n_hidden
            sign = sign_of[k]
            for j in range(n_hidden):
                g_row[j] += sign * gh_row[j]


def sparse_mlp_backward(const cnp.int64_t[::1] starts, const short[::1] indices, const signed char[::1] signs,
                        const floating[:, ::1] grad_logits, const floating[:, ::1] w1, const floating[:, ::1] w2,
                        floating[:, ::1] grad_w1, floating[:, ::1] grad_w2, int n_threads):
    """grad_w1 += x.T @ grad_h, grad_w2 += h.T @ grad_logits (in place; h recomputed); w2,
    grad_w2 (H, K), grad_logits (N, K).

    Two passes, each split over threads for long episodes. By step: h (recomputed), grad_h,
    and grad_w2 (each thread its own partial sum, added in thread order). By pixel: the
    nonzeros sorted by pixel (a counting sort, steps in order), so each row of grad_w1 is read
    and written once, by one thread, while it gathers the grad_h rows of its steps."""
    cdef Py_ssize_t t, k, p, part, position, n = starts.shape[0] - 1, n_hidden = w1.shape[1]
    cdef Py_ssize_t n_inputs = w1.shape[0], n_logits = w2.shape[1]
    _check_csr(starts, indices.shape[0])
    _check_indices(indices, starts[n], w1.shape[0])
    if grad_logits.shape[0] != n or grad_w1.shape[0] != w1.shape[0] or grad_w1.shape[1] != n_hidden \
            or grad_w2.shape[0] != n_hidden or w2.shape[0] != n_hidden or grad_logits.shape[1] != n_logits \
            or grad_w2.shape[1] != n_logits or (n_logits != 1 and n_logits != SOFTMAX_ACTIONS):
        raise ValueError("sparse_mlp_backward: shapes do not match (w2 must have 1 or 3 columns)")
    if n == 0 or n_hidden == 0:
        return
    cdef int threads = n_threads if n >= PARALLEL_MIN_ROWS else 1
    dtype = np.float32 if floating is float else np.float64
    nnz = starts[n]
    grad_h_array = np.empty((n, n_hidden), dtype=dtype)
    scratch_array = np.empty((threads, n_hidden), dtype=dtype)             # h, per thread
    partial_array = np.zeros((threads, n_hidden * n_logits), dtype=dtype)  # grad_w2, per thread
    pixel_starts_array = np.zeros(n_inputs + 1, dtype=np.int64)
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
    with nogil:
        if threads == 1:  # no OpenMP call at all: it costs ~1 us even when told not to start threads
            _hidden_gradients(&starts[0], index, sign, &grad_logits[0, 0], &w1[0, 0], &w2[0, 0], n_hidden,
                              n_logits, &scratch[0, 0], &grad_h[0, 0], &partial[0, 0], 0, n)
        else:
            for part in prange(threads, schedule='static', num_threads=threads):
                _hidden_gradients(&starts[0], index, sign, &grad_logits[0, 0], &w1[0, 0], &w2[0, 0], n_hidden,
                                  n_logits, &scratch[part, 0], &grad_h[0, 0], &partial[part, 0],
                                  n * part // threads, n * (part + 1) // threads)
        for part in range(threads):
            for k in range(n_hidden * n_logits):
                (&grad_w2[0, 0])[k] += partial[part, k]
        for k in range(nnz):  # counting sort of the nonzeros by pixel, steps in order within a pixel
            pixel_starts[index[k] + 1] += 1
        for p in range(n_inputs):
            pixel_starts[p + 1] += pixel_starts[p]
        for t in range(n):
            for k in range(starts[t], starts[t + 1]):
                position = pixel_starts[index[k]]
                pixel_starts[index[k]] += 1
                step_of[position] = <int>t
                sign_of[position] = sign[k]
        for p in range(n_inputs - 1, 0, -1):  # the fill moved each start to the next pixel's: move back
            pixel_starts[p] = pixel_starts[p - 1]
        pixel_starts[0] = 0
        if threads == 1:
            _pixel_gradients(&pixel_starts[0], &step_of[0], &sign_of[0], &grad_h[0, 0], n_hidden, &grad_w1[0, 0],
                             0, n_inputs)
        else:
            for part in prange(threads, schedule='static', num_threads=threads):
                _pixel_gradients(&pixel_starts[0], &step_of[0], &sign_of[0], &grad_h[0, 0], n_hidden,
                                 &grad_w1[0, 0], n_inputs * part // threads, n_inputs * (part + 1) // threads)


cdef void _steps(const unsigned char[:, :, :, ::1] frames, unsigned char[:, ::1] previous,
                 const cnp.intp_t[::1] rows, const unsigned char[::1] fresh, const floating[:, ::1] w1,
                 const floating[:, ::1] w2, const double[::1] uniforms, cnp.int64_t[::1] lengths,
                 cnp.int64_t[:, ::1] starts, short[:, ::1] indices, signed char[:, ::1] signs,
                 floating[:, :, ::1] logits, unsigned char[:, ::1] actions, floating[:, ::1] h, int[::1] out,
                 Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    """pong_step for frames start..stop-1 (each names a different env)."""
    cdef Py_ssize_t i, e, t, count, n_hidden = w1.shape[1], n_logits = w2.shape[1]
    cdef bint with_frame = w1.shape[0] == 2 * INPUT_SIZE
    for i in range(start, stop):
        e = rows[i]
        t = lengths[e]
        count = _sparse_difference_frame(&frames[i, 0, 0, 0], &previous[e, 0], fresh[i], with_frame,
                                         &indices[e, starts[e, t]], &signs[e, starts[e, t]])
        starts[e, t + 1] = starts[e, t] + count
        _sparse_hidden(&indices[e, starts[e, t]], &signs[e, starts[e, t]], count, &w1[0, 0], n_hidden, &h[i, 0])
        _output(&h[i, 0], &w2[0, 0], n_hidden, n_logits, &logits[e, t, 0])
        actions[e, t] = _sampled(&logits[e, t, 0], n_logits, uniforms[i])
        out[i] = ACTION_CODES[actions[e, t]]
        lengths[e] = t + 1


def pong_step(const unsigned char[:, :, :, ::1] frames, unsigned char[:, ::1] previous,
              const cnp.intp_t[::1] rows, const unsigned char[::1] fresh,
              const floating[:, ::1] w1, const floating[:, ::1] w2, const double[::1] uniforms,
              cnp.int64_t[::1] lengths, cnp.int64_t[:, ::1] starts, short[:, ::1] indices,
              signed char[:, ::1] signs, floating[:, :, ::1] logits, unsigned char[:, ::1] actions, int n_threads):
    """One trainer step for the B envs `rows`: difference frames (and the frames, when w1 has
    2 INPUT_SIZE rows) -> sparse rows appended to each env's episode -> logits (w2 (H, 1): up if
    uniform < sigmoid(logit); w2 (H, 3): sampled from the softmax) -> the ALE actions (B,) int32."""
    cdef Py_ssize_t i, e, t, part, n = frames.shape[0], n_hidden = w1.shape[1], n_inputs = w1.shape[0]
    cdef Py_ssize_t steps = logits.shape[1], capacity = indices.shape[1], n_logits = w2.shape[1]
    _check_frames(frames, previous, rows, fresh)
    n_envs = previous.shape[0]
    if ((n_inputs != INPUT_SIZE and n_inputs != 2 * INPUT_SIZE) or w2.shape[0] != n_hidden
            or (n_logits != 1 and n_logits != SOFTMAX_ACTIONS) or logits.shape[2] != n_logits
            or uniforms.shape[0] != n
            or lengths.shape[0] != n_envs or starts.shape[0] != n_envs or indices.shape[0] != n_envs
            or signs.shape[0] != n_envs or logits.shape[0] != n_envs or actions.shape[0] != n_envs
            or starts.shape[1] != steps + 1 or actions.shape[1] != steps or signs.shape[1] != capacity):
        raise ValueError("pong_step: shapes do not match")
    for i in range(n):
        e = rows[i]
        t = lengths[e]
        if t < 0 or t >= steps or starts[e, t] < 0 or starts[e, t] > capacity - n_inputs:
            raise ValueError(f"pong_step: env {e} has no room for a step (step {t} of {steps}, "
                             f"{capacity - starts[e, t]} free indices; {n_inputs} needed)")
    out_array = np.empty(n, dtype=np.int32)
    scratch = np.empty((max(n, 1), n_hidden), dtype=np.float32 if floating is float else np.float64)
    cdef int[::1] out = out_array
    cdef floating[:, ::1] h = scratch
    cdef int threads = n_threads if n >= 4 else 1
    if n == 0:
        return out_array
    with nogil:
        if threads == 1:  # no OpenMP call at all: it costs ~1 us even when told not to start threads
            _steps(frames, previous, rows, fresh, w1, w2, uniforms, lengths, starts, indices, signs, logits, actions,
                   h, out, 0, n)
        else:
            for part in prange(threads, schedule='static', num_threads=threads):
                _steps(frames, previous, rows, fresh, w1, w2, uniforms, lengths, starts, indices, signs, logits,
                       actions, h, out, n * part // threads, n * (part + 1) // threads)
    return out_array
