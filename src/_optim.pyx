# Optimizer steps: RMSProp and Adam, in place, one fused pass over the parameters.
#
# Design: the NumPy form makes ~7 passes and 4 temporaries over 1.28M values;
# here each element is read and written once, the loop vectorises (sqrt with
# -fno-math-errno), and large tensors are split over threads: each kernel's loop is
# written once, over a range, which one thread runs whole or each thread runs a part of.
#
# Private: only pgcore/kernels.py calls these, with arguments pgcore._validate has checked (the
# checks the NumPy twins share); they trust them and do not check them again. rmsprop_rows_step
# writes rows of param, grad and cache at the row numbers in `rows`: _validate hands it a private
# copy of them, checked (distinct, in range) before any write, so an output that overlaps an input
# cannot move a write out of bounds.
from cython.parallel cimport prange
cimport numpy as cnp
from cython cimport floating
from libc.math cimport pow

from _common cimport PARALLEL_MIN_ELEMENTS, parallel_parts, part_start, sqrt_

cnp.import_array()


cdef inline void _rmsprop_range(floating* param, const floating* grad, floating* cache, floating lr, floating decay,
                                floating keep, floating eps, Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(start, stop):
        cache[i] = decay * cache[i] + keep * grad[i] * grad[i]
        param[i] = param[i] - lr * grad[i] / (sqrt_(cache[i]) + eps)


def rmsprop_step(floating[::1] param_view, const floating[::1] grad_view, floating[::1] cache_view,
                 double lr, double decay, double eps, int n_threads):
    cdef Py_ssize_t part, n = param_view.shape[0]
    cdef floating lr_ = <floating>lr, decay_ = <floating>decay, eps_ = <floating>eps
    cdef floating keep = <floating>(1 - decay)
    if n == 0:
        return
    # Raw pointers in locals: the compiler can vectorise (memoryview fields may alias).
    cdef floating* param = &param_view[0]
    cdef const floating* grad = &grad_view[0]
    cdef floating* cache = &cache_view[0]
    cdef int parts = parallel_parts(n, PARALLEL_MIN_ELEMENTS, n_threads)
    with nogil:
        if parts == 1:  # serial: no OpenMP call at all
            _rmsprop_range(param, grad, cache, lr_, decay_, keep, eps_, 0, n)
        else:
            for part in prange(parts, schedule='static', num_threads=parts):
                _rmsprop_range(param, grad, cache, lr_, decay_, keep, eps_, part_start(n, part, parts),
                               part_start(n, part + 1, parts))


cdef inline void _adam_range(floating* param, const floating* grad, floating* m, floating* v, floating step_size,
                             floating beta1, floating beta2, floating v_scale, floating eps, Py_ssize_t start,
                             Py_ssize_t stop) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(start, stop):
        m[i] = beta1 * m[i] + (1 - beta1) * grad[i]
        v[i] = beta2 * v[i] + (1 - beta2) * grad[i] * grad[i]
        param[i] = param[i] - step_size * m[i] / (sqrt_(v[i] * v_scale) + eps)


def adam_step(floating[::1] param_view, const floating[::1] grad_view, floating[::1] m_view,
              floating[::1] v_view, double step_size, double beta1, double beta2, double v_scale,
              double eps, int n_threads):
    """Bias corrections come in folded into step_size = lr / (1 - beta1**t) and
    v_scale = 1 / (1 - beta2**t), computed once in double by the caller."""
    cdef Py_ssize_t part, n = param_view.shape[0]
    cdef floating step_ = <floating>step_size, beta1_ = <floating>beta1, beta2_ = <floating>beta2
    cdef floating v_scale_ = <floating>v_scale, eps_ = <floating>eps
    if n == 0:
        return
    cdef floating* param = &param_view[0]
    cdef const floating* grad = &grad_view[0]
    cdef floating* m = &m_view[0]
    cdef floating* v = &v_view[0]
    cdef int parts = parallel_parts(n, PARALLEL_MIN_ELEMENTS, n_threads)
    with nogil:
        if parts == 1:  # serial: no OpenMP call at all
            _adam_range(param, grad, m, v, step_, beta1_, beta2_, v_scale_, eps_, 0, n)
        else:
            for part in prange(parts, schedule='static', num_threads=parts):
                _adam_range(param, grad, m, v, step_, beta1_, beta2_, v_scale_, eps_, part_start(n, part, parts),
                            part_start(n, part + 1, parts))


# ---- RMSProp on the rows a minibatch touched (the Pong trainer's w1) ----
#
# A row r left alone for ages[r] dense steps has had its cache multiplied by decay**ages[r] and
# its param left as it was (the dense step with a zero gradient), so only the touched rows are
# worked on: their decay and this step's are one factor, decay**(ages[r] + 1), computed once per
# row in double (pow, as the twin's float64 power), then the row is one fused pass like
# _rmsprop_range's, which also zeroes the gradient it consumed.

cdef inline void _rmsprop_row(floating* param, floating* grad, floating* cache, floating lr, floating scale,
                              floating keep, floating eps, Py_ssize_t width) noexcept nogil:
    cdef Py_ssize_t j
    cdef floating g, c
    for j in range(width):
        g = grad[j]
        c = scale * cache[j] + keep * (g * g)  # (the twin's order: with decay 1, 0 * inf is NaN in both)
        cache[j] = c
        param[j] = param[j] - lr * g / (sqrt_(c) + eps)
        grad[j] = 0


cdef inline void _rmsprop_rows_range(floating* param, floating* grad, floating* cache, const cnp.intp_t* rows,
                                     const cnp.int64_t* ages, Py_ssize_t width, floating lr, double decay,
                                     floating keep, floating eps, Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    cdef Py_ssize_t k, offset
    cdef floating scale
    for k in range(start, stop):
        offset = rows[k] * width
        scale = <floating>pow(decay, <double>ages[rows[k]] + 1.0)
        _rmsprop_row(param + offset, grad + offset, cache + offset, lr, scale, keep, eps, width)


def rmsprop_rows_step(floating[:, ::1] param_view, floating[:, ::1] grad_view, floating[:, ::1] cache_view,
                      const cnp.intp_t[::1] rows_view, cnp.int64_t[::1] ages_view, double lr, double decay,
                      double eps, int n_threads):
    """rows: distinct, in [0, param rows), a private copy; ages: (param rows,), >= 0."""
    cdef Py_ssize_t part, i, k, n = rows_view.shape[0], width = param_view.shape[1], total = ages_view.shape[0]
    cdef floating lr_ = <floating>lr, eps_ = <floating>eps, keep = <floating>(1 - decay)
    cdef floating* param
    cdef floating* grad
    cdef floating* cache
    cdef const cnp.intp_t* rows
    cdef cnp.int64_t* ages = &ages_view[0] if total else NULL
    cdef int parts
    if n and width:
        param, grad, cache, rows = &param_view[0, 0], &grad_view[0, 0], &cache_view[0, 0], &rows_view[0]
        parts = parallel_parts(n * width, PARALLEL_MIN_ELEMENTS, n_threads)
        with nogil:
            if parts == 1:  # serial: no OpenMP call at all
                _rmsprop_rows_range(param, grad, cache, rows, ages, width, lr_, decay, keep, eps_, 0, n)
            else:
                for part in prange(parts, schedule='static', num_threads=parts):
                    _rmsprop_rows_range(param, grad, cache, rows, ages, width, lr_, decay, keep, eps_,
                                        part_start(n, part, parts), part_start(n, part + 1, parts))
    # the ages, after every row has read its own: one more dense step for the rows left alone
    with nogil:
        for i in range(total):
            ages[i] += 1
        for k in range(n):
            ages[rows_view[k]] = 0
