"""Argument checks shared by the compiled kernels and their NumPy twins.

Both modules call these, so a bad argument raises the same error, with the same
message naming it, whichever backend is in use; the compiled code then only ever
sees C-contiguous arrays of one float dtype and in-range indices.
"""
import math
import numbers

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def float_array(name, value, ndims, dtype=None):
    """`value` as a C-contiguous float32/float64 array with a number of dims in `ndims` (None: any)."""
    if isinstance(value, np.ndarray):
        array = value
    else:
        try:
            array = np.asarray(value)
        except (TypeError, ValueError) as error:
            raise TypeError(f"{name} must be an array of floats, not {type(value).__name__}") from error
    if array.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, not {array.dtype}")
    if dtype is not None and array.dtype != dtype:
        raise TypeError(f"{name} has dtype {array.dtype} but the other float arguments have {dtype}; "
                        "pass every float array of one call in the same dtype")
    if ndims is not None and array.ndim not in ndims:
        raise ValueError(f"{name} must have {' or '.join(map(str, ndims))} dimensions, not shape {array.shape}")
    return contiguous(array)


def contiguous(array):
    """C-contiguous, keeping 0-d arrays 0-d (np.ascontiguousarray makes them 1-d)."""
    return array if array.flags.c_contiguous else array.copy(order="C")


def int_array(name, value, shape, upper=None):
    """An integer array of exactly `shape` with values in [0, upper)."""
    array = np.asarray(value)
    if array.dtype == np.bool_:
        array = array.astype(np.int64)
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name} must have an integer dtype, not {array.dtype}")
    if array.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, not {array.shape}")
    if array.size:
        low, high = array.min(), array.max()
        if low < 0:
            raise ValueError(f"{name} must not be negative (found {low})")
        if upper is not None and high >= upper:
            raise ValueError(f"{name} must be below {upper} (found {high})")
    return np.ascontiguousarray(array, dtype=np.intp)


def same_shape(name, array, shape):
    if array.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, not {array.shape}")
    return array


def scalar(name, value, low=-math.inf, high=math.inf, low_open=False):
    """A finite real number in [low, high] (or (low, high] with low_open)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, not {type(value).__name__}")
    value = float(value)
    too_low = value <= low if low_open else value < low
    if not math.isfinite(value) or too_low or value > high:
        bounds = f"{'(' if low_open else '['}{low:g}, {high:g}]"
        raise ValueError(f"{name} must be a finite number in {bounds}, not {value!r}")
    return value


def positive(name, value):
    return scalar(name, value, low=0.0, low_open=True)


def probability(name, value):
    return scalar(name, value, low=0.0, high=1.0)


def policy_grad_args(logits, actions, weights, logits_ndim):
    """Checks shared by softmax_policy_grad and sigmoid_policy_grad."""
    logits = float_array("logits", logits, (logits_ndim,))
    if logits_ndim == 2 and logits.shape[1] == 0:
        raise ValueError(f"logits must have at least one column (action), not shape {logits.shape}")
    weights = same_shape("weights", float_array("weights", weights, (1,), logits.dtype), logits.shape[:1])
    upper = logits.shape[1] if logits_ndim == 2 else 2
    actions = int_array("actions", actions, logits.shape[:1], upper=upper)
    return logits, actions, weights


def frames_array(frames):
    """uint8 RGB Atari frames, (210, 160, 3) or (N, 210, 160, 3)."""
    array = np.asarray(frames)
    if array.dtype != np.uint8:
        raise TypeError(f"frames must have dtype uint8, not {array.dtype}")
    if array.ndim not in (3, 4) or array.shape[-3:] != (210, 160, 3):
        raise ValueError(f"frames must have shape (210, 160, 3) or (N, 210, 160, 3), not {array.shape}")
    return array


def difference_args(frames, previous, rows, fresh):
    frames = frames_array(frames)
    if frames.ndim != 4:
        raise ValueError(f"frames must have shape (N, 210, 160, 3), not {frames.shape}")
    if not isinstance(previous, np.ndarray):
        raise TypeError(f"previous is updated in place and must be a numpy array, not {type(previous).__name__}")
    if previous.dtype != np.uint8:
        raise TypeError(f"previous must have dtype uint8, not {previous.dtype}")
    if previous.ndim != 2 or previous.shape[1] != 6400:
        raise ValueError(f"previous must have shape (E, 6400), not {previous.shape}")
    if not (previous.flags.c_contiguous and previous.flags.writeable):
        raise ValueError("previous is updated in place and must be C-contiguous and writeable")
    n = len(frames)
    if rows is None:
        if len(previous) != n:
            raise ValueError(f"previous must have one row per frame ({n}) when rows is not given, not {len(previous)}")
        rows = np.arange(n, dtype=np.intp)
    else:
        rows = int_array("rows", rows, (n,), upper=len(previous))
        if len(np.unique(rows)) != n:
            raise ValueError("rows must not repeat (each names the env of one frame)")
    if fresh is None:
        fresh = np.zeros(n, dtype=np.uint8)
    else:
        fresh = np.asarray(fresh)
        if fresh.dtype != np.bool_:
            raise TypeError(f"fresh must be a boolean array, not {fresh.dtype}")
        if fresh.shape != (n,):
            raise ValueError(f"fresh must have shape ({n},), not {fresh.shape}")
        fresh = np.ascontiguousarray(fresh, dtype=np.uint8)
    return np.ascontiguousarray(frames), previous, rows, fresh


def in_place_array(name, value, dtype=None, shape=None):
    """An array updated in place: it must be a writeable float ndarray (any strides)."""
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} is updated in place and must be a numpy array, not {type(value).__name__}")
    if value.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, not {value.dtype}")
    if dtype is not None and value.dtype != dtype:
        raise TypeError(f"{name} has dtype {value.dtype} but param has {dtype}")
    if shape is not None and value.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, not {value.shape}")
    if not value.flags.writeable:
        raise ValueError(f"{name} is updated in place and must be writeable")
    return value


def thread_count(n):
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral):
        raise TypeError(f"n_threads must be an integer, not {type(n).__name__}")
    if n < 1:
        raise ValueError(f"n_threads must be at least 1, not {n}")
    return int(n)


# ---- the arguments of each kernel, checked once for both backends ----

def softmax_args(logits, tau):
    logits = float_array("logits", logits, (1, 2))
    if logits.shape[-1] == 0:
        raise ValueError(f"logits must have at least one column (action), not shape {logits.shape}")
    return logits, positive("tau", tau)


def relu_backward_args(grad_out, x):
    grad_out = float_array("grad_out", grad_out, None)
    x = same_shape("x", float_array("x", x, None, grad_out.dtype), grad_out.shape)
    return grad_out, x


def linear_backward_args(x, grad_out, w):
    x = float_array("x", x, (2,))
    w = float_array("w", w, (2,), x.dtype)
    if w.shape[0] != x.shape[1]:
        raise ValueError(f"w must have {x.shape[1]} rows (the columns of x), not shape {w.shape}")
    grad_out = same_shape("grad_out", float_array("grad_out", grad_out, (2,), x.dtype), (x.shape[0], w.shape[1]))
    return x, grad_out, w


def net_input(x, ndims, dtype):
    """The net's input: floats of the weights' dtype, or int8 (stored Pong difference frames)."""
    array = np.asarray(x)
    if array.dtype == np.int8:
        if array.ndim not in ndims:
            raise ValueError(f"x must have {' or '.join(map(str, ndims))} dimensions, not shape {array.shape}")
        return contiguous(array)
    return float_array("x", array, ndims, dtype)


def mlp_forward_args(x, w1, w2):
    w1 = float_array("w1", w1, (2,))
    w2 = float_array("w2", w2, (1, 2), w1.dtype)
    x = net_input(x, (1, 2), w1.dtype)
    if w1.shape[0] != x.shape[-1]:
        raise ValueError(f"w1 must have {x.shape[-1]} rows (the features of x), not shape {w1.shape}")
    if w2.shape[0] != w1.shape[1]:
        raise ValueError(f"w2 must have {w1.shape[1]} rows (the hidden units of w1), not shape {w2.shape}")
    return x, w1, w2


def mlp_backward_args(x, h, grad_logits, w2):
    h = float_array("h", h, (2,))
    w2 = float_array("w2", w2, (1, 2), h.dtype)
    x = net_input(x, (2,), h.dtype)
    if h.shape[0] != x.shape[0]:
        raise ValueError(f"h must have {x.shape[0]} rows (one per row of x), not shape {h.shape}")
    if w2.shape[0] != h.shape[1]:
        raise ValueError(f"w2 must have {h.shape[1]} rows (the hidden units of h), not shape {w2.shape}")
    grad_logits = same_shape("grad_logits", float_array("grad_logits", grad_logits, (1, 2), h.dtype),
                             (x.shape[0],) + w2.shape[1:])
    return x, h, grad_logits, w2


def returns_args(rewards, gamma, dones):
    rewards = float_array("rewards", rewards, (1, 2))
    gamma = probability("gamma", gamma)
    if dones is not None:
        dones = np.asarray(dones)
        if not (dones.dtype == np.bool_ or np.issubdtype(dones.dtype, np.number)):
            raise TypeError(f"dones must be a boolean or numeric array, not {dones.dtype}")
        if dones.shape != rewards.shape:
            raise ValueError(f"dones must have the shape of rewards {rewards.shape}, not {dones.shape}")
        dones = np.ascontiguousarray(dones != 0, dtype=np.uint8)
    return rewards, gamma, dones


def standardize_args(x, eps):
    return float_array("x", x, None), scalar("eps", eps, low=0.0)


def gaussian_args(theta, states, actions, weights, sigma):
    theta = float_array("theta", theta, (1, 2))
    states = float_array("states", states, (2,), theta.dtype)
    if states.shape[1] != theta.shape[0]:
        raise ValueError(f"states must have {theta.shape[0]} columns (the rows of theta), not shape {states.shape}")
    n = states.shape[0]
    actions = same_shape("actions", float_array("actions", actions, (1, 2), theta.dtype), (n,) + theta.shape[1:])
    weights = same_shape("weights", float_array("weights", weights, (1,), theta.dtype), (n,))
    return theta, states, actions, weights, positive("sigma", sigma)


def rmsprop_args(param, grad, cache, lr, decay, eps):
    param = in_place_array("param", param)
    cache = in_place_array("cache", cache, param.dtype, param.shape)
    grad = same_shape("grad", float_array("grad", grad, None, param.dtype), param.shape)
    return param, grad, cache, scalar("lr", lr), probability("decay", decay), scalar("eps", eps, low=0.0)


def adam_args(param, grad, m, v, step, lr, beta1, beta2, eps):
    param = in_place_array("param", param)
    m = in_place_array("m", m, param.dtype, param.shape)
    v = in_place_array("v", v, param.dtype, param.shape)
    grad = same_shape("grad", float_array("grad", grad, None, param.dtype), param.shape)
    if isinstance(step, (bool, np.bool_)) or not isinstance(step, numbers.Integral):
        raise TypeError(f"step must be an integer (the number of this update, from 1), not {type(step).__name__}")
    if step < 1:
        raise ValueError(f"step must be >= 1 (the number of this update), not {step}")
    beta1, beta2 = (_decay_rate(name, value) for name, value in (("beta1", beta1), ("beta2", beta2)))
    return param, grad, m, v, int(step), scalar("lr", lr), beta1, beta2, scalar("eps", eps, low=0.0)


def _decay_rate(name, value):
    """In [0, 1): Adam's bias correction divides by 1 - value**step."""
    value = probability(name, value)
    if value == 1.0:
        raise ValueError(f"{name} must be below 1 (the bias correction divides by 1 - {name}**step)")
    return value
