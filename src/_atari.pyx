# Atari frame preprocessing for Pong, as in the classic "Pong from pixels" agent.
#
# Design: one pass per frame reads only the pixels it keeps (rows 35..194, every
# 2nd row and column, red channel) and writes 0/1 float32 directly: no crop copy,
# no boolean masks. Frames are split over threads when there are several.
from cython.parallel cimport prange
cimport numpy as cnp
import numpy as np

cnp.import_array()

cdef enum:
    TOP = 35
    OUT_SIDE = 80
    BACKGROUND_A = 144
    BACKGROUND_B = 109


cdef enum:
    ROW_BYTES = 160 * 3
    FRAME_BYTES = 210 * ROW_BYTES


# 1.0 for the red values of paddles and ball, 0.0 for black and the two background shades.
cdef float[256] IS_OBJECT
for _value in range(256):
    IS_OBJECT[_value] = 0.0 if _value in (0, BACKGROUND_A, BACKGROUND_B) else 1.0


cdef inline void _preprocess_frame(const unsigned char* frame, float* out) noexcept nogil:
    cdef Py_ssize_t r, c
    cdef const unsigned char* row
    for r in range(OUT_SIDE):
        row = frame + (TOP + 2 * r) * ROW_BYTES
        for c in range(OUT_SIDE):
            out[r * OUT_SIDE + c] = IS_OBJECT[row[6 * c]]  # red channel of every 2nd pixel


def pong_preprocess(const unsigned char[:, :, :, ::1] frames, int n_threads):
    cdef Py_ssize_t i, n = frames.shape[0]
    out_array = np.empty((n, OUT_SIDE * OUT_SIDE), dtype=np.float32)
    cdef float[:, ::1] out = out_array
    if n == 0:
        return out_array
    cdef const unsigned char* pixels = &frames[0, 0, 0, 0]
    cdef float* processed = &out[0, 0]
    cdef int threads = n_threads if n >= 4 else 1
    with nogil:
        if threads > 1:
            for i in prange(n, schedule='static', num_threads=threads):
                _preprocess_frame(pixels + i * FRAME_BYTES, processed + i * OUT_SIDE * OUT_SIDE)
        else:
            for i in range(n):
                _preprocess_frame(pixels + i * FRAME_BYTES, processed + i * OUT_SIDE * OUT_SIDE)
    return out_array
