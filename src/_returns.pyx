# Returns and advantages: the discounted-return scan with episode cuts, generalized
# advantage estimation (GAE) over it, standardization, and the squared error that
# regresses a value estimate on the returns.
#
# Design: the scan is a reverse recurrence over time, serial in t by nature.
# For (T, N) streams it runs time-major over rows, the inner loop over the N
# contiguous streams (vectorised), so no transpose and no false sharing.
# standardize accumulates in double over x - x[0] (two passes: mean, then
# variance), so an all-equal input is exactly zero and float32 sums stay accurate;
# the passes are split over threads for large inputs. squared_error writes its
# gradient and sums its loss in one pass (in double, in lanes like standardize).
#
# Private: only pgcore/kernels.py calls these, with arguments pgcore._validate has checked (the
# checks the NumPy twins share); they trust them and do not check them again.
from cython.parallel cimport prange
from cython cimport floating
cimport numpy as cnp
import numpy as np
from libc.math cimport sqrt

from _common cimport PARALLEL_MIN_ELEMENTS, parallel_parts, part_start

cnp.import_array()


def discounted_returns(const floating[:, ::1] rewards_view, double gamma,
                       const unsigned char[:, ::1] dones_view, bint has_dones):
    """G[t] = r[t] + gamma * G[t + 1] * (1 - done[t]) over rows t, for each column."""
    cdef Py_ssize_t t, j, n_steps = rewards_view.shape[0], n_streams = rewards_view.shape[1]
    cdef floating g = <floating>gamma
    out_array = np.empty((n_steps, n_streams), dtype=np.float32 if floating is float else np.float64)
    cdef floating[:, ::1] out_view = out_array
    if n_steps == 0 or n_streams == 0:
        return out_array
    # Raw pointers in locals: the compiler can vectorise (memoryview fields may alias).
    cdef const floating* rewards = &rewards_view[0, 0]
    cdef const unsigned char* dones = &dones_view[0, 0] if has_dones else NULL
    cdef floating* out = &out_view[0, 0]
    cdef floating* row
    with nogil:
        for j in range(n_streams):
            out[(n_steps - 1) * n_streams + j] = rewards[(n_steps - 1) * n_streams + j]
        for t in range(n_steps - 2, -1, -1):
            row = out + t * n_streams
            if has_dones:
                for j in range(n_streams):
                    row[j] = rewards[t * n_streams + j] + (0 if dones[t * n_streams + j] else g * row[n_streams + j])
            else:
                for j in range(n_streams):
                    row[j] = rewards[t * n_streams + j] + g * row[n_streams + j]
    return out_array


def gae_advantages(const floating[:, ::1] rewards_view, const floating[:, ::1] values_view, double gamma,
                   double lam, const unsigned char[:, ::1] dones_view, bint has_dones,
                   const floating[::1] last_values_view):
    """A[t] = delta[t] + gamma * lam * A[t + 1] * (1 - done[t]) over rows t, for each column, with
    delta[t] = r[t] + gamma * V[t + 1] * (1 - done[t]) - V[t]; after the last row, V = last_values
    (one per column: a segment cut mid-episode bootstraps there) and A = 0."""
    cdef Py_ssize_t t, j, n_steps = rewards_view.shape[0], n_streams = rewards_view.shape[1]
    cdef floating g = <floating>gamma, gl = <floating>(gamma * lam), next_value, delta
    out_array = np.empty((n_steps, n_streams), dtype=np.float32 if floating is float else np.float64)
    cdef floating[:, ::1] out_view = out_array
    if n_steps == 0 or n_streams == 0:
        return out_array
    cdef const floating* rewards = &rewards_view[0, 0]
    cdef const floating* values = &values_view[0, 0]
    cdef const unsigned char* dones = &dones_view[0, 0] if has_dones else NULL
    cdef const floating* last_values = &last_values_view[0]
    cdef floating* out = &out_view[0, 0]
    cdef Py_ssize_t k
    with nogil:
        for t in range(n_steps - 1, -1, -1):
            for j in range(n_streams):
                k = t * n_streams + j
                if has_dones and dones[k]:
                    out[k] = rewards[k] - values[k]  # the episode ends here: no future
                elif t == n_steps - 1:
                    out[k] = rewards[k] + g * last_values[j] - values[k]
                else:
                    next_value = values[k + n_streams]
                    delta = rewards[k] + g * next_value - values[k]
                    out[k] = delta + gl * out[k + n_streams]
    return out_array


cdef enum:
    LANES = 8  # independent double accumulators: the serial sums run at throughput, not latency


cdef inline double _sum_shifted(const floating* x, Py_ssize_t n, double first) noexcept nogil:
    cdef double lanes[LANES]
    cdef Py_ssize_t i, j, block
    for j in range(LANES):
        lanes[j] = 0
    for block in range(n // LANES):
        i = block * LANES
        for j in range(LANES):
            lanes[j] += x[i + j] - first
    for i in range(n - n % LANES, n):
        lanes[0] += x[i] - first
    return _lane_total(lanes)


cdef inline double _sum_squares_shifted(const floating* x, Py_ssize_t n, double first,
                                        double mean) noexcept nogil:
    cdef double lanes[LANES]
    cdef double centered
    cdef Py_ssize_t i, j, block
    for j in range(LANES):
        lanes[j] = 0
    for block in range(n // LANES):
        i = block * LANES
        for j in range(LANES):
            centered = (x[i + j] - first) - mean
            lanes[j] += centered * centered
    for i in range(n - n % LANES, n):
        centered = (x[i] - first) - mean
        lanes[0] += centered * centered
    return _lane_total(lanes)


cdef inline double _lane_total(double* lanes) noexcept nogil:
    cdef double total = 0
    cdef int j
    for j in range(LANES):
        total += lanes[j]
    return total


cdef inline void _scaled_range(const floating* x, floating* out, double first, double mean, double scale,
                               Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(start, stop):
        out[i] = <floating>(((x[i] - first) - mean) * scale)


def standardize(const floating[::1] x_view, double eps, int n_threads):
    cdef Py_ssize_t i, part, n = x_view.shape[0]
    cdef double first, total = 0, squares = 0, mean, scale, centered
    out_array = np.empty(n, dtype=np.float32 if floating is float else np.float64)
    cdef floating[::1] out_view = out_array
    if n == 0:
        return out_array
    # Raw pointers in locals: the compiler can vectorise (memoryview fields may alias).
    cdef const floating* x = &x_view[0]
    cdef floating* out = &out_view[0]
    cdef int parts = parallel_parts(n, PARALLEL_MIN_ELEMENTS, n_threads)
    with nogil:
        first = x[0]
        if parts > 1:
            for i in prange(n, schedule='static', num_threads=parts):
                total += x[i] - first
        else:
            total = _sum_shifted(x, n, first)
        mean = total / n
        if parts > 1:
            for i in prange(n, schedule='static', num_threads=parts):
                centered = (x[i] - first) - mean
                squares += centered * centered
        else:
            squares = _sum_squares_shifted(x, n, first, mean)
        scale = sqrt(squares / n) + eps
        scale = 1 / scale if scale != 0 else 0  # all-equal input and eps = 0: zeros, not NaN
        if parts == 1:  # serial: no OpenMP call at all
            _scaled_range(x, out, first, mean, scale, 0, n)
        else:
            for part in prange(parts, schedule='static', num_threads=parts):
                _scaled_range(x, out, first, mean, scale, part_start(n, part, parts),
                              part_start(n, part + 1, parts))
    return out_array


cdef inline double _squared_error_range(const floating* predictions, const floating* targets, floating* grad,
                                        double scale, Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    """grad[i] = scale * (predictions[i] - targets[i]) over [start, stop); returns sum of the squares."""
    cdef double lanes[LANES]
    cdef double error
    cdef Py_ssize_t i, j, block
    for j in range(LANES):
        lanes[j] = 0
    for block in range((stop - start) // LANES):
        i = start + block * LANES
        for j in range(LANES):
            error = <double>predictions[i + j] - <double>targets[i + j]
            grad[i + j] = <floating>(scale * error)
            lanes[j] += error * error
    for i in range(stop - (stop - start) % LANES, stop):
        error = <double>predictions[i] - <double>targets[i]
        grad[i] = <floating>(scale * error)
        lanes[0] += error * error
    return _lane_total(lanes)


def squared_error(const floating[::1] predictions_view, const floating[::1] targets_view, double scale,
                  int n_threads):
    """(0.5 * scale * sum (p - t)^2, its gradient scale * (p - t) with respect to p)."""
    cdef Py_ssize_t part, n = predictions_view.shape[0]
    cdef double squares = 0
    grad_array = np.empty(n, dtype=np.float32 if floating is float else np.float64)
    cdef floating[::1] grad_view = grad_array
    if n == 0:
        return 0.0, grad_array
    cdef const floating* predictions = &predictions_view[0]
    cdef const floating* targets = &targets_view[0]
    cdef floating* grad = &grad_view[0]
    cdef int parts = parallel_parts(n, PARALLEL_MIN_ELEMENTS, n_threads)
    with nogil:
        if parts == 1:  # serial: no OpenMP call at all
            squares = _squared_error_range(predictions, targets, grad, scale, 0, n)
        else:
            for part in prange(parts, schedule='static', num_threads=parts):
                squares += _squared_error_range(predictions, targets, grad, scale,
                                                part_start(n, part, parts), part_start(n, part + 1, parts))
    return 0.5 * scale * squares, grad_array
