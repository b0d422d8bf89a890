# Optimizer steps: RMSProp and Adam, in place, one fused pass over the parameters.
#
# Design: the NumPy form makes ~7 passes and 4 temporaries over 1.28M values;
# here each element is read and written once, the loop vectorises (sqrt with
# -fno-math-errno), and large tensors are split over threads.
from cython.parallel cimport prange
from cython cimport floating

from _common cimport PARALLEL_MIN_ELEMENTS, sqrt_


cdef inline void _rmsprop_element(floating* param, floating grad, floating* cache, floating lr,
                                  floating decay, floating keep, floating eps) noexcept nogil:
    cache[0] = decay * cache[0] + keep * grad * grad
    param[0] = param[0] - lr * grad / (sqrt_(cache[0]) + eps)


def rmsprop_step(floating[::1] param_view, const floating[::1] grad_view, floating[::1] cache_view,
                 double lr, double decay, double eps, int n_threads):
    cdef Py_ssize_t i, n = param_view.shape[0]
    cdef floating lr_ = <floating>lr, decay_ = <floating>decay, eps_ = <floating>eps
    cdef floating keep = <floating>(1 - decay)
    if n == 0:
        return
    # Raw pointers in locals: the compiler can vectorise (memoryview fields may alias).
    cdef floating* param = &param_view[0]
    cdef const floating* grad = &grad_view[0]
    cdef floating* cache = &cache_view[0]
    cdef int threads = n_threads if n >= PARALLEL_MIN_ELEMENTS else 1
    with nogil:
        if threads > 1:
            for i in prange(n, schedule='static', num_threads=threads):
                _rmsprop_element(&param[i], grad[i], &cache[i], lr_, decay_, keep, eps_)
        else:
            for i in range(n):
                _rmsprop_element(&param[i], grad[i], &cache[i], lr_, decay_, keep, eps_)


cdef inline void _adam_element(floating* param, floating grad, floating* m, floating* v, floating step_size,
                               floating beta1, floating beta2, floating v_scale, floating eps) noexcept nogil:
    m[0] = beta1 * m[0] + (1 - beta1) * grad
    v[0] = beta2 * v[0] + (1 - beta2) * grad * grad
    param[0] = param[0] - step_size * m[0] / (sqrt_(v[0] * v_scale) + eps)


def adam_step(floating[::1] param_view, const floating[::1] grad_view, floating[::1] m_view,
              floating[::1] v_view, double step_size, double beta1, double beta2, double v_scale,
              double eps, int n_threads):
    """Bias corrections come in folded into step_size = lr / (1 - beta1**t) and
    v_scale = 1 / (1 - beta2**t), computed once in double by the caller."""
    cdef Py_ssize_t i, n = param_view.shape[0]
    cdef floating step_ = <floating>step_size, beta1_ = <floating>beta1, beta2_ = <floating>beta2
    cdef floating v_scale_ = <floating>v_scale, eps_ = <floating>eps
    if n == 0:
        return
    cdef floating* param = &param_view[0]
    cdef const floating* grad = &grad_view[0]
    cdef floating* m = &m_view[0]
    cdef floating* v = &v_view[0]
    cdef int threads = n_threads if n >= PARALLEL_MIN_ELEMENTS else 1
    with nogil:
        if threads > 1:
            for i in prange(n, schedule='static', num_threads=threads):
                _adam_element(&param[i], grad[i], &m[i], &v[i], step_, beta1_, beta2_, v_scale_, eps_)
        else:
            for i in range(n):
                _adam_element(&param[i], grad[i], &m[i], &v[i], step_, beta1_, beta2_, v_scale_, eps_)
