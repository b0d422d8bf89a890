# Policy-output kernels: softmax with temperature, its log, and the score-function
# gradients of softmax (with an optional entropy bonus fused in), Bernoulli (sigmoid)
# and linear-Gaussian policies, and PPO's clipped surrogate for the Bernoulli and softmax policies.
#
# Design: rows are handled in cache-resident chunks, each as a few flat passes (row
# max, z = (logits - max(logits)) / tau, exp, row sums) so the exponentials vectorise
# (float32 uses _common's libm-free exp); chunks are split over OpenMP threads when
# the input is large. z is computed as the NumPy twin does (finite for any finite
# logits), and row sums are in double, so long float32 rows agree too.
# Private: only pgcore/kernels.py calls these, with arguments pgcore._validate has checked (the
# checks the NumPy twins share), C-contiguous; they trust them and do not check them again.
from cython.parallel cimport prange
from cython cimport floating
cimport numpy as cnp
import numpy as np

from libc.math cimport exp, fabs, log, log1p
from libc.stdlib cimport free, malloc

from _common cimport PARALLEL_MIN_ELEMENTS, exp_, gemm, parallel_parts, part_start, sigmoid_

cnp.import_array()


cdef enum:
    CHUNK_ROWS = 256  # rows per unit of work: a cache-resident block, flat passes over it


cdef void _softmax_chunk(const floating* logits, floating* out, Py_ssize_t rows, Py_ssize_t n_actions,
                         floating tau, bint log_) noexcept nogil:
    """softmax (or log_softmax) of `rows` consecutive rows, as flat passes that vectorise."""
    cdef Py_ssize_t i, j, k, size = rows * n_actions
    cdef const floating* row
    cdef floating top, log_total
    cdef floating* exps
    cdef double total
    for i in range(rows):  # each row's max, spread over the row's slots of out
        row = logits + i * n_actions
        top = row[0]
        for j in range(1, n_actions):
            if row[j] > top:
                top = row[j]
        for j in range(n_actions):
            out[i * n_actions + j] = top
    for k in range(size):  # z = (logits - max) / tau: never overflows to NaN
        out[k] = (logits[k] - out[k]) / tau
    if log_:
        exps = <floating*>malloc(size * sizeof(floating))  # exp(z) beside z, flat: it vectorises
        if exps != NULL:
            for k in range(size):
                exps[k] = exp_(out[k])
        for i in range(rows):
            total = 0
            for j in range(n_actions):
                total += exps[i * n_actions + j] if exps != NULL else exp_(out[i * n_actions + j])
            log_total = <floating>log(total)
            for j in range(n_actions):
                out[i * n_actions + j] = out[i * n_actions + j] - log_total
        free(exps)
    else:
        for k in range(size):
            out[k] = exp_(out[k])
        for i in range(rows):
            total = 0  # in double: long float32 rows stay accurate
            for j in range(n_actions):
                total += out[i * n_actions + j]
            for j in range(n_actions):
                out[i * n_actions + j] = <floating>(out[i * n_actions + j] / total)


cdef void _softmax_grad_chunk(const floating* logits, const cnp.intp_t* actions, const floating* weights,
                              floating* out, Py_ssize_t rows, Py_ssize_t n_actions, floating tau,
                              floating entropy) noexcept nogil:
    """out = weights * (onehot(actions) - p) / tau - entropy * p * (log p + H) / tau for `rows`
    rows, p = softmax(logits / tau) and H = -sum(p log p): the score plus the gradient of an
    entropy bonus. A p that underflowed to 0 adds nothing to H or to its own slot (p log p -> 0)."""
    cdef Py_ssize_t i, j, k
    cdef floating scale, p
    cdef double minus_h
    cdef double* log_p = NULL
    _softmax_chunk(logits, out, rows, n_actions, tau, False)
    if entropy != 0:  # each log p once, kept for both of the row's passes (recomputed if malloc fails)
        log_p = <double*>malloc(rows * n_actions * sizeof(double))
    for i in range(rows):
        scale = weights[i] / tau
        if entropy == 0:
            for j in range(n_actions):  # (onehot - p) * scale, in the twin's order: same NaN/inf results
                out[i * n_actions + j] = ((j == actions[i]) - out[i * n_actions + j]) * scale
            continue
        minus_h = 0  # sum p log p, in double
        for j in range(n_actions):
            k = i * n_actions + j
            p = out[k]
            if p > 0:
                if log_p != NULL:
                    log_p[k] = log(p)
                minus_h += p * (log_p[k] if log_p != NULL else log(p))
        for j in range(n_actions):
            k = i * n_actions + j
            p = out[k]
            out[k] = ((j == actions[i]) - p) * scale - (
                entropy * p * <floating>(((log_p[k] if log_p != NULL else log(p)) - minus_h) if p > 0 else 0) / tau)
    free(log_p)


cdef inline void _softmax_chunks(const floating* logits, floating* out, Py_ssize_t n, Py_ssize_t n_actions,
                                 floating tau, bint log_, Py_ssize_t first, Py_ssize_t stop) noexcept nogil:
    cdef Py_ssize_t c, start
    for c in range(first, stop):
        start = c * CHUNK_ROWS
        _softmax_chunk(logits + start * n_actions, out + start * n_actions, min(CHUNK_ROWS, n - start), n_actions,
                       tau, log_)


def softmax(const floating[:, ::1] logits_view, double tau, int n_threads, bint log=False):
    cdef Py_ssize_t part, n = logits_view.shape[0], n_actions = logits_view.shape[1]
    cdef Py_ssize_t n_chunks = (n + CHUNK_ROWS - 1) // CHUNK_ROWS
    cdef floating t = <floating>tau
    out_array = np.empty((n, n_actions), dtype=np.float32 if floating is float else np.float64)
    cdef floating[:, ::1] out_view = out_array
    if n == 0:
        return out_array
    cdef const floating* logits = &logits_view[0, 0]
    cdef floating* out = &out_view[0, 0]
    cdef int parts = parallel_parts(n * n_actions, PARALLEL_MIN_ELEMENTS, n_threads)
    with nogil:
        if parts == 1:  # serial: no OpenMP call at all
            _softmax_chunks(logits, out, n, n_actions, t, log, 0, n_chunks)
        else:
            for part in prange(parts, schedule='static', num_threads=parts):
                _softmax_chunks(logits, out, n, n_actions, t, log, part_start(n_chunks, part, parts),
                                part_start(n_chunks, part + 1, parts))
    return out_array


cdef inline void _softmax_grad_chunks(const floating* logits, const cnp.intp_t* actions, const floating* weights,
                                      floating* out, Py_ssize_t n, Py_ssize_t n_actions, floating tau,
                                      floating bonus, Py_ssize_t first, Py_ssize_t stop) noexcept nogil:
    cdef Py_ssize_t c, start
    for c in range(first, stop):
        start = c * CHUNK_ROWS
        _softmax_grad_chunk(logits + start * n_actions, actions + start, weights + start, out + start * n_actions,
                            min(CHUNK_ROWS, n - start), n_actions, tau, bonus)


def softmax_policy_grad(const floating[:, ::1] logits_view, const cnp.intp_t[::1] actions_view,
                        const floating[::1] weights_view, double tau, double entropy, int n_threads):
    cdef Py_ssize_t part, n = logits_view.shape[0], n_actions = logits_view.shape[1]
    cdef Py_ssize_t n_chunks = (n + CHUNK_ROWS - 1) // CHUNK_ROWS
    cdef floating t = <floating>tau, bonus = <floating>entropy
    out_array = np.empty((n, n_actions), dtype=np.float32 if floating is float else np.float64)
    cdef floating[:, ::1] out_view = out_array
    if n == 0:
        return out_array
    cdef const floating* logits = &logits_view[0, 0]
    cdef const cnp.intp_t* actions = &actions_view[0]
    cdef const floating* weights = &weights_view[0]
    cdef floating* out = &out_view[0, 0]
    cdef int parts = parallel_parts(n * n_actions, PARALLEL_MIN_ELEMENTS, n_threads)
    with nogil:
        if parts == 1:  # serial: no OpenMP call at all
            _softmax_grad_chunks(logits, actions, weights, out, n, n_actions, t, bonus, 0, n_chunks)
        else:
            for part in prange(parts, schedule='static', num_threads=parts):
                _softmax_grad_chunks(logits, actions, weights, out, n, n_actions, t, bonus,
                                     part_start(n_chunks, part, parts), part_start(n_chunks, part + 1, parts))
    return out_array


cdef inline void _sigmoid_grad_range(const floating* logits, const cnp.intp_t* actions, const floating* weights,
                                     floating* out, Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    """Flat passes that vectorise: e = exp(-|logit|) into out, then sigmoid (as _common.sigmoid_
    computes it), then the gradient. One pass, converting the int64 actions to float (which
    baseline x86-64 cannot do in vector registers) kept the whole loop scalar: measured 1.6x
    slower (100,000 values, float32)."""
    cdef Py_ssize_t i
    cdef floating e, p
    for i in range(start, stop):
        out[i] = exp_(-logits[i] if logits[i] >= 0 else logits[i])
    for i in range(start, stop):
        e = out[i]
        p = 1 / (1 + e)
        out[i] = p if logits[i] >= 0 else e * p
    for i in range(start, stop):
        out[i] = weights[i] * ((1 if actions[i] else 0) - out[i])


def sigmoid_policy_grad(const floating[::1] logits_view, const cnp.intp_t[::1] actions_view,
                        const floating[::1] weights_view, int n_threads):
    cdef Py_ssize_t part, n = logits_view.shape[0]
    out_array = np.empty(n, dtype=np.float32 if floating is float else np.float64)
    cdef floating[::1] out_view = out_array
    if n == 0:
        return out_array
    # Raw pointers in locals: the compiler can vectorise (memoryview fields may alias).
    cdef const floating* logits = &logits_view[0]
    cdef const cnp.intp_t* actions = &actions_view[0]
    cdef const floating* weights = &weights_view[0]
    cdef floating* out = &out_view[0]
    cdef int parts = parallel_parts(n, PARALLEL_MIN_ELEMENTS, n_threads)
    with nogil:
        if parts == 1:  # serial: no OpenMP call at all
            _sigmoid_grad_range(logits, actions, weights, out, 0, n)
        else:
            for part in prange(parts, schedule='static', num_threads=parts):
                _sigmoid_grad_range(logits, actions, weights, out, part_start(n, part, parts),
                                    part_start(n, part + 1, parts))
    return out_array


cdef inline double _softplus(double x) noexcept nogil:
    """log(1 + e^x) without overflow."""
    return (x if x > 0 else 0) + log1p(exp(-fabs(x)))


cdef inline floating _clipped_sigmoid_grad(floating logit, floating old_logit, cnp.intp_t action,
                                           floating advantage, double clip) noexcept nogil:
    """One step's gradient of min(r A, clip(r, 1 - clip, 1 + clip) A) with respect to the logit, in
    double from log-probabilities: log pi(a | z) = -softplus(-s z), s = +1 up / -1 down, and
    r (a - sigmoid(z)) = s exp(log r - softplus(s z)), finite however far z moved from old_logit."""
    cdef double s = 1.0 if action else -1.0
    cdef double a = advantage
    cdef double log_ratio = _softplus(-s * old_logit) - _softplus(-s * logit)
    cdef double ratio = exp(log_ratio)
    if (a > 0 and ratio > 1 + clip) or (a < 0 and ratio < 1 - clip):
        return 0
    return <floating>(a * s * exp(log_ratio - _softplus(s * logit)))


cdef inline void _clipped_sigmoid_grad_range(const floating* logits, const floating* old_logits,
                                             const cnp.intp_t* actions, const floating* advantages, double clip,
                                             floating* out, Py_ssize_t start, Py_ssize_t stop) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(start, stop):
        out[i] = _clipped_sigmoid_grad(logits[i], old_logits[i], actions[i], advantages[i], clip)


def clipped_sigmoid_policy_grad(const floating[::1] logits_view, const floating[::1] old_logits_view,
                                const cnp.intp_t[::1] actions_view, const floating[::1] advantages_view,
                                double clip, int n_threads):
    """A scalar loop (libm exp and log1p in double): it runs over a batch's steps a few times an
    update, far from the per-frame hot path, and double keeps float32 results within rounding
    of the twin's."""
    cdef Py_ssize_t part, n = logits_view.shape[0]
    out_array = np.empty(n, dtype=np.float32 if floating is float else np.float64)
    cdef floating[::1] out_view = out_array
    if n == 0:
        return out_array
    cdef const floating* logits = &logits_view[0]
    cdef const floating* old_logits = &old_logits_view[0]
    cdef const cnp.intp_t* actions = &actions_view[0]
    cdef const floating* advantages = &advantages_view[0]
    cdef floating* out = &out_view[0]
    cdef int parts = parallel_parts(n, PARALLEL_MIN_ELEMENTS, n_threads)
    with nogil:
        if parts == 1:  # serial: no OpenMP call at all
            _clipped_sigmoid_grad_range(logits, old_logits, actions, advantages, clip, out, 0, n)
        else:
            for part in prange(parts, schedule='static', num_threads=parts):
                _clipped_sigmoid_grad_range(logits, old_logits, actions, advantages, clip, out,
                                            part_start(n, part, parts), part_start(n, part + 1, parts))
    return out_array


cdef inline void _log_normalizer(const floating* logits, Py_ssize_t n_actions, double* top,
                                 double* log_total) noexcept nogil:
    """log softmax(logits)[k] = (logits[k] - top) - log_total for one row, in double, max-shifted."""
    cdef Py_ssize_t k
    cdef double total = 0
    top[0] = logits[0]
    for k in range(1, n_actions):
        if logits[k] > top[0]:
            top[0] = logits[k]
    for k in range(n_actions):
        total += exp(logits[k] - top[0])
    log_total[0] = log(total)


cdef inline void _clipped_softmax_grad_row(const floating* logits, const floating* old_logits, cnp.intp_t action,
                                           floating advantage, double clip, Py_ssize_t n_actions,
                                           floating* out) noexcept nogil:
    """One step's gradient of min(r A, clip(r, 1 - clip, 1 + clip) A) with respect to its logits,
    r = p[a] / p_old[a], in double from log-softmax: -A r p[k] = -A exp(log p[k] + log r) for
    k != a, and A r (1 - p[a]) as minus their sum (r - r p[a] would cancel when r is huge)."""
    cdef Py_ssize_t k
    cdef double a = advantage, top, log_total, old_top, old_log_total, log_ratio, ratio, others, term
    _log_normalizer(logits, n_actions, &top, &log_total)
    _log_normalizer(old_logits, n_actions, &old_top, &old_log_total)
    log_ratio = ((logits[action] - top) - log_total) - ((old_logits[action] - old_top) - old_log_total)
    ratio = exp(log_ratio)
    if (a > 0 and ratio > 1 + clip) or (a < 0 and ratio < 1 - clip):
        for k in range(n_actions):
            out[k] = 0
        return
    others = 0  # sum over k != a of -r p[k], in order, as the twin sums its row
    for k in range(n_actions):
        if k != action:
            term = -exp(((logits[k] - top) - log_total) + log_ratio)
            others += term
            out[k] = <floating>(term * a)
    out[action] = <floating>(-others * a)


cdef inline void _clipped_softmax_grad_range(const floating* logits, const floating* old_logits,
                                             const cnp.intp_t* actions, const floating* advantages, double clip,
                                             Py_ssize_t n_actions, floating* out, Py_ssize_t start,
                                             Py_ssize_t stop) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(start, stop):
        _clipped_softmax_grad_row(logits + i * n_actions, old_logits + i * n_actions, actions[i], advantages[i],
                                  clip, n_actions, out + i * n_actions)


def clipped_softmax_policy_grad(const floating[:, ::1] logits_view, const floating[:, ::1] old_logits_view,
                                const cnp.intp_t[::1] actions_view, const floating[::1] advantages_view,
                                double clip, int n_threads):
    """A scalar loop in double, as clipped_sigmoid_policy_grad: off the per-frame hot path."""
    cdef Py_ssize_t part, n = logits_view.shape[0], n_actions = logits_view.shape[1]
    out_array = np.zeros((n, n_actions), dtype=np.float32 if floating is float else np.float64)
    cdef floating[:, ::1] out_view = out_array
    if n == 0 or n_actions == 0:
        return out_array
    cdef const floating* logits = &logits_view[0, 0]
    cdef const floating* old_logits = &old_logits_view[0, 0]
    cdef const cnp.intp_t* actions = &actions_view[0]
    cdef const floating* advantages = &advantages_view[0]
    cdef floating* out = &out_view[0, 0]
    cdef int parts = parallel_parts(n * n_actions, PARALLEL_MIN_ELEMENTS, n_threads)
    with nogil:
        if parts == 1:  # serial: no OpenMP call at all
            _clipped_softmax_grad_range(logits, old_logits, actions, advantages, clip, n_actions, out, 0, n)
        else:
            for part in prange(parts, schedule='static', num_threads=parts):
                _clipped_softmax_grad_range(logits, old_logits, actions, advantages, clip, n_actions, out,
                                            part_start(n, part, parts), part_start(n, part + 1, parts))
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
