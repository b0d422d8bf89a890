# Policy-output kernels: softmax with temperature, its log, and the score-function
# gradients of softmax, Bernoulli (sigmoid) and linear-Gaussian policies.
#
# Design: one `cdef inline ... noexcept nogil` function per row (a handful of
# actions), rows split over OpenMP threads when the input is large. Each row is
# computed as the NumPy twin does, z = (logits - max(logits)) / tau (finite for any
# finite logits), with the sum of exponentials in double, so long float32 rows agree too.
# Arguments arrive validated and C-contiguous (pgcore._validate).
from cython.parallel cimport prange
from cython cimport floating
cimport numpy as cnp
import numpy as np

from libc.math cimport log

from _common cimport PARALLEL_MIN_ELEMENTS, exp_, sigmoid_, gemm

cnp.import_array()


cdef inline double _shifted_row(const floating* logits, floating* z, Py_ssize_t n_actions,
                                floating tau) noexcept nogil:
    """z = (logits - max(logits)) / tau, which never overflows to NaN; returns sum(exp(z)) in double."""
    cdef Py_ssize_t j
    cdef floating top = logits[0]
    cdef double total = 0
    for j in range(1, n_actions):
        if logits[j] > top:
            top = logits[j]
    for j in range(n_actions):
        z[j] = (logits[j] - top) / tau
        total += exp_(z[j])
    return total


cdef inline void _softmax_row(const floating* logits, floating* out, Py_ssize_t n_actions,
                              floating tau) noexcept nogil:
    cdef Py_ssize_t j
    cdef floating top = logits[0]
    cdef double total = 0
    for j in range(1, n_actions):
        if logits[j] > top:
            top = logits[j]
    for j in range(n_actions):
        out[j] = exp_((logits[j] - top) / tau)
        total += out[j]
    for j in range(n_actions):
        out[j] = <floating>(out[j] / total)


cdef inline void _log_softmax_row(const floating* logits, floating* out, Py_ssize_t n_actions,
                                  floating tau) noexcept nogil:
    cdef Py_ssize_t j
    cdef floating log_total = <floating>log(_shifted_row(logits, out, n_actions, tau))
    for j in range(n_actions):
        out[j] = out[j] - log_total


cdef inline void _softmax_grad_row(const floating* logits, Py_ssize_t action, floating weight,
                                   floating* out, Py_ssize_t n_actions, floating tau) noexcept nogil:
    """out = weight * (onehot(action) - softmax(logits / tau)) / tau."""
    cdef Py_ssize_t j
    cdef floating scale = weight / tau
    _softmax_row(logits, out, n_actions, tau)
    for j in range(n_actions):
        out[j] = -out[j] * scale
    out[action] = out[action] + scale


def softmax(const floating[:, ::1] logits, double tau, int n_threads, bint log=False):
    cdef Py_ssize_t i, n = logits.shape[0], n_actions = logits.shape[1]
    cdef floating t = <floating>tau
    dtype = np.float32 if floating is float else np.float64
    out_array = np.empty((n, n_actions), dtype=dtype)
    cdef floating[:, ::1] out = out_array
    cdef int threads = n_threads if n * n_actions >= PARALLEL_MIN_ELEMENTS else 1
    with nogil:
        if threads > 1:
            for i in prange(n, schedule='static', num_threads=threads):
                if log:
                    _log_softmax_row(&logits[i, 0], &out[i, 0], n_actions, t)
                else:
                    _softmax_row(&logits[i, 0], &out[i, 0], n_actions, t)
        else:
            for i in range(n):
                if log:
                    _log_softmax_row(&logits[i, 0], &out[i, 0], n_actions, t)
                else:
                    _softmax_row(&logits[i, 0], &out[i, 0], n_actions, t)
    return out_array


def softmax_policy_grad(const floating[:, ::1] logits, const cnp.intp_t[::1] actions,
                        const floating[::1] weights, double tau, int n_threads):
    cdef Py_ssize_t i, n = logits.shape[0], n_actions = logits.shape[1]
    cdef floating t = <floating>tau
    out_array = np.empty((n, n_actions), dtype=np.float32 if floating is float else np.float64)
    cdef floating[:, ::1] out = out_array
    cdef int threads = n_threads if n * n_actions >= PARALLEL_MIN_ELEMENTS else 1
    with nogil:
        if threads > 1:
            for i in prange(n, schedule='static', num_threads=threads):
                _softmax_grad_row(&logits[i, 0], actions[i], weights[i], &out[i, 0], n_actions, t)
        else:
            for i in range(n):
                _softmax_grad_row(&logits[i, 0], actions[i], weights[i], &out[i, 0], n_actions, t)
    return out_array


def sigmoid_policy_grad(const floating[::1] logits_view, const cnp.intp_t[::1] actions_view,
                        const floating[::1] weights_view, int n_threads):
    cdef Py_ssize_t i, n = logits_view.shape[0]
    out_array = np.empty(n, dtype=np.float32 if floating is float else np.float64)
    cdef floating[::1] out_view = out_array
    if n == 0:
        return out_array
    # Raw pointers in locals: the compiler can vectorise (memoryview fields may alias).
    cdef const floating* logits = &logits_view[0]
    cdef const cnp.intp_t* actions = &actions_view[0]
    cdef const floating* weights = &weights_view[0]
    cdef floating* out = &out_view[0]
    cdef int threads = n_threads if n >= PARALLEL_MIN_ELEMENTS else 1
    with nogil:
        if threads > 1:
            for i in prange(n, schedule='static', num_threads=threads):
                out[i] = weights[i] * (<floating>actions[i] - sigmoid_(logits[i]))
        else:
            for i in range(n):
                out[i] = weights[i] * (<floating>actions[i] - sigmoid_(logits[i]))
    return out_array


def gaussian_policy_grad(const floating[:, ::1] theta, const floating[:, ::1] states,
                         const floating[:, ::1] actions, const floating[::1] weights, double sigma):
    """theta (D, K), states (N, D), actions (N, K): states.T @ (w * (a - states @ theta)) / sigma^2.

    Two BLAS calls; the residual is formed in place in one buffer between them.
    """
    cdef Py_ssize_t i, k, n = states.shape[0], d = theta.shape[0], n_out = theta.shape[1]
    cdef floating scale = <floating>(1.0 / (sigma * sigma))
    dtype = np.float32 if floating is float else np.float64
    residual_array = np.empty((n, n_out), dtype=dtype)
    grad_array = np.empty((d, n_out), dtype=dtype)
    cdef floating[:, ::1] residual = residual_array
    cdef floating[:, ::1] grad = grad_array
    with nogil:
        if n > 0:
            # residual = actions - states @ theta, then scaled by each sample's weight
            for i in range(n):
                for k in range(n_out):
                    residual[i, k] = actions[i, k]
            gemm(False, False, n, n_out, d, -1, &states[0, 0], d, &theta[0, 0],
                 n_out, 1, &residual[0, 0], n_out)
            for i in range(n):
                for k in range(n_out):
                    residual[i, k] = residual[i, k] * weights[i]
        gemm(True, False, d, n_out, n, scale, &states[0, 0], d,
             &residual[0, 0], n_out, 0, &grad[0, 0], n_out)
    return grad_array
