# Atari frame preprocessing for Pong, as in the classic "Pong from pixels" agent, and
# the trainer's per-step input: the difference of consecutive preprocessed frames.
#
# Design: one pass per frame reads only the pixels it keeps (rows 35..194, every
# 2nd row and column; of an RGB frame its red byte, of a grayscale one (ale-py's
# grayscale=True, what the trainer's emulators return) its one byte) and writes 0/1
# float32 directly: no crop copy, no boolean masks. Frames are split over threads
# when there are several.
# pong_difference fuses preprocessing, the difference with each env's previous
# frame (kept as 0/1 bytes) and its update into that same pass, and emits int8:
# the ternary input the sparse route of mlp_forward reads 4x faster than float32.
# pong_sparse_difference emits the same differences as sparse rows, and pong_step fuses
# it with the sparse net's forward (_sparse_net.pxd, shared with _sparse) and the draw
# of each env's action, appended to the trainer's episode store.
# atari_sparse_levels and atari_step do the same for any game's frames, as ale-py resizes
# them (grayscale, H x W): each pixel's level (its top bits) against the env's previous
# level (+1 brighter, -1 darker), then the pixels whose level is not the game's static
# background's. Eight pixels are compared at a time (one 64-bit word of levels), since
# most do not change from one step to the next and most are background.
#
# These functions are private: only pgcore/kernels.py calls them, after pgcore._validate has
# checked every argument (the same checks as the NumPy twins'). They trust what they are given
# and do not check it again: frames (N, 210 * 160 * 3) (RGB) or (N, 210 * 160) (grayscale) bytes, C-contiguous
# (the caller's (N, 210, 160, 3) or (N, 210, 160) batch, flattened), previous (E, 6400), rows a private array
# of N distinct envs in [0, E), fresh and uniforms one entry per frame, w1 (6400 or 12800, H)
# with w2 of 1 or 3 columns, and, for pong_step, an episode store whose shapes match with room
# for one more step of each env in rows. For atari_*: frames (N, P) bytes, background (P,),
# previous (E, P), 0 <= shift < 8, w1 (2 P, H) and w2 of 2 to MAX_ACTIONS columns. Where a write's address depends on an argument's
# values (rows, the store's lengths and starts), they are read once, before the first write,
# so an output that overlaps an input cannot move a write out of bounds.
from cython.parallel cimport prange
cimport numpy as cnp
import numpy as np
from cython cimport floating
from libc.math cimport exp
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

from _common cimport parallel_parts, part_start, sigmoid_
from _sparse_net cimport MAX_ACTIONS, logit_columns, output_logits, sparse_hidden

cnp.import_array()

cdef enum:
    TOP = 35
    OUT_SIDE = 80
    BACKGROUND_A = 144       # the background's two shades: red bytes of an RGB frame...
    BACKGROUND_B = 109
    GRAY_BACKGROUND_A = 87   # ...and the same shades in a grayscale frame (black is 0 in both)
    GRAY_BACKGROUND_B = 107


cdef enum:
    HEIGHT = 210
    WIDTH = 160
    SCREEN = HEIGHT * WIDTH  # pixels a frame: as many bytes in gray, 3 times as many in RGB
    INPUT_SIZE = OUT_SIDE * OUT_SIDE
    PARALLEL_MIN_FRAMES = 4  # frames below which the frame kernels run serial
    UP = 2     # Pong's minimal action set: RIGHT moves the paddle up...
    DOWN = 3   # ...LEFT down...
    NOOP = 0   # ...and NOOP leaves it


# The ALE action of each action code an episode stores: 0 down, 1 up (a one-logit net's
# Bernoulli), 2 stay.
cdef int ACTION_CODES[3]
ACTION_CODES[:] = [DOWN, UP, NOOP]


# A frame's pixel: RGB, of which the red byte is read, or grayscale (ale-py's grayscale=True). The
# functions of one frame are fused over the two, so each is compiled for each layout with its
# stride and background shades as constants (a runtime choice inside the row loop made the RGB
# pass 1.2 to 1.5 times slower); the loops over frames choose one per frame.
cdef packed struct RGBPixel:
    unsigned char red, green, blue

cdef packed struct GrayPixel:
    unsigned char gray

ctypedef fused Pixel:
    RGBPixel
    GrayPixel


cdef inline void _object_row(const Pixel* frame, Py_ssize_t r, unsigned char* now) noexcept nogil:
    """now = 1 for the paddles' and ball's pixels of kept row r (screen row TOP + 2 r, 80 values),
    0 for black and the two background shades. The gather of every 2nd pixel's first byte (red, or
    the gray value) is scalar; the comparisons then run on 80 contiguous bytes, which vectorise."""
    cdef const Pixel* row = frame + (TOP + 2 * r) * WIDTH
    cdef unsigned char shade[OUT_SIDE]
    cdef unsigned char background_a = GRAY_BACKGROUND_A if Pixel is GrayPixel else BACKGROUND_A
    cdef unsigned char background_b = GRAY_BACKGROUND_B if Pixel is GrayPixel else BACKGROUND_B
    cdef Py_ssize_t c
    for c in range(OUT_SIDE):
        shade[c] = (<const unsigned char*>(row + 2 * c))[0]
    for c in range(OUT_SIDE):
        now[c] = (shade[c] != 0) & (shade[c] != background_a) & (shade[c] != background_b)


cdef inline void _preprocess_frame(const Pixel* frame, float* out) noexcept nogil:
    cdef Py_ssize_t r, c
    cdef unsigned char now[OUT_SIDE]
    for r in range(OUT_SIDE):
        _object_row(frame, r, now)
        for c in range(OUT_SIDE):
            out[r * OUT_SIDE + c] = now[c]


cdef inline void _preprocess_frames(const unsigned char* pixels, bint gray, float* processed, Py_ssize_t start,
                                    Py_ssize_t stop) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(start, stop):
        if gray:
            _preprocess_frame(<const GrayPixel*>pixels + i * SCREEN, processed + i * INPUT_SIZE)
        else:
            _preprocess_frame(<const RGBPixel*>pixels + i * SCREEN, processed + i * INPUT_SIZE)


def pong_preprocess(const unsigned char[:, ::1] frames, int n_threads):
    cdef Py_ssize_t part, n = frames.shape[0]
    cdef bint gray = frames.shape[1] == SCREEN
    out_array = np.empty((n, OUT_SIDE * OUT_SIDE), dtype=np.float32)
    cdef float[:, ::1] out = out_array
    if n == 0:
        return out_array
    cdef const unsigned char* pixels = &frames[0, 0]
    cdef float* processed = &out[0, 0]
    cdef int parts = parallel_parts(n, PARALLEL_MIN_FRAMES, n_threads)
    with nogil:
        if parts == 1:  # serial: no OpenMP call at all
            _preprocess_frames(pixels, gray, processed, 0, n)
        else:
            for part in prange(parts, schedule='static', num_threads=parts):
                _preprocess_frames(pixels, gray, processed, part_start(n, part, parts),
                                   part_start(n, part + 1, parts))
    return out_array


cdef inline void _difference_row(const Pixel* frame, Py_ssize_t r, unsigned char* previous,
                                 signed char* change) noexcept nogil:
    """change = preprocess(kept row r of frame) - previous (80 values); previous = preprocess(the row)."""
    cdef unsigned char now[OUT_SIDE]
    cdef Py_ssize_t c
    _object_row(frame, r, now)
    for c in range(OUT_SIDE):
        change[c] = <signed char>now[c] - <signed char>previous[c]
        previous[c] = now[c]


cdef inline void _difference_frame(const Pixel* frame, unsigned char* previous, bint fresh,
                                   signed char* out) noexcept nogil:
    """out = preprocess(frame) - previous (0 if fresh); previous = preprocess(frame)."""
    cdef Py_ssize_t r
    for r in range(OUT_SIDE):
        _difference_row(frame, r, previous + r * OUT_SIDE, out + r * OUT_SIDE)
    if fresh:
        memset(out, 0, OUT_SIDE * OUT_SIDE)


cdef inline void _difference_frames(const unsigned char* pixels, bint gray, unsigned char* previous,
                                    const cnp.intp_t* rows, const unsigned char* fresh, signed char* differences,
                                    Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(start, stop):
        if gray:
            _difference_frame(<const GrayPixel*>pixels + i * SCREEN, previous + rows[i] * INPUT_SIZE, fresh[i],
                              differences + i * INPUT_SIZE)
        else:
            _difference_frame(<const RGBPixel*>pixels + i * SCREEN, previous + rows[i] * INPUT_SIZE, fresh[i],
                              differences + i * INPUT_SIZE)


def pong_difference(const unsigned char[:, ::1] frames, unsigned char[:, ::1] previous,
                    const cnp.intp_t[::1] rows, const unsigned char[::1] fresh, int n_threads):
    cdef Py_ssize_t part, n = frames.shape[0]
    cdef bint gray = frames.shape[1] == SCREEN
    out_array = np.empty((n, OUT_SIDE * OUT_SIDE), dtype=np.int8)
    cdef signed char[:, ::1] out = out_array
    if n == 0:
        return out_array
    cdef const unsigned char* pixels = &frames[0, 0]
    cdef unsigned char* last = &previous[0, 0]
    cdef signed char* differences = &out[0, 0]
    cdef int parts = parallel_parts(n, PARALLEL_MIN_FRAMES, n_threads)
    with nogil:
        if parts == 1:  # serial: no OpenMP call at all
            _difference_frames(pixels, gray, last, &rows[0], &fresh[0], differences, 0, n)
        else:
            for part in prange(parts, schedule='static', num_threads=parts):
                _difference_frames(pixels, gray, last, &rows[0], &fresh[0], differences, part_start(n, part, parts),
                                   part_start(n, part + 1, parts))
    return out_array


# ---- sparse inputs end to end: the Pong trainer's step ----
#
# A difference frame has ~26 nonzero pixels of 6400, each -1 or +1, so a step's input is
# kept as those pixels' indices (int16) and signs (int8), CSR-like: step t of a stream owns
# indices[starts[t]:starts[t + 1]]. With the frame as well (w1 of 12800 rows), the ~34 object
# pixels of the frame itself follow as indices 6400 + p, each +1: a difference alone hides a
# paddle that did not move, the frame shows where it is. The net on these rows is in
# _sparse_net.pxd (the forward) and _sparse.pyx (the batch forward and gradient).


cdef inline Py_ssize_t _sparse_difference_frame(const Pixel* frame, unsigned char* previous, bint fresh,
                                                bint with_frame, short* indices, signed char* signs) noexcept nogil:
    """Writes the nonzeros of preprocess(frame) - previous (none if fresh) as indices and signs,
    then with_frame those of preprocess(frame) as indices INPUT_SIZE + p, sign +1; returns their
    count; previous = preprocess(frame). Room for INPUT_SIZE (2 INPUT_SIZE with_frame) entries is needed."""
    cdef Py_ssize_t r, c, p, word, count = 0
    cdef signed char change[OUT_SIDE]
    cdef unsigned long long bits
    for r in range(OUT_SIDE):
        _difference_row(frame, r, previous + r * OUT_SIDE, change)
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


cdef inline Py_ssize_t _sparse_difference_screen(const unsigned char* frame, bint gray, unsigned char* previous,
                                                 bint fresh, bint with_frame, short* indices,
                                                 signed char* signs) noexcept nogil:
    """_sparse_difference_frame of one frame's bytes, RGB or gray."""
    if gray:
        return _sparse_difference_frame(<const GrayPixel*>frame, previous, fresh, with_frame, indices, signs)
    return _sparse_difference_frame(<const RGBPixel*>frame, previous, fresh, with_frame, indices, signs)


cdef inline unsigned char _sampled(const floating* logits, Py_ssize_t n_logits, double uniform) noexcept nogil:
    """The action code drawn by `uniform` in [0, 1): one logit, 1 (up) if uniform < sigmoid(logit)
    else 0; several, the first whose cumulative softmax probability passes it (in double, as the
    NumPy twin: uniform * sum(e) against the running sum of e = exp(logit - max))."""
    cdef Py_ssize_t k
    cdef floating top
    cdef double total = 0, running = 0
    cdef double exps[MAX_ACTIONS]  # each exp once: the draw runs every agent step
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


def pong_sparse_difference(const unsigned char[:, ::1] frames, unsigned char[:, ::1] previous,
                           const cnp.intp_t[::1] rows, const unsigned char[::1] fresh, bint with_frame):
    """(starts (B + 1,) int64, indices (nnz,) int16, signs (nnz,) int8) of the difference frames
    (followed by the frames themselves, with_frame)."""
    return _sparse_rows(frames, NULL, 0, previous, rows, fresh, INPUT_SIZE * (2 if with_frame else 1))


# ---- any game's frames: levels against the previous step's and the background ----


cdef inline unsigned long long _levels_word(const unsigned char* pixels, int shift) noexcept nogil:
    """Eight pixels' levels (each byte >> shift) in one word: the word shifted, then each byte
    masked to its own bits (the bits shifted in from its neighbour dropped), whatever the byte order."""
    cdef unsigned long long word
    memcpy(&word, pixels, 8)
    return (word >> shift) & (0x0101010101010101ULL * <unsigned long long>(0xFF >> shift))


cdef inline Py_ssize_t _sparse_levels_frame(const unsigned char* frame, const unsigned char* background,
                                            unsigned char* previous, bint fresh, int shift, Py_ssize_t n_pixels,
                                            short* indices, signed char* signs) noexcept nogil:
    """Writes the pixels whose level (frame >> shift) differs from previous as indices p, sign +1
    (brighter) or -1 (darker), none if fresh; then those whose level differs from the background
    as indices n_pixels + p, sign +1; returns their count; previous = the levels. Room for
    2 n_pixels entries is needed."""
    cdef Py_ssize_t p, k, word, whole = n_pixels - n_pixels % 8, count = 0
    cdef unsigned long long now, before
    cdef unsigned char levels[8]
    cdef unsigned char old[8]
    cdef unsigned char level
    for word in range(0, whole, 8):
        now = _levels_word(frame + word, shift)
        memcpy(&before, previous + word, 8)
        if now == before:
            continue
        memcpy(levels, &now, 8)
        memcpy(old, &before, 8)
        memcpy(previous + word, levels, 8)
        if fresh:
            continue
        for k in range(8):
            if levels[k] != old[k]:
                indices[count] = <short>(word + k)
                signs[count] = 1 if levels[k] > old[k] else -1
                count += 1
    for p in range(whole, n_pixels):
        level = frame[p] >> shift
        if level != previous[p] and not fresh:
            indices[count] = <short>p
            signs[count] = 1 if level > previous[p] else -1
            count += 1
        previous[p] = level
    for word in range(0, whole, 8):
        memcpy(&now, previous + word, 8)
        memcpy(&before, background + word, 8)
        if now == before:
            continue
        for k in range(8):
            if previous[word + k] != background[word + k]:
                indices[count] = <short>(n_pixels + word + k)
                signs[count] = 1
                count += 1
    for p in range(whole, n_pixels):
        if previous[p] != background[p]:
            indices[count] = <short>(n_pixels + p)
            signs[count] = 1
            count += 1
    return count


def atari_sparse_levels(const unsigned char[:, ::1] frames, const unsigned char[::1] background,
                        unsigned char[:, ::1] previous, const cnp.intp_t[::1] rows, const unsigned char[::1] fresh,
                        int shift):
    """(starts (B + 1,) int64, indices (nnz,) int16, signs (nnz,) int8) of the frames' changed
    levels followed by their levels off the background (_sparse_levels_frame)."""
    return _sparse_rows(frames, &background[0], shift, previous, rows, fresh, 2 * frames.shape[1])


cdef inline Py_ssize_t _sparse_row(const unsigned char* frame, bint gray, const unsigned char* background, int shift,
                                   unsigned char* previous, bint fresh, Py_ssize_t n_inputs, short* indices,
                                   signed char* signs) noexcept nogil:
    """One frame's sparse row of n_inputs inputs, returning its count: a Pong frame's difference
    (background NULL; its frame too where n_inputs is twice Pong's), else its levels'."""
    if background == NULL:
        return _sparse_difference_screen(frame, gray, previous, fresh, n_inputs == 2 * INPUT_SIZE, indices, signs)
    return _sparse_levels_frame(frame, background, previous, fresh, shift, n_inputs // 2, indices, signs)


cdef object _sparse_rows(const unsigned char[:, ::1] frames, const unsigned char* background, int shift,
                         unsigned char[:, ::1] previous, const cnp.intp_t[::1] rows, const unsigned char[::1] fresh,
                         Py_ssize_t n_inputs):
    """pong_sparse_difference and atari_sparse_levels: each frame's _sparse_row, concatenated."""
    cdef Py_ssize_t i, n = frames.shape[0]
    cdef bint gray = frames.shape[1] == SCREEN
    starts_array = np.zeros(n + 1, dtype=np.int64)
    indices_array = np.empty(n * n_inputs, dtype=np.int16)
    signs_array = np.empty(n * n_inputs, dtype=np.int8)
    cdef cnp.int64_t[::1] starts = starts_array
    cdef short* indices = <short*>cnp.PyArray_DATA(indices_array)
    cdef signed char* signs = <signed char*>cnp.PyArray_DATA(signs_array)
    with nogil:
        for i in range(n):
            starts[i + 1] = starts[i] + _sparse_row(&frames[i, 0], gray, background, shift, &previous[rows[i], 0],
                                                    fresh[i], n_inputs, indices + starts[i], signs + starts[i])
    return starts_array, indices_array[:starts[n]].copy(), signs_array[:starts[n]].copy()


# ---- the trainer's step: a frame's sparse row, the net's forward, the action drawn, stored ----


cdef void _steps(const unsigned char[:, ::1] frames, const unsigned char* background, int shift,
                 unsigned char[:, ::1] previous, const unsigned char[::1] fresh, const floating[:, ::1] w1,
                 const floating* columns, Py_ssize_t n_logits, const double[::1] uniforms, const Py_ssize_t* slots,
                 cnp.int64_t[::1] lengths, cnp.int64_t[:, ::1] starts, short[:, ::1] indices,
                 signed char[:, ::1] signs, floating[:, :, ::1] logits, unsigned char[:, ::1] actions,
                 const int* action_codes, floating* h, int[::1] out, short* row_indices, Py_ssize_t start,
                 Py_ssize_t stop) noexcept nogil:
    """_play for frames start..stop-1, frame i going to env slots[3 i], step slots[3 i + 1],
    indices from slots[3 i + 2] on (each frame a different env); h: n_hidden scratch values a
    frame; columns: w2's (logit_columns); row_indices: scratch for a row, room for w1's rows in
    shorts and as many bytes. The step's row and logits are built here, then copied to the store:
    nothing is read back from it (_sparse_row: a Pong frame where background is NULL)."""
    cdef Py_ssize_t i, e, t, first, count, n_hidden = w1.shape[1], n_inputs = w1.shape[0]
    cdef bint gray = frames.shape[1] == SCREEN
    cdef signed char* row_signs = <signed char*>(row_indices + n_inputs)
    cdef floating row_logits[MAX_ACTIONS]
    cdef unsigned char code
    for i in range(start, stop):
        e, t, first = slots[3 * i], slots[3 * i + 1], slots[3 * i + 2]
        count = _sparse_row(&frames[i, 0], gray, background, shift, &previous[e, 0], fresh[i], n_inputs,
                            row_indices, row_signs)
        sparse_hidden(row_indices, row_signs, count, count, &w1[0, 0], n_hidden, h + i * n_hidden)
        output_logits(h + i * n_hidden, columns, n_hidden, n_logits, row_logits)
        code = _sampled(row_logits, n_logits, uniforms[i])
        memcpy(&indices[e, first], row_indices, count * sizeof(short))
        memcpy(&signs[e, first], row_signs, count * sizeof(signed char))
        memcpy(&logits[e, t, 0], row_logits, n_logits * sizeof(floating))
        starts[e, t + 1] = first + count
        actions[e, t] = code
        out[i] = action_codes[code] if action_codes != NULL else code
        lengths[e] = t + 1


cdef object _play(const unsigned char[:, ::1] frames, const unsigned char* background, int shift,
                  unsigned char[:, ::1] previous, const cnp.intp_t[::1] rows, const unsigned char[::1] fresh,
                  const floating[:, ::1] w1, const floating[:, ::1] w2, const double[::1] uniforms,
                  cnp.int64_t[::1] lengths, cnp.int64_t[:, ::1] starts, short[:, ::1] indices,
                  signed char[:, ::1] signs, floating[:, :, ::1] logits, unsigned char[:, ::1] actions,
                  const int* action_codes, int n_threads):
    """pong_step and atari_step: the B frames' rows appended to their envs' episodes, with the
    logits and the codes drawn; returns the actions (B,) int32 (action_codes[code], or the code)."""
    cdef Py_ssize_t i, e, t, part, n = frames.shape[0], n_hidden = w1.shape[1], n_logits = w2.shape[1]
    cdef Py_ssize_t row_bytes = (w1.shape[0] * (sizeof(short) + sizeof(signed char)) + 7) // 8 * 8  # (aligned)
    out_array = np.empty(n, dtype=np.int32)
    if n == 0:
        return out_array
    cdef int[::1] out = out_array
    cdef int parts = parallel_parts(n, PARALLEL_MIN_FRAMES, n_threads)
    # One scratch block: each frame's (env, step, first free index), its hidden layer, w2's columns,
    # then a row's indices and signs for each part.
    cdef Py_ssize_t* slots = <Py_ssize_t*>malloc(3 * n * sizeof(Py_ssize_t)
                                                 + (n + n_logits) * n_hidden * sizeof(floating) + parts * row_bytes)
    if slots == NULL:
        raise MemoryError()
    cdef floating* h = <floating*>(slots + 3 * n)
    cdef floating* columns = h + n * n_hidden
    cdef char* rows_scratch = <char*>(columns + n_logits * n_hidden)
    try:
        for i in range(n):  # where each step goes, read before anything is written
            e = rows[i]
            t = lengths[e]
            slots[3 * i], slots[3 * i + 1], slots[3 * i + 2] = e, t, starts[e, t]
        with nogil:
            if n_hidden:
                logit_columns(&w2[0, 0], n_hidden, n_logits, columns)
            if parts == 1:  # serial: no OpenMP call at all
                _steps(frames, background, shift, previous, fresh, w1, columns, n_logits, uniforms, slots, lengths,
                       starts, indices, signs, logits, actions, action_codes, h, out, <short*>rows_scratch, 0, n)
            else:
                for part in prange(parts, schedule='static', num_threads=parts):
                    _steps(frames, background, shift, previous, fresh, w1, columns, n_logits, uniforms, slots,
                           lengths, starts, indices, signs, logits, actions, action_codes, h, out,
                           <short*>(rows_scratch + part * row_bytes), part_start(n, part, parts),
                           part_start(n, part + 1, parts))
    finally:
        free(slots)
    return out_array


def pong_step(const unsigned char[:, ::1] frames, unsigned char[:, ::1] previous,
              const cnp.intp_t[::1] rows, const unsigned char[::1] fresh,
              const floating[:, ::1] w1, const floating[:, ::1] w2, const double[::1] uniforms,
              cnp.int64_t[::1] lengths, cnp.int64_t[:, ::1] starts, short[:, ::1] indices,
              signed char[:, ::1] signs, floating[:, :, ::1] logits, unsigned char[:, ::1] actions, int n_threads):
    """One trainer step for the B envs `rows`: difference frames (and the frames, when w1 has
    2 INPUT_SIZE rows) -> sparse rows appended to each env's episode -> logits (w2 (H, 1): up if
    uniform < sigmoid(logit); w2 (H, 3): sampled from the softmax) -> the ALE actions (B,) int32."""
    return _play(frames, NULL, 0, previous, rows, fresh, w1, w2, uniforms, lengths, starts, indices, signs, logits,
                 actions, ACTION_CODES, n_threads)


def atari_step(const unsigned char[:, ::1] frames, const unsigned char[::1] background, int shift,
               unsigned char[:, ::1] previous, const cnp.intp_t[::1] rows, const unsigned char[::1] fresh,
               const floating[:, ::1] w1, const floating[:, ::1] w2, const double[::1] uniforms,
               cnp.int64_t[::1] lengths, cnp.int64_t[:, ::1] starts, short[:, ::1] indices,
               signed char[:, ::1] signs, floating[:, :, ::1] logits, unsigned char[:, ::1] actions, int n_threads):
    """One trainer step for the B envs `rows` of any game: the frames' levels -> sparse rows
    (atari_sparse_levels's) appended to each env's episode -> logits (w2 (H, K)) -> the codes
    drawn from the softmax, which are the game's actions (B,) int32."""
    return _play(frames, &background[0], shift, previous, rows, fresh, w1, w2, uniforms, lengths, starts, indices,
                 signs, logits, actions, NULL, n_threads)
