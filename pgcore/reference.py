"""NumPy twins of every compiled kernel: the honest reference.

Written for clarity, in the classic "Pong from pixels" formulations where they
exist; same signatures, same argument checks and same results as
`pgcore.kernels` (1e-5 relative in float32, 1e-12 in float64).
"""
import numpy as np

from pgcore import _validate
from pgcore import _validate as v


def softmax(logits, tau=1.0):
    """Row-wise softmax with temperature: exp(l / tau) / sum exp(l / tau), max-shifted.

    logits (N, A) or (A,) float32/float64, A >= 1; tau > 0 -> same shape and dtype.
    Finite for any finite logits, tau down to 1e-3.
    """
    logits, tau = v.softmax_args(logits, tau)
    # Shift before dividing by tau: finite for any finite logits, even at tau = 1e-3
    # (a shifted logit may overflow to -inf, whose exp is the right 0).
    with np.errstate(over="ignore"):
        e = np.exp((logits - logits.max(axis=-1, keepdims=True)) / tau)
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(logits, tau=1.0):
    """Row-wise log of softmax(logits, tau), computed stably (max-shifted).

    logits (N, A) or (A,) float32/float64, A >= 1; tau > 0 -> same shape and dtype.
    """
    logits, tau = v.softmax_args(logits, tau)
    with np.errstate(over="ignore"):
        z = (logits - logits.max(axis=-1, keepdims=True)) / tau
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


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
    p = softmax(logits, tau)
    grad = -p
    grad[np.arange(len(actions)), actions] += 1
    grad *= (weights / tau)[:, None]
    if entropy:  # + entropy * dH/dlogits, H = -sum(p log p); p log p -> 0 where p underflowed to 0
        log_p = np.log(p, out=np.zeros_like(p), where=p > 0)
        grad -= entropy * p * (log_p - (p * log_p).sum(axis=1, keepdims=True)) / tau
    return grad


def sigmoid_policy_grad(logits, actions, weights):
    """Gradient with respect to logits of sum_i weights[i] * log Bernoulli(actions[i]; sigmoid(logits[i])):
    weights * (actions - sigmoid(logits)).

    logits (N,) float32/float64, actions (N,) integers or bools in {0, 1}, weights (N,)
    the logits' dtype -> (N,).
    """
    # Imported where used, as scipy.sparse below: pgcore.kernels imports this module (for its
    # docstrings), and loading scipy.special would add ~50 ms to every import of the kernels.
    from scipy.special import expit

    logits, actions, weights = v.policy_grad_args(logits, actions, weights, logits_ndim=1)
    return weights * (actions.astype(logits.dtype) - expit(logits))


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
    sign = 2.0 * actions - 1.0                      # +1 up, -1 down: log pi(a | z) = -softplus(-sign * z)
    z, z_old, a = logits.astype(np.float64), old_logits.astype(np.float64), advantages.astype(np.float64)
    log_ratio = np.logaddexp(0, -sign * z_old) - np.logaddexp(0, -sign * z)
    ratio = np.exp(log_ratio)
    held = ((a > 0) & (ratio > 1 + clip)) | ((a < 0) & (ratio < 1 - clip))
    # r * (a - sigmoid(z)) = sign * r * pi(other action | z), as one exp of a sum of logs
    grad = a * sign * np.exp(log_ratio - np.logaddexp(0, sign * z))
    return np.where(held, 0.0, grad).astype(logits.dtype)


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
    rows = np.arange(len(actions))
    log_p = log_softmax(logits.astype(np.float64))
    log_ratio = log_p[rows, actions] - log_softmax(old_logits.astype(np.float64))[rows, actions]
    ratio, a = np.exp(log_ratio), advantages.astype(np.float64)
    held = ((a > 0) & (ratio > 1 + clip)) | ((a < 0) & (ratio < 1 - clip))
    grad = -np.exp(log_p + log_ratio[:, None])              # -r p, each as one exp of a sum of logs
    grad[rows, actions] = 0
    grad[rows, actions] = -grad.sum(axis=1)                 # r (1 - p[a]) = r * (the others' p): no cancellation
    return np.where(held[:, None], 0.0, grad * a[:, None]).astype(logits.dtype)


def relu(x):
    """max(x, 0) elementwise (NaN passes through).

    x any shape, float32/float64 -> same shape and dtype.
    """
    x = v.float_array("x", x, None)
    return np.maximum(x, 0)


def relu_backward(grad_out, x):
    """grad_out * (x > 0); x may be the pre- or the post-activation.

    grad_out, x the same shape (any), one float dtype -> that shape and dtype.
    """
    grad_out, x = v.relu_backward_args(grad_out, x)
    return grad_out * (x > 0)


def linear_backward(x, grad_out, w):
    """Backward of y = x @ w: (grad_w, grad_x) = (x.T @ grad_out, grad_out @ w.T).

    x (N, I), grad_out (N, O), w (I, O), one float dtype -> grad_w (I, O), grad_x (N, I).
    """
    x, grad_out, w = v.linear_backward_args(x, grad_out, w)
    return x.T @ grad_out, grad_out @ w.T


def mlp_forward(x, w1, w2):
    """The 2-layer policy net, no biases: h = relu(x @ w1), logits = h @ w2. Returns (h, logits).

    x (N, D) or (D,), float in w1's dtype or int8; w1 (D, H); w2 (H, A) or (H,) in w1's dtype
    -> h (N, H), logits (N, A) or (N,); a 1-d x gives h (H,) and logits (A,) or a scalar.

    Compiled (pgcore.kernels): when every row of x has at most max(1, D // 16) nonzeros (Pong
    difference frames), x @ w1 is summed from the rows of w1 that the nonzeros select (a NaN or
    inf in a row no input selects does not reach the result; pgcore.reference's dense product
    spreads it); otherwise one BLAS GEMM.
    """
    x, w1, w2 = v.mlp_forward_args(x, w1, w2)
    h = np.maximum(x.astype(w1.dtype) @ w1, 0)
    return h, h @ w2


def mlp_backward(x, h, grad_logits, w2):
    """Gradients of the net of mlp_forward given grad_logits (the gradient at its logits):
    grad_w2 = h.T @ grad_logits, grad_h = (grad_logits @ w2.T) * (h > 0), grad_w1 = x.T @ grad_h.

    x (N, D) float in h's dtype or int8; h (N, H) as mlp_forward returned it; w2 (H, A) or (H,);
    grad_logits (N, A) or (N,) (w2's layout) -> (grad_w1 (D, H), grad_w2 shaped like w2).

    Compiled (pgcore.kernels): x.T @ grad_h takes the sparse route of mlp_forward under the same
    condition.
    """
    x, h, grad_logits, w2 = v.mlp_backward_args(x, h, grad_logits, w2)
    if w2.ndim == 1:
        grad_w2 = h.T @ grad_logits
        grad_h = np.outer(grad_logits, w2)
    else:
        grad_w2 = h.T @ grad_logits
        grad_h = grad_logits @ w2.T
    grad_h[h <= 0] = 0
    return x.astype(h.dtype).T @ grad_h, grad_w2


def discounted_returns(rewards, gamma, dones=None):
    """G[t] = rewards[t] + gamma * G[t + 1], scanned backwards along axis 0, with the
    future cut to 0 after every t where dones[t] (an episode ends at step t).

    rewards (T,) or (T, N) float32/float64 (N independent streams); gamma in [0, 1];
    dones None or booleans/numbers (nonzero = done) of rewards' shape -> rewards' shape and dtype.
    """
    rewards, gamma, dones = v.returns_args(rewards, gamma, dones)
    returns = np.empty_like(rewards)
    running = np.zeros_like(rewards[0]) if len(rewards) else None
    for t in reversed(range(len(rewards))):
        if dones is not None:
            running = np.where(dones[t], 0, running)  # cut: nothing after an episode end counts
        running = running * gamma + rewards[t]
        returns[t] = running
    return returns


def gae_advantages(rewards, values, gamma, lam, dones=None, last_values=None):
    """Generalized advantage estimation (Schulman et al. 2015), scanned backwards along axis 0:
    A[t] = delta[t] + gamma * lam * A[t + 1], delta[t] = rewards[t] + gamma * values[t + 1] - values[t],
    with the future (values[t + 1] and A[t + 1]) cut to 0 after every t where dones[t]. After the last
    row, values[T] = last_values (the value where a rollout segment was cut mid-episode: its
    bootstrap; None: 0, the future cut) and A[T] = 0. lam = 1 with values = 0 is discounted_returns
    exactly; lam = 0 is the one-step TD error.

    rewards, values (T,) or (T, N) float32/float64, one shape and dtype; gamma, lam in [0, 1];
    dones None or booleans/numbers of rewards' shape; last_values None or real numbers of shape
    rewards.shape[1:] (a scalar for (T,)), taken in rewards' dtype -> rewards' shape and dtype.
    """
    rewards, values, gamma, lam, dones, last_values = v.gae_args(rewards, values, gamma, lam, dones, last_values)
    dtype = rewards.dtype.type
    advantages = np.empty_like(rewards)
    for t in reversed(range(len(rewards))):
        if t == len(rewards) - 1:
            running = rewards[t] + dtype(gamma) * last_values - values[t]
            advantages[t] = running if dones is None else np.where(dones[t], rewards[t] - values[t], running)
            continue
        delta = rewards[t] + dtype(gamma) * values[t + 1] - values[t]
        running = delta + dtype(gamma * lam) * advantages[t + 1]
        advantages[t] = running if dones is None else np.where(dones[t], rewards[t] - values[t], running)
    return advantages


def standardize(x, eps=1e-8):
    """(x - mean) / (std + eps) over all of x (population std, accumulated in float64);
    an all-equal x gives zeros, never NaN.

    x any shape, float32/float64; eps >= 0 -> same shape and dtype.
    """
    x, eps = v.standardize_args(x, eps)
    if x.size == 0:
        return x.copy()
    # Shifting by the first element first makes an all-equal input exactly zero.
    shifted = x.astype(np.float64) - float(x.flat[0])
    centered = shifted - shifted.mean()
    spread = np.sqrt(np.mean(centered**2)) + eps
    return (np.zeros_like(centered) if spread == 0 else centered / spread).astype(x.dtype)


def squared_error(predictions, targets, scale=1.0):
    """The squared error of predictions against targets and its gradient:
    (0.5 * scale * sum (predictions - targets)**2, scale * (predictions - targets)), the loss a
    float accumulated in float64, the gradient with respect to predictions. The value regression
    of GAE (predictions: V(s_t), targets: the returns).

    predictions any shape, float32/float64; targets that shape and dtype; scale >= 0 ->
    (float, predictions' shape and dtype).
    """
    predictions, targets, scale = v.squared_error_args(predictions, targets, scale)
    error = predictions.astype(np.float64) - targets
    return 0.5 * scale * float(np.sum(error**2)), (scale * error).astype(predictions.dtype)


def gaussian_policy_grad(theta, states, actions, weights, sigma):
    """Gradient with respect to theta of sum_i weights[i] * log N(actions[i]; states[i] @ theta, sigma^2):
    states.T @ (weights * (actions - states @ theta)) / sigma**2.

    theta (D,) or (D, K), states (N, D), actions (N,) or (N, K) (theta's layout), weights (N,),
    one float dtype; sigma > 0 -> theta's shape.
    """
    theta, states, actions, weights, sigma = v.gaussian_args(theta, states, actions, weights, sigma)
    residual = actions - states @ theta
    weighted = residual * (weights if theta.ndim == 1 else weights[:, None])
    return states.T @ weighted / sigma**2


def rmsprop_step(param, grad, cache, lr, decay=0.99, eps=1e-5):
    """One RMSProp descent step, in place (returns None):
    cache = decay * cache + (1 - decay) * grad**2; param -= lr * grad / (sqrt(cache) + eps).

    param, cache writeable ndarrays of one shape (any strides), grad that shape, one float dtype;
    lr finite, decay in [0, 1], eps >= 0.
    """
    param, grad, cache, lr, decay, eps = v.rmsprop_args(param, grad, cache, lr, decay, eps)
    cache *= decay
    cache += (1 - decay) * grad**2
    param -= lr * grad / (np.sqrt(cache) + eps)


def rmsprop_rows_step(param, grad, cache, rows, ages, lr, decay=0.99, eps=1e-5):
    """rmsprop_step on the rows of a matrix that a minibatch's gradient touched, in place (returns
    None), the other rows' cache decayed lazily: for each r in rows,
    cache[r] *= decay ** ages[r] (the dense steps r missed), then the dense step on row r,
    cache[r] = decay * cache[r] + (1 - decay) * grad[r]**2; param[r] -= lr * grad[r] / (sqrt(cache[r]) + eps),
    then grad[r] = 0 (the step consumes the gradient); then ages[r] = 0 for r in rows and
    ages += 1 for every other row. A row no step touched for k dense steps has its param as the
    dense steps leave it (a zero gradient moves nothing) and its cache short of decay**k, which
    its next step, or rmsprop_rows_flush, multiplies in: the dense sequence, up to float rounding.
    The two decays are one factor, decay ** (ages[r] + 1), computed once per row in float64, then
    applied in param's dtype.

    param, grad, cache (R, H) float32/float64 ndarrays of one shape and dtype, C-contiguous and
    writeable (all three are written); rows 1-d integers, distinct, in [0, R): the rows where grad
    may be nonzero (grad's other rows must be zero: not checked); ages (R,) int64, writeable, >= 0,
    each row's count of dense steps since its cache was last brought up to date (zeros with a
    fresh cache); lr finite, decay in [0, 1], eps >= 0.
    """
    param, grad, cache, rows, ages, lr, decay, eps = v.rmsprop_rows_args(param, grad, cache, rows, ages, lr, decay,
                                                                         eps)
    g = grad[rows]
    scale = (decay ** (ages[rows] + 1.0)).astype(param.dtype)  # float64 powers, one per row
    c = scale[:, None] * cache[rows] + (1 - decay) * g**2
    cache[rows] = c
    param[rows] -= lr * g / (np.sqrt(c) + eps)
    grad[rows] = 0
    ages += 1
    ages[rows] = 0


def rmsprop_rows_flush(cache, ages, decay):
    """Brings every row of rmsprop_rows_step's cache up to date, in place (returns None):
    cache[r] *= decay ** ages[r] for every row r (the power in float64, the product in cache's
    dtype), then ages[:] = 0. The cache is then what dense rmsprop_step calls would have left
    (up to float rounding), e.g. to save it or to go on with rmsprop_step.

    cache (R, H) float32/float64, C-contiguous, writeable; ages (R,) int64, writeable, >= 0;
    decay in [0, 1], the decay of the steps. One NumPy function, pgcore.kernels' too: a pass
    over the cache at a checkpoint, not per update.
    """
    cache, ages, decay = v.rmsprop_rows_flush_args(cache, ages, decay)
    cache *= (decay ** ages.astype(np.float64)).astype(cache.dtype)[:, None]
    ages[:] = 0


def adam_step(param, grad, m, v, step, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    """One Adam descent step, in place (returns None), `step` being this update's number from 1:
    m = beta1 * m + (1 - beta1) * grad; v = beta2 * v + (1 - beta2) * grad**2;
    param -= lr * (m / (1 - beta1**step)) / (sqrt(v / (1 - beta2**step)) + eps).

    param, m, v writeable ndarrays of one shape (any strides), grad that shape, one float dtype;
    step an integer >= 1; lr finite; beta1, beta2 in [0, 1); eps >= 0.
    """
    param, grad, m, v, step, lr, beta1, beta2, eps = _validate.adam_args(param, grad, m, v, step, lr, beta1, beta2, eps)
    m *= beta1
    m += (1 - beta1) * grad
    v *= beta2
    v += (1 - beta2) * grad**2
    m_hat = m / (1 - beta1**step)
    v_hat = v / (1 - beta2**step)
    param -= lr * m_hat / (np.sqrt(v_hat) + eps)


# The background's two shades (black is 0 in both): red bytes of RGB frames, and ale-py's
# grayscale values of the same colours (0.2989 R + 0.587 G + 0.114 B, rounded). Of Pong's nine
# colours no other has either value, so both rules mark the same pixels.
RED_BACKGROUND, GRAY_BACKGROUND = (144, 109), (87, 107)


def pong_preprocess(frames):
    """Atari Pong frames to the 80 x 80 binary input of the "Pong from pixels" agent:
    rows 35..194, every 2nd row and column, red channel; 144 and 109 (the background) -> 0,
    any other nonzero value -> 1. Grayscale frames (ale-py's grayscale=True) give the same:
    their background is 87 and 107.

    frames (210, 160, 3) or (N, 210, 160, 3) uint8 RGB, or (210, 160) or (N, 210, 160) uint8
    grayscale -> (6400,) or (N, 6400) float32.
    """
    frames = v.frames_array(frames)
    gray = v.frame_ndim(frames) == 2
    # crop the playing field, downsample by 2 (of RGB, the red channel)
    image = (frames[..., 35:195:2, ::2] if gray else frames[..., 35:195:2, ::2, 0]).copy()
    for shade in GRAY_BACKGROUND if gray else RED_BACKGROUND:
        image[image == shade] = 0  # background
    image[image != 0] = 1  # paddles and ball
    return image.reshape(image.shape[:-2] + (6400,)).astype(np.float32)


def pong_difference(frames, previous, rows=None, fresh=None):
    """The trainer's per-step input: pong_preprocess(frames) - previous[rows] as int8 in
    {-1, 0, 1} (zeros where fresh: an episode's first frame has no motion yet); previous[rows]
    is then overwritten with the new preprocessed frames (as 0/1 bytes).

    frames (B, 210, 160, 3) (RGB) or (B, 210, 160) (grayscale) uint8; previous (E, 6400) uint8,
    C-contiguous and writeable;
    rows (B,) distinct integers in [0, E) (None: 0..B-1, then E must equal B);
    fresh (B,) bool or None (none fresh) -> (B, 6400) int8.
    """
    frames, previous, rows, fresh = v.difference_args(frames, previous, rows, fresh)
    current = pong_preprocess(frames).astype(np.int8)
    difference = current - previous[rows].astype(np.int8)
    difference[fresh.astype(bool)] = 0  # an episode's first frame: no motion yet
    previous[rows] = current
    return difference


# ---- sparse inputs end to end (the Pong trainer) ----

def _sparse_rows(x):
    """(starts, indices int16, signs int8) of the nonzeros of (N, 6400) int8 rows."""
    row, col = np.nonzero(x)
    starts = np.zeros(len(x) + 1, dtype=np.int64)
    np.cumsum(np.bincount(row, minlength=len(x)), out=starts[1:])
    return starts, col.astype(np.int16), x[row, col].astype(np.int8)


def pong_sparse_difference(frames, previous, rows=None, fresh=None, with_frame=False):
    """pong_difference's result as sparse rows: (starts (B + 1,) int64, indices (nnz,) int16,
    signs (nnz,) int8), row i's nonzero pixels being indices[starts[i]:starts[i + 1]] (rising)
    with values signs[...] in {-1, +1}. Arguments and the update of previous as pong_difference.
    with_frame: each row continues with the new preprocessed frame's object pixels p as
    indices 6400 + p, each +1 (the rows of a 12800-input net).
    """
    with_frame = v.flag("with_frame", with_frame)
    difference = pong_difference(frames, previous, rows, fresh)
    if with_frame:  # previous[rows] is now the frame
        taken = np.arange(len(difference)) if rows is None else np.asarray(rows, dtype=np.intp)
        difference = np.hstack((difference, previous[taken].astype(np.int8)))
    return _sparse_rows(difference)


def _sparse_matrix(starts, indices, signs, dtype, n_inputs):
    """The (N, n_inputs) matrix of the sparse rows, in SciPy's CSR form."""
    from scipy.sparse import csr_matrix
    return csr_matrix((signs.astype(dtype), indices, starts), shape=(len(starts) - 1, n_inputs))


def sparse_mlp_forward(starts, indices, signs, w1, w2):
    """mlp_forward of ternary sparse rows (pong_sparse_difference's form):
    h = relu(x @ w1), logits = h @ w2, x row i being signs at indices[starts[i]:starts[i + 1]].

    starts (N + 1,) integers rising from 0; indices (nnz,) integers in [0, D); signs (nnz,)
    int8, each -1 or +1; w1 (D, H), 1 <= D <= 32768 (Pong's: 6400, or 12800 with the frame);
    w2 (H,) or (H, K), 2 <= K <= 18, in w1's dtype -> h (N, H), logits (N,) or (N, K).
    """
    starts, indices, signs, w1, w2 = v.sparse_forward_args(starts, indices, signs, w1, w2)
    h = np.maximum(_sparse_matrix(starts, indices, signs, w1.dtype, len(w1)) @ w1, 0)
    return h, h @ w2


def sparse_mlp_backward(starts, indices, signs, grad_logits, w1, w2, grad_w1, grad_w2, h=None):
    """mlp_backward of sparse_mlp_forward, added in place: grad_w1 += x.T @ grad_h and
    grad_w2 += h.T @ grad_logits, grad_h = (grad_logits @ w2.T) * (h > 0).

    Rows as sparse_mlp_forward; grad_logits (N,) or (N, K), as the logits; grad_w1 (D, H) and
    grad_w2 shaped like w2, w1's dtype, C-contiguous and writeable (a batch gradient,
    accumulated with no allocation).

    h: None (the default) recomputes h from x and w1; or the h that sparse_mlp_forward returned
    for these same rows and this same w1 (N, H, w1's dtype), which saves the recompute (most of
    the forward's time) and gives the same result bit for bit. Only its shape and dtype are
    checked: an h of other rows, or of w1 before an update, gives a wrong gradient silently.
    """
    starts, indices, signs, grad_logits, w1, w2, grad_w1, grad_w2, h = v.sparse_backward_args(
        starts, indices, signs, grad_logits, w1, w2, grad_w1, grad_w2, h)
    x = _sparse_matrix(starts, indices, signs, w1.dtype, len(w1))
    if h is None:
        h = np.maximum(x @ w1, 0)
    grad_w2 += h.T @ grad_logits
    grad_h = grad_logits[:, None] * w2 if w2.ndim == 1 else grad_logits @ w2.T
    grad_w1 += x.T @ (grad_h * (h > 0))


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
    frames, previous, rows, fresh, w1, w2, uniforms, store = v.pong_step_args(
        frames, previous, rows, fresh, w1, w2, uniforms, episodes)
    starts, indices, signs = pong_sparse_difference(frames, previous, rows, fresh.astype(bool),
                                                    with_frame=v.sees_frame(w1))
    chosen = _play(starts, indices, signs, w1, w2, uniforms, rows, store)
    return np.array(v.PONG_ACTIONS, dtype=np.int32)[chosen]


def _play(starts, indices, signs, w1, w2, uniforms, rows, store):
    """The codes drawn for the sparse rows of envs `rows` (pong_step's and atari_step's), with the
    rows, logits and codes appended to the episode store's arrays."""
    from scipy.special import expit

    lengths, stored_starts, stored_indices, stored_signs, stored_logits, actions = store
    _, logits = sparse_mlp_forward(starts, indices, signs, w1, w2)
    if w2.ndim == 1:
        chosen = (uniforms < expit(logits)).astype(np.intp)  # 1 up, 0 down
    else:  # the first action whose cumulative probability passes the uniform
        exps = np.exp(logits - logits.max(axis=1, keepdims=True), dtype=np.float64)
        below = uniforms[:, None] * exps.sum(axis=1, keepdims=True) >= np.cumsum(exps, axis=1)
        chosen = np.minimum(below.sum(axis=1), w2.shape[1] - 1)
    counts = np.diff(starts)
    t = lengths[rows]
    base = stored_starts[rows, t]
    env_of = np.repeat(rows, counts)
    position = np.repeat(base - starts[:-1], counts) + np.arange(starts[-1])
    stored_indices[env_of, position] = indices
    stored_signs[env_of, position] = signs
    stored_starts[rows, t + 1] = base + counts
    stored_logits[rows, t] = logits
    actions[rows, t] = chosen
    lengths[rows] = t + 1
    return chosen


# ---- any game's frames (the Atari trainer) ----

def atari_sparse_levels(frames, background, previous, rows=None, fresh=None, bits=4):
    """Any game's frames as sparse rows for a net over 2 P inputs, P = H W pixels: each pixel's
    level (its value >> (8 - bits)) against the env's previous level, pixel p with sign +1 where
    it rose and -1 where it fell (none on an episode's first frame, `fresh`), then the pixels
    whose level differs from the game's static background, P + p with sign +1 ->
    (starts (B + 1,) int64, indices (nnz,) int16 rising within a row, signs (nnz,) int8), as
    pong_sparse_difference's.

    frames (B, H, W) uint8, ale-py's grayscale frames (resized), 2 H W <= 32768; background
    (H W,) uint8 levels below 2**bits; previous (E, H W) uint8 levels, updated in place to the
    frames' levels (rows[i]'s from frame i); rows (B,) distinct integers in [0, E) (None:
    0..B-1, then E must equal B); fresh (B,) bool or None (none fresh); bits in 1..8.
    """
    frames, background, previous, rows, fresh, shift = v.atari_levels_args(frames, background, previous, rows, fresh,
                                                                           bits)
    levels = frames >> shift                                          # (B, P)
    change = np.sign(levels.astype(np.int16) - previous[rows]).astype(np.int8)
    change[fresh.astype(bool)] = 0
    previous[rows] = levels
    return _sparse_rows(np.hstack((change, (levels != background).astype(np.int8))))


def atari_step(frames, background, previous, rows, fresh, w1, w2, uniforms, episodes, bits=4):
    """The Atari trainer's step for the B envs that came back, in one call, as pong_step for any
    game: atari_sparse_levels, appended as step t = episodes.lengths[e] of each env e = rows[i],
    sparse_mlp_forward, the code drawn by uniforms[i] from the softmax over K logits (the first
    whose cumulative probability exceeds it), stored with the logits -> (B,) int32 codes, which
    are the game's actions (indices into its minimal action set).

    frames, background, previous, rows, fresh, bits as atari_sparse_levels (rows required);
    w1 (2 H W, hidden), w2 (hidden, K), 2 <= K <= 18; uniforms (B,) float64 in [0, 1); episodes
    an episode store (pong.SparseEpisodes) with logits (E, steps, K) and room for one more step
    of each env.
    """
    frames, background, previous, rows, fresh, shift, w1, w2, uniforms, store = v.atari_step_args(
        frames, background, previous, rows, fresh, w1, w2, uniforms, episodes, bits)
    starts, indices, signs = atari_sparse_levels(frames.reshape(frames.shape + (1,)), background, previous, rows,
                                                 fresh.astype(bool), 8 - shift)
    return _play(starts, indices, signs, w1, w2, uniforms, rows, store).astype(np.int32)
