# Optimizer steps: RMSProp and Adam, in place, one fused pass over the parameters.
#
# Design: the NumPy form makes ~7 passes and 4 temporaries over 1.28M values;
# here each element is read and written once, the loop vectorises (sqrt with
# -fno-math-errno), and large tensors are split over threads: each kernel's loop is
# written once, over a range, which one thread runs whole or each thread runs a part of.
#
# Private: only pgcore/kernels.py calls these, with arguments pgcore._validate has checked (the
# checks the NumPy twins share); they trust them and do not check them again.
from cython.parallel cimport prange
from cython cimport floating

from _common cimport PARALLEL_MIN_ELEMENTS, parallel_parts, part_start, sqrt_


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
