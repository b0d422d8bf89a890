"""The compiled kernels: typed Cython, GIL released, OpenMP where it pays.

Each function checks its arguments exactly as its NumPy twin in
`pgcore.reference` does (pgcore._validate), then runs the compiled code on
C-contiguous arrays with `pgcore.get_num_threads()` threads. The checks run once,
here: the compiled functions trust them. Each function's docstring is its twin's
(`@_documented`): one text, written in pgcore/reference.py, for both.

Importing it from a source tree whose extension modules were never built raises
one ImportError that says how to build them.
"""
import math
import os

import numpy as np

from pgcore import _validate
from pgcore import _validate as v
from pgcore import reference as _twins
from pgcore._threads import get_num_threads

_COMPILED = tuple(f"pgcore.{name}" for name in ("_atari", "_nn", "_openmp", "_optim", "_policy", "_returns",
                                                 "_sparse"))

# `import pgcore._x as _x`, not `from pgcore import _x`: only this form reports a missing module as
# ModuleNotFoundError with name "pgcore._x" (the other says "cannot import name" about pgcore).
try:
    import pgcore._atari as _atari
    import pgcore._nn as _nn
    import pgcore._optim as _optim
    import pgcore._policy as _policy
    import pgcore._returns as _returns
    import pgcore._sparse as _sparse
    from pgcore._openmp import OPENMP_ENABLED
except ModuleNotFoundError as error:
    if error.name not in _COMPILED:
        raise  # something a built module needs (SciPy, say) is missing: that error says what
    raise ImportError(
        f"pgcore's compiled kernels are not built in {os.path.dirname(os.path.abspath(__file__))} "
        f"(no {error.name} for this Python): run `pip install .` (or `pip install -e .` / "
        "`python setup.py build_ext --inplace` in a source checkout); pgcore.reference has the NumPy twins",
        name=__name__) from None

__all__ = [
    "softmax", "log_softmax", "softmax_policy_grad", "sigmoid_policy_grad", "clipped_sigmoid_policy_grad",
    "clipped_softmax_policy_grad", "relu", "relu_backward",
    "linear_backward", "mlp_forward", "mlp_backward", "discounted_returns", "gae_advantages", "standardize", "squared_error",
    "gaussian_policy_grad", "rmsprop_step", "rmsprop_rows_step", "rmsprop_rows_flush", "adam_step", "pong_preprocess",
    "pong_difference",
    "pong_sparse_difference", "sparse_mlp_forward", "sparse_mlp_backward", "pong_step", "atari_sparse_levels",
    "atari_step", "OPENMP_ENABLED",
]


def _documented(kernel):
    """Gives `kernel` the docstring of its NumPy twin, the function of its name in pgcore.reference."""
    kernel.__doc__ = getattr(_twins, kernel.__name__).__doc__
    return kernel


def _rows(array):
    """A (N, A) view of a (N, A) or (A,) array."""
    return array if array.ndim == 2 else array.reshape(1, array.shape[0])


def _columns(array):
    """A (N, K) view of a (N, K) or (N,) array."""
    return array if array.ndim == 2 else array.reshape(array.shape[0], 1)


@_documented
def softmax(logits, tau=1.0):
    logits, tau = v.softmax_args(logits, tau)
    return _policy.softmax(_rows(logits), tau, get_num_threads()).reshape(logits.shape)


@_documented
def log_softmax(logits, tau=1.0):
    logits, tau = v.softmax_args(logits, tau)
    return _policy.softmax(_rows(logits), tau, get_num_threads(), log=True).reshape(logits.shape)


@_documented
def softmax_policy_grad(logits, actions, weights, tau=1.0, entropy=0.0):
    logits, actions, weights = v.policy_grad_args(logits, actions, weights, logits_ndim=2)
    tau, entropy = v.positive("tau", tau), v.scalar("entropy", entropy)
    return _policy.softmax_policy_grad(logits, actions, weights, tau, entropy, get_num_threads())


@_documented
def sigmoid_policy_grad(logits, actions, weights):
    logits, actions, weights = v.policy_grad_args(logits, actions, weights, logits_ndim=1)
    return _policy.sigmoid_policy_grad(logits, actions, weights, get_num_threads())


@_documented
def clipped_sigmoid_policy_grad(logits, old_logits, actions, advantages, clip=0.2):
    logits, old_logits, actions, advantages, clip = v.clipped_policy_grad_args(
        logits, old_logits, actions, advantages, clip)
    return _policy.clipped_sigmoid_policy_grad(logits, old_logits, actions, advantages, clip, get_num_threads())


@_documented
def clipped_softmax_policy_grad(logits, old_logits, actions, advantages, clip=0.2):
    logits, old_logits, actions, advantages, clip = v.clipped_policy_grad_args(
        logits, old_logits, actions, advantages, clip, logits_ndim=2)
    return _policy.clipped_softmax_policy_grad(logits, old_logits, actions, advantages, clip, get_num_threads())


@_documented
def relu(x):
    x = v.float_array("x", x, None)
    return _nn.relu(x.reshape(-1), get_num_threads()).reshape(x.shape)


@_documented
def relu_backward(grad_out, x):
    grad_out, x = v.relu_backward_args(grad_out, x)
    return _nn.relu_backward(grad_out.reshape(-1), x.reshape(-1), get_num_threads()).reshape(x.shape)


@_documented
def linear_backward(x, grad_out, w):
    x, grad_out, w = v.linear_backward_args(x, grad_out, w)
    return _nn.linear_backward(x, grad_out, w)


@_documented
def mlp_forward(x, w1, w2):
    x, w1, w2 = v.mlp_forward_args(x, w1, w2)
    rows = _rows(x)
    h, logits = _nn.mlp_forward(rows, rows, w1, _columns(w2), get_num_threads())
    if x.ndim == 1:
        h, logits = h[0], logits[0]
    return h, logits.reshape(logits.shape[:-1] + w2.shape[1:])


@_documented
def mlp_backward(x, h, grad_logits, w2):
    x, h, grad_logits, w2 = v.mlp_backward_args(x, h, grad_logits, w2)
    grad_w1, grad_w2 = _nn.mlp_backward(x, x, h, _columns(grad_logits), _columns(w2), get_num_threads())
    return grad_w1, grad_w2.reshape(w2.shape)


@_documented
def discounted_returns(rewards, gamma, dones=None):
    rewards, gamma, dones = v.returns_args(rewards, gamma, dones)
    streams = _columns(rewards)
    cut = np.empty((0, 0), np.uint8) if dones is None else dones.reshape(streams.shape)
    return _returns.discounted_returns(streams, gamma, cut, dones is not None).reshape(rewards.shape)


@_documented
def gae_advantages(rewards, values, gamma, lam, dones=None, last_values=None):
    rewards, values, gamma, lam, dones, last_values = v.gae_args(rewards, values, gamma, lam, dones, last_values)
    streams = _columns(rewards)
    cut = np.empty((0, 0), np.uint8) if dones is None else dones.reshape(streams.shape)
    return _returns.gae_advantages(streams, _columns(values), gamma, lam, cut, dones is not None,
                                   last_values.reshape(-1)).reshape(rewards.shape)


@_documented
def standardize(x, eps=1e-8):
    x, eps = v.standardize_args(x, eps)
    return _returns.standardize(x.reshape(-1), eps, get_num_threads()).reshape(x.shape)


@_documented
def squared_error(predictions, targets, scale=1.0):
    predictions, targets, scale = v.squared_error_args(predictions, targets, scale)
    loss, grad = _returns.squared_error(predictions.reshape(-1), targets.reshape(-1), scale, get_num_threads())
    return loss, grad.reshape(predictions.shape)


@_documented
def gaussian_policy_grad(theta, states, actions, weights, sigma):
    theta, states, actions, weights, sigma = v.gaussian_args(theta, states, actions, weights, sigma)
    grad = _policy.gaussian_policy_grad(_columns(theta), states, _columns(actions), weights, sigma)
    return grad.reshape(theta.shape)


@_documented
def rmsprop_step(param, grad, cache, lr, decay=0.99, eps=1e-5):
    param, grad, cache, lr, decay, eps = v.rmsprop_args(param, grad, cache, lr, decay, eps)
    # Updated in place: strided arrays are worked on as contiguous copies, then written back.
    flat_param, flat_cache = np.ascontiguousarray(param).reshape(-1), np.ascontiguousarray(cache).reshape(-1)
    _optim.rmsprop_step(flat_param, grad.reshape(-1), flat_cache, lr, decay, eps, get_num_threads())
    if not np.shares_memory(flat_param, param):
        param[...] = flat_param.reshape(param.shape)
    if not np.shares_memory(flat_cache, cache):
        cache[...] = flat_cache.reshape(cache.shape)


@_documented
def rmsprop_rows_step(param, grad, cache, rows, ages, lr, decay=0.99, eps=1e-5):
    param, grad, cache, rows, ages, lr, decay, eps = v.rmsprop_rows_args(param, grad, cache, rows, ages, lr, decay,
                                                                         eps)
    _optim.rmsprop_rows_step(param, grad, cache, rows, ages, lr, decay, eps, get_num_threads())


# Not compiled: one NumPy pass over the cache (a broadcast multiply), run at a checkpoint, not per
# update; both modules share this one function.
rmsprop_rows_flush = _twins.rmsprop_rows_flush


@_documented
def adam_step(param, grad, m, v, step, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    param, grad, m, v, step, lr, beta1, beta2, eps = _validate.adam_args(param, grad, m, v, step, lr, beta1, beta2, eps)
    flat = [np.ascontiguousarray(a).reshape(-1) for a in (param, m, v)]
    _optim.adam_step(flat[0], grad.reshape(-1), flat[1], flat[2], lr / (1 - beta1**step),
                     beta1, beta2, 1 / (1 - beta2**step), eps, get_num_threads())
    for original, updated in zip((param, m, v), flat):
        if not np.shares_memory(original, updated):
            original[...] = updated.reshape(original.shape)


def _screens(frames):
    """A C-contiguous batch of RGB (N, 210, 160, 3) or grayscale (N, 210, 160) frames as _atari
    takes it: (N, bytes a frame), a view."""
    return frames.reshape(len(frames), math.prod(frames.shape[1:]))


@_documented
def pong_preprocess(frames):
    frames = v.frames_array(frames)
    leading = frames.shape[:frames.ndim - v.frame_ndim(frames)]
    batch = np.ascontiguousarray(frames.reshape((-1,) + frames.shape[len(leading):]))
    return _atari.pong_preprocess(_screens(batch), get_num_threads()).reshape(leading + (6400,))


@_documented
def pong_difference(frames, previous, rows=None, fresh=None):
    frames, previous, rows, fresh = v.difference_args(frames, previous, rows, fresh)
    return _atari.pong_difference(_screens(frames), previous, rows, fresh, get_num_threads())


# ---- sparse inputs end to end (the Pong trainer) ----

@_documented
def pong_sparse_difference(frames, previous, rows=None, fresh=None, with_frame=False):
    with_frame = v.flag("with_frame", with_frame)  # checked first, as the twin does
    frames, previous, rows, fresh = v.difference_args(frames, previous, rows, fresh)
    return _atari.pong_sparse_difference(_screens(frames), previous, rows, fresh, with_frame)


@_documented
def sparse_mlp_forward(starts, indices, signs, w1, w2):
    starts, indices, signs, w1, w2 = v.sparse_forward_args(starts, indices, signs, w1, w2)
    h, logits = _sparse.sparse_mlp_forward(starts, indices, signs, w1, _columns(w2), get_num_threads())
    return h, logits.reshape(logits.shape[:1] + w2.shape[1:])


@_documented
def sparse_mlp_backward(starts, indices, signs, grad_logits, w1, w2, grad_w1, grad_w2, h=None):
    starts, indices, signs, grad_logits, w1, w2, grad_w1, grad_w2, h = v.sparse_backward_args(
        starts, indices, signs, grad_logits, w1, w2, grad_w1, grad_w2, h)
    _sparse.sparse_mlp_backward(starts, indices, signs, _columns(grad_logits), w1, _columns(w2), grad_w1,
                                _columns(grad_w2), get_num_threads(), h)


@_documented
def pong_step(frames, previous, rows, fresh, w1, w2, uniforms, episodes):
    frames, previous, rows, fresh, w1, w2, uniforms, store = v.pong_step_args(frames, previous, rows, fresh, w1, w2,
                                                                             uniforms, episodes)
    lengths, starts, indices, signs, logits, actions = store
    return _atari.pong_step(_screens(frames), previous, rows, fresh, w1, _columns(w2), uniforms, lengths, starts,
                            indices, signs, logits if logits.ndim == 3 else logits[:, :, None], actions,
                            get_num_threads())


# ---- any game's frames (the Atari trainer) ----

@_documented
def atari_sparse_levels(frames, background, previous, rows=None, fresh=None, bits=4):
    frames, background, previous, rows, fresh, shift = v.atari_levels_args(frames, background, previous, rows, fresh,
                                                                           bits)
    return _atari.atari_sparse_levels(frames, background, previous, rows, fresh, shift)


@_documented
def atari_step(frames, background, previous, rows, fresh, w1, w2, uniforms, episodes, bits=4):
    frames, background, previous, rows, fresh, shift, w1, w2, uniforms, store = v.atari_step_args(
        frames, background, previous, rows, fresh, w1, w2, uniforms, episodes, bits)
    lengths, starts, indices, signs, logits, actions = store
    return _atari.atari_step(frames, background, shift, previous, rows, fresh, w1, w2, uniforms, lengths, starts,
                             indices, signs, logits, actions, get_num_threads())
