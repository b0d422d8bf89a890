"""The compiled kernels: typed Cython, GIL released, OpenMP where it pays.

Each function checks its arguments exactly as its NumPy twin in
`pgcore.reference` does (pgcore._validate), then runs the compiled code on
C-contiguous arrays with `pgcore.get_num_threads()` threads.

Importing it from a source tree whose extension modules were never built raises
one ImportError that says how to build them.
"""
import os

import numpy as np

from pgcore import _validate
from pgcore import _validate as v
from pgcore._threads import get_num_threads

_COMPILED = tuple(f"pgcore.{name}" for name in ("_atari", "_nn", "_openmp", "_optim", "_policy", "_returns"))

# `import pgcore._x as _x`, not `from pgcore import _x`: only this form reports a missing module as
# ModuleNotFoundError with name "pgcore._x" (the other says "cannot import name" about pgcore).
try:
    import pgcore._atari as _atari
    import pgcore._nn as _nn
    import pgcore._optim as _optim
    import pgcore._policy as _policy
    import pgcore._returns as _returns
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
    "gaussian_policy_grad", "rmsprop_step", "adam_step", "pong_preprocess", "pong_difference",
    "pong_sparse_difference", "sparse_mlp_forward", "sparse_mlp_backward", "pong_step", "OPENMP_ENABLED",
]


def _rows(array):
    """A (N, A) view of a (N, A) or (A,) array."""
    return array if array.ndim == 2 else array.reshape(1, array.shape[0])


def _columns(array):
    """A (N, K) view of a (N, K) or (N,) array."""
    return array if array.ndim == 2 else array.reshape(array.shape[0], 1)


def softmax(logits, tau=1.0):
    """Row-wise softmax with temperature: exp(l / tau) / sum exp(l / tau), max-shifted.

    logits (N, A) or (A,) float32/float64, A >= 1; tau > 0 -> same shape and dtype.
    Finite for any finite logits, tau down to 1e-3.
    """
    logits, tau = v.softmax_args(logits, tau)
    return _policy.softmax(_rows(logits), tau, get_num_threads()).reshape(logits.shape)


def log_softmax(logits, tau=1.0):
    """Row-wise log of softmax(logits, tau), computed stably (max-shifted).

    logits (N, A) or (A,) float32/float64, A >= 1; tau > 0 -> same shape and dtype.
    """
    logits, tau = v.softmax_args(logits, tau)
    return _policy.softmax(_rows(logits), tau, get_num_threads(), log=True).reshape(logits.shape)


def softmax_policy_grad(logits, actions, weights, tau=1.0, entropy=0.0):
    """Gradient with respect to logits of the softmax policy's objective
    sum_i weights[i] * log p[i, actions[i]] + entropy * sum_i H(p[i]),
    p = softmax(logits, tau), H(p) = -sum_j p_j log p_j:
    weights[i] * (onehot(actions[i]) - p[i]) / tau - entropy * p[i] * (log p[i] + H(p[i])) / tau.

    logits (N, A) float32/float64, actions (N,) integers in [0, A), weights (N,) the
    logits' dtype, tau > 0, entropy any finite number (0: no bonus) -> (N, A).
    """
    logits, actions, weights = v.policy_grad_args(logits, actions, weights, logits_ndim=2)
    tau, entropy = v.positive("tau", tau), v.scalar("entropy", entropy)
    return _policy.softmax_policy_grad(logits, actions, weights, tau, entropy, get_num_threads())


def sigmoid_policy_grad(logits, actions, weights):
    """Gradient with respect to logits of sum_i weights[i] * log Bernoulli(actions[i]; sigmoid(logits[i])):
    weights * (actions - sigmoid(logits)).

    logits (N,) float32/float64, actions (N,) integers or bools in {0, 1}, weights (N,)
    the logits' dtype -> (N,).
    """
    logits, actions, weights = v.policy_grad_args(logits, actions, weights, logits_ndim=1)
    return _policy.sigmoid_policy_grad(logits, actions, weights, get_num_threads())


def clipped_sigmoid_policy_grad(logits, old_logits, actions, advantages, clip=0.2):
    """Gradient with respect to logits of PPO's clipped surrogate for a Bernoulli (sigmoid) policy,
    sum_i min(r_i * A_i, clip(r_i, 1 - clip, 1 + clip) * A_i), r_i = pi(a_i | logits_i) /
    pi(a_i | old_logits_i): A_i * r_i * (a_i - sigmoid(logits_i)) where the min takes r_i * A_i,
    0 where the clip holds it (A_i > 0 and r_i > 1 + clip, or A_i < 0 and r_i < 1 - clip).
    Computed in float64 from log-probabilities (softplus), so it stays finite for finite logits
    however far the policy moved; with logits == old_logits it is sigmoid_policy_grad's.

    logits, old_logits (N,) float32/float64; actions (N,) integers or bools in {0, 1};
    advantages (N,) the logits' dtype; clip > 0 -> (N,) the logits' dtype.
    """
    logits, old_logits, actions, advantages, clip = v.clipped_policy_grad_args(
        logits, old_logits, actions, advantages, clip)
    return _policy.clipped_sigmoid_policy_grad(logits, old_logits, actions, advantages, clip, get_num_threads())


def clipped_softmax_policy_grad(logits, old_logits, actions, advantages, clip=0.2):
    """Gradient with respect to logits of PPO's clipped surrogate for a softmax policy,
    sum_i min(r_i * A_i, clip(r_i, 1 - clip, 1 + clip) * A_i), r_i = p[i, a_i] / p_old[i, a_i]:
    A_i * r_i * (onehot(a_i) - p[i]) where the min takes r_i * A_i, 0 where the clip holds it
    (A_i > 0 and r_i > 1 + clip, or A_i < 0 and r_i < 1 - clip). Computed in float64 from
    log-softmax, each r_i p[i, k] as one exp and r_i (1 - p[i, a_i]) as their sum over k != a_i,
    so it is finite and accurate for finite logits however far the policy moved; with
    logits == old_logits it is softmax_policy_grad's (tau 1, no entropy).

    logits, old_logits (N, A) float32/float64, A >= 1; actions (N,) integers in [0, A);
    advantages (N,) the logits' dtype; clip > 0 -> (N, A) the logits' dtype.
    """
    logits, old_logits, actions, advantages, clip = v.clipped_policy_grad_args(
        logits, old_logits, actions, advantages, clip, logits_ndim=2)
    return _policy.clipped_softmax_policy_grad(logits, old_logits, actions, advantages, clip, get_num_threads())


def relu(x):
    """max(x, 0) elementwise (NaN passes through).

    x any shape, float32/float64 -> same shape and dtype.
    """
    x = v.float_array("x", x, None)
    return _nn.relu(x.reshape(-1), get_num_threads()).reshape(x.shape)


def relu_backward(grad_out, x):
    """grad_out * (x > 0); x may be the pre- or the post-activation.

    grad_out, x the same shape (any), one float dtype -> that shape and dtype.
    """
    grad_out, x = v.relu_backward_args(grad_out, x)
    return _nn.relu_backward(grad_out.reshape(-1), x.reshape(-1), get_num_threads()).reshape(x.shape)


def linear_backward(x, grad_out, w):
    """Backward of y = x @ w: (grad_w, grad_x) = (x.T @ grad_out, grad_out @ w.T).

    x (N, I), grad_out (N, O), w (I, O), one float dtype -> grad_w (I, O), grad_x (N, I).
    """
    x, grad_out, w = v.linear_backward_args(x, grad_out, w)
    return _nn.linear_backward(x, grad_out, w)


def mlp_forward(x, w1, w2):
    """The 2-layer policy net, no biases: h = relu(x @ w1), logits = h @ w2. Returns (h, logits).

    x (N, D) or (D,), float in w1's dtype or int8; w1 (D, H); w2 (H, A) or (H,) in w1's dtype
    -> h (N, H), logits (N, A) or (N,); a 1-d x gives h (H,) and logits (A,) or a scalar.

    Compiled: when every row of x has at most max(1, D // 16) nonzeros (Pong difference frames),
    x @ w1 is summed from the rows of w1 that the nonzeros select (a NaN or inf in a row no input
    selects does not reach the result); otherwise one BLAS GEMM.
    """
    x, w1, w2 = v.mlp_forward_args(x, w1, w2)
    rows = _rows(x)
    h, logits = _nn.mlp_forward(rows, rows, w1, _columns(w2), get_num_threads())
    if x.ndim == 1:
        h, logits = h[0], logits[0]
    return h, logits.reshape(logits.shape[:-1] + w2.shape[1:])


def mlp_backward(x, h, grad_logits, w2):
    """Gradients of the net of mlp_forward given grad_logits (the gradient at its logits):
    grad_w2 = h.T @ grad_logits, grad_h = (grad_logits @ w2.T) * (h > 0), grad_w1 = x.T @ grad_h.

    x (N, D) float in h's dtype or int8; h (N, H) as mlp_forward returned it; w2 (H, A) or (H,);
    grad_logits (N, A) or (N,) (w2's layout) -> (grad_w1 (D, H), grad_w2 shaped like w2).

    Compiled: x.T @ grad_h takes the sparse route of mlp_forward under the same condition.
    """
    x, h, grad_logits, w2 = v.mlp_backward_args(x, h, grad_logits, w2)
    grad_w1, grad_w2 = _nn.mlp_backward(x, x, h, _columns(grad_logits), _columns(w2), get_num_threads())
    return grad_w1, grad_w2.reshape(w2.shape)


def discounted_returns(rewards, gamma, dones=None):
    """G[t] = rewards[t] + gamma * G[t + 1], scanned backwards along axis 0, with the
    future cut to 0 after every t where dones[t] (an episode ends at step t).

    rewards (T,) or (T, N) float32/float64 (N independent streams); gamma in [0, 1];
    dones None or booleans/numbers (nonzero = done) of rewards' shape -> rewards' shape and dtype.
    """
    rewards, gamma, dones = v.returns_args(rewards, gamma, dones)
    streams = _columns(rewards)
    cut = np.empty((0, 0), np.uint8) if dones is None else dones.reshape(streams.shape)
    return _returns.discounted_returns(streams, gamma, cut, dones is not None).reshape(rewards.shape)


def gae_advantages(rewards, values, gamma, lam, dones=None):
    """Generalized advantage estimation (Schulman et al. 2015), scanned backwards along axis 0:
    A[t] = delta[t] + gamma * lam * A[t + 1], delta[t] = rewards[t] + gamma * values[t + 1] - values[t],
    with the future (values[t + 1] and A[t + 1]) cut to 0 after every t where dones[t] and after
    the last row. lam = 1 with values = 0 is discounted_returns exactly; lam = 0 is the one-step TD error.

    rewards, values (T,) or (T, N) float32/float64, one shape and dtype; gamma, lam in [0, 1];
    dones None or booleans/numbers of rewards' shape -> rewards' shape and dtype.
    """
    rewards, values, gamma, lam, dones = v.gae_args(rewards, values, gamma, lam, dones)
    streams = _columns(rewards)
    cut = np.empty((0, 0), np.uint8) if dones is None else dones.reshape(streams.shape)
    return _returns.gae_advantages(streams, _columns(values), gamma, lam, cut, dones is not None).reshape(
        rewards.shape)


def standardize(x, eps=1e-8):
    """(x - mean) / (std + eps) over all of x (population std, accumulated in float64);
    an all-equal x gives zeros, never NaN.

    x any shape, float32/float64; eps >= 0 -> same shape and dtype.
    """
    x, eps = v.standardize_args(x, eps)
    return _returns.standardize(x.reshape(-1), eps, get_num_threads()).reshape(x.shape)


def squared_error(predictions, targets, scale=1.0):
    """The squared error of predictions against targets and its gradient:
    (0.5 * scale * sum (predictions - targets)**2, scale * (predictions - targets)), the loss a
    float accumulated in float64, the gradient with respect to predictions. The value regression
    of GAE (predictions: V(s_t), targets: the returns).

    predictions any shape, float32/float64; targets that shape and dtype; scale >= 0 ->
    (float, predictions' shape and dtype).
    """
    predictions, targets, scale = v.squared_error_args(predictions, targets, scale)
    loss, grad = _returns.squared_error(predictions.reshape(-1), targets.reshape(-1), scale, get_num_threads())
    return loss, grad.reshape(predictions.shape)


def gaussian_policy_grad(theta, states, actions, weights, sigma):
    """Gradient with respect to theta of sum_i weights[i] * log N(actions[i]; states[i] @ theta, sigma^2):
    states.T @ (weights * (actions - states @ theta)) / sigma**2.

    theta (D,) or (D, K), states (N, D), actions (N,) or (N, K) (theta's layout), weights (N,),
    one float dtype; sigma > 0 -> theta's shape.
    """
    theta, states, actions, weights, sigma = v.gaussian_args(theta, states, actions, weights, sigma)
    grad = _policy.gaussian_policy_grad(_columns(theta), states, _columns(actions), weights, sigma)
    return grad.reshape(theta.shape)


def rmsprop_step(param, grad, cache, lr, decay=0.99, eps=1e-5):
    """One RMSProp descent step, in place (returns None):
    cache = decay * cache + (1 - decay) * grad**2; param -= lr * grad / (sqrt(cache) + eps).

    param, cache writeable ndarrays of one shape (any strides), grad that shape, one float dtype;
    lr finite, decay in [0, 1], eps >= 0.
    """
    param, grad, cache, lr, decay, eps = v.rmsprop_args(param, grad, cache, lr, decay, eps)
    # Updated in place: strided arrays are worked on as contiguous copies, then written back.
    flat_param, flat_cache = np.ascontiguousarray(param).reshape(-1), np.ascontiguousarray(cache).reshape(-1)
    _optim.rmsprop_step(flat_param, grad.reshape(-1), flat_cache, lr, decay, eps, get_num_threads())
    if not np.shares_memory(flat_param, param):
        param[...] = flat_param.reshape(param.shape)
    if not np.shares_memory(flat_cache, cache):
        cache[...] = flat_cache.reshape(cache.shape)


def adam_step(param, grad, m, v, step, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    """One Adam descent step, in place (returns None), `step` being this update's number from 1:
    m = beta1 * m + (1 - beta1) * grad; v = beta2 * v + (1 - beta2) * grad**2;
    param -= lr * (m / (1 - beta1**step)) / (sqrt(v / (1 - beta2**step)) + eps).

    param, m, v writeable ndarrays of one shape (any strides), grad that shape, one float dtype;
    step an integer >= 1; lr finite; beta1, beta2 in [0, 1); eps >= 0.
    """
    param, grad, m, v, step, lr, beta1, beta2, eps = _validate.adam_args(param, grad, m, v, step, lr, beta1, beta2, eps)
    flat = [np.ascontiguousarray(a).reshape(-1) for a in (param, m, v)]
    _optim.adam_step(flat[0], grad.reshape(-1), flat[1], flat[2], lr / (1 - beta1**step),
                     beta1, beta2, 1 / (1 - beta2**step), eps, get_num_threads())
    for original, updated in zip((param, m, v), flat):
        if not np.shares_memory(original, updated):
            original[...] = updated.reshape(original.shape)


def pong_preprocess(frames):
    """Atari Pong frames to the 80 x 80 binary input of the "Pong from pixels" agent:
    rows 35..194, every 2nd row and column, red channel; 144 and 109 (the background) -> 0,
    any other nonzero value -> 1.

    frames (210, 160, 3) or (N, 210, 160, 3) uint8 RGB -> (6400,) or (N, 6400) float32.
    """
    frames = v.frames_array(frames)
    batch = np.ascontiguousarray(frames.reshape((-1, 210, 160, 3)))
    return _atari.pong_preprocess(batch, get_num_threads()).reshape(frames.shape[:-3] + (6400,))


def pong_difference(frames, previous, rows=None, fresh=None):
    """The trainer's per-step input: pong_preprocess(frames) - previous[rows] as int8 in
    {-1, 0, 1} (zeros where fresh: an episode's first frame has no motion yet); previous[rows]
    is then overwritten with the new preprocessed frames (as 0/1 bytes).

    frames (B, 210, 160, 3) uint8; previous (E, 6400) uint8, C-contiguous and writeable;
    rows (B,) distinct integers in [0, E) (None: 0..B-1, then E must equal B);
    fresh (B,) bool or None (none fresh) -> (B, 6400) int8.
    """
    frames, previous, rows, fresh = v.difference_args(frames, previous, rows, fresh)
    return _atari.pong_difference(frames, previous, rows, fresh, get_num_threads())


# ---- sparse inputs end to end (the Pong trainer) ----

def pong_sparse_difference(frames, previous, rows=None, fresh=None, with_frame=False):
    """pong_difference's result as sparse rows: (starts (B + 1,) int64, indices (nnz,) int16,
    signs (nnz,) int8), row i's nonzero pixels being indices[starts[i]:starts[i + 1]] (rising)
    with values signs[...] in {-1, +1}. Arguments and the update of previous as pong_difference.
    with_frame: each row continues with the new preprocessed frame's object pixels p as
    indices 6400 + p, each +1 (the rows of a 12800-input net).
    """
    frames, previous, rows, fresh = v.difference_args(frames, previous, rows, fresh)
    return _atari.pong_sparse_difference(frames, previous, rows, fresh, v.flag("with_frame", with_frame))


def sparse_mlp_forward(starts, indices, signs, w1, w2):
    """mlp_forward of ternary sparse rows (pong_sparse_difference's form):
    h = relu(x @ w1), logits = h @ w2, x row i being signs at indices[starts[i]:starts[i + 1]].

    starts (N + 1,) integers rising from 0; indices (nnz,) integers in [0, D); signs (nnz,)
    int8, each -1 or +1; w1 (D, H), D 6400 or 12800 (with the frame); w2 (H,) or (H, 3) in
    w1's dtype -> h (N, H), logits (N,) or (N, 3).
    """
    starts, indices, signs, w1, w2 = v.sparse_forward_args(starts, indices, signs, w1, w2)
    h, logits = _atari.sparse_mlp_forward(starts, indices, signs, w1, _columns(w2), get_num_threads())
    return h, logits.reshape(logits.shape[:1] + w2.shape[1:])


def sparse_mlp_backward(starts, indices, signs, grad_logits, w1, w2, grad_w1, grad_w2):
    """mlp_backward of sparse_mlp_forward, added in place: grad_w1 += x.T @ grad_h and
    grad_w2 += h.T @ grad_logits, grad_h = (grad_logits @ w2.T) * (h > 0), h recomputed from x.

    Rows as sparse_mlp_forward; grad_logits (N,) or (N, 3), as the logits; grad_w1 (D, H) and
    grad_w2 shaped like w2, w1's dtype, C-contiguous and writeable (a batch gradient,
    accumulated with no allocation).
    """
    starts, indices, signs, grad_logits, w1, w2, grad_w1, grad_w2 = v.sparse_backward_args(
        starts, indices, signs, grad_logits, w1, w2, grad_w1, grad_w2)
    _atari.sparse_mlp_backward(starts, indices, signs, _columns(grad_logits), w1, _columns(w2), grad_w1,
                               _columns(grad_w2), get_num_threads())


def pong_step(frames, previous, rows, fresh, w1, w2, uniforms, episodes):
    """The Pong trainer's step for the B envs that came back, in one call: pong_sparse_difference,
    appended as step t = episodes.lengths[e] of each env e = rows[i] (starts[e, t + 1],
    indices[e], signs[e]), sparse_mlp_forward, an action code drawn by uniforms[i], stored with
    the logits in logits[e, t] and actions[e, t], lengths[e] += 1. With w2 (H,): 1 (up) where
    uniforms[i] < sigmoid(logit), else 0 (down). With w2 (H, 3), a softmax over codes 0 down,
    1 up, 2 stay: the first code whose cumulative probability exceeds uniforms[i].

    frames, previous, rows, fresh as pong_difference (rows required); w1 (6400, H), or
    (12800, H) to see each frame too (pong_sparse_difference's with_frame), w2 (H,) or (H, 3);
    uniforms (B,) float64 in [0, 1) from the caller's Generator; episodes a pong.SparseEpisodes
    with room for one more step of each env (its make_room), logits (E, steps) or (E, steps, 3)
    as w2 -> (B,) int32 ALE actions (3 down, 2 up, 0 stay).
    """
    frames, previous, rows, fresh, w1, w2, uniforms, e = v.pong_step_args(frames, previous, rows, fresh, w1, w2,
                                                                         uniforms, episodes)
    logits = e.logits if e.logits.ndim == 3 else e.logits[:, :, None]
    return _atari.pong_step(frames, previous, rows, fresh, w1, _columns(w2), uniforms, e.lengths, e.starts,
                            e.indices, e.signs, logits, e.actions, get_num_threads())
