"""NumPy twins of every compiled kernel: the honest reference.

Written for clarity, in the classic "Pong from pixels" formulations where they
exist; same signatures, same argument checks and same results as
`pgcore.kernels` (1e-5 relative in float32, 1e-12 in float64).
"""
import numpy as np
from scipy.special import expit

from pgcore import _validate
from pgcore import _validate as v


def softmax(logits, tau=1.0):
    logits, tau = v.softmax_args(logits, tau)
    # Shift before dividing by tau: finite for any finite logits, even at tau = 1e-3
    # (a shifted logit may overflow to -inf, whose exp is the right 0).
    with np.errstate(over="ignore"):
        e = np.exp((logits - logits.max(axis=-1, keepdims=True)) / tau)
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(logits, tau=1.0):
    logits, tau = v.softmax_args(logits, tau)
    with np.errstate(over="ignore"):
        z = (logits - logits.max(axis=-1, keepdims=True)) / tau
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def softmax_policy_grad(logits, actions, weights, tau=1.0, entropy=0.0):
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
    logits, actions, weights = v.policy_grad_args(logits, actions, weights, logits_ndim=1)
    return weights * (actions.astype(logits.dtype) - expit(logits))


def relu(x):
    x = v.float_array("x", x, None)
    return np.maximum(x, 0)


def relu_backward(grad_out, x):
    grad_out, x = v.relu_backward_args(grad_out, x)
    return grad_out * (x > 0)


def linear_backward(x, grad_out, w):
    x, grad_out, w = v.linear_backward_args(x, grad_out, w)
    return x.T @ grad_out, grad_out @ w.T


def mlp_forward(x, w1, w2):
    x, w1, w2 = v.mlp_forward_args(x, w1, w2)
    h = np.maximum(x.astype(w1.dtype) @ w1, 0)
    return h, h @ w2


def mlp_backward(x, h, grad_logits, w2):
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
    rewards, gamma, dones = v.returns_args(rewards, gamma, dones)
    returns = np.empty_like(rewards)
    running = np.zeros_like(rewards[0]) if len(rewards) else None
    for t in reversed(range(len(rewards))):
        if dones is not None:
            running = np.where(dones[t], 0, running)  # cut: nothing after an episode end counts
        running = running * gamma + rewards[t]
        returns[t] = running
    return returns


def standardize(x, eps=1e-8):
    x, eps = v.standardize_args(x, eps)
    if x.size == 0:
        return x.copy()
    # Shifting by the first element first makes an all-equal input exactly zero.
    shifted = x.astype(np.float64) - float(x.flat[0])
    centered = shifted - shifted.mean()
    spread = np.sqrt(np.mean(centered**2)) + eps
    return (np.zeros_like(centered) if spread == 0 else centered / spread).astype(x.dtype)


def gaussian_policy_grad(theta, states, actions, weights, sigma):
    theta, states, actions, weights, sigma = v.gaussian_args(theta, states, actions, weights, sigma)
    residual = actions - states @ theta
    weighted = residual * (weights if theta.ndim == 1 else weights[:, None])
    return states.T @ weighted / sigma**2


def rmsprop_step(param, grad, cache, lr, decay=0.99, eps=1e-5):
    param, grad, cache, lr, decay, eps = v.rmsprop_args(param, grad, cache, lr, decay, eps)
    cache *= decay
    cache += (1 - decay) * grad**2
    param -= lr * grad / (np.sqrt(cache) + eps)


def adam_step(param, grad, m, v, step, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    param, grad, m, v, step, lr, beta1, beta2, eps = _validate.adam_args(param, grad, m, v, step, lr, beta1, beta2, eps)
    m *= beta1
    m += (1 - beta1) * grad
    v *= beta2
    v += (1 - beta2) * grad**2
    m_hat = m / (1 - beta1**step)
    v_hat = v / (1 - beta2**step)
    param -= lr * m_hat / (np.sqrt(v_hat) + eps)


def pong_preprocess(frames):
    frames = v.frames_array(frames)
    image = frames[..., 35:195:2, ::2, 0].copy()  # crop the playing field, downsample by 2, red channel
    image[image == 144] = 0  # background, one shade
    image[image == 109] = 0  # background, the other shade
    image[image != 0] = 1  # paddles and ball
    return image.reshape(frames.shape[:-3] + (6400,)).astype(np.float32)


def pong_difference(frames, previous, rows=None, fresh=None):
    frames, previous, rows, fresh = v.difference_args(frames, previous, rows, fresh)
    current = pong_preprocess(frames).astype(np.int8)
    difference = current - previous[rows].astype(np.int8)
    difference[fresh.astype(bool)] = 0  # an episode's first frame: no motion yet
    previous[rows] = current
    return difference
