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


def flag(name, value):
    """A True/False argument (a bool or NumPy bool), as a bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, not {value!r}")
    return bool(value)


def positive(name, value):
    return scalar(name, value, low=0.0, low_open=True)


def probability(name, value):
    return scalar(name, value, low=0.0, high=1.0)


def policy_grad_args(logits, actions, weights, logits_ndim, weights_name="weights"):
    """Checks shared by the policy-gradient kernels (`weights` is called `weights_name` in errors)."""
    logits = float_array("logits", logits, (logits_ndim,))
    if logits_ndim == 2 and logits.shape[1] == 0:
        raise ValueError(f"logits must have at least one column (action), not shape {logits.shape}")
    weights = same_shape(weights_name, float_array(weights_name, weights, (1,), logits.dtype), logits.shape[:1])
    upper = logits.shape[1] if logits_ndim == 2 else 2
    actions = int_array("actions", actions, logits.shape[:1], upper=upper)
    return logits, actions, weights


def clipped_policy_grad_args(logits, old_logits, actions, advantages, clip, logits_ndim=1):
    """Checks of clipped_sigmoid_policy_grad (logits_ndim 1) and clipped_softmax_policy_grad
    (logits_ndim 2): policy_grad_args' and old_logits like logits."""
    logits, actions, advantages = policy_grad_args(logits, actions, advantages, logits_ndim=logits_ndim,
                                                   weights_name="advantages")
    old_logits = same_shape("old_logits", float_array("old_logits", old_logits, (logits_ndim,), logits.dtype),
                            logits.shape)
    return logits, old_logits, actions, advantages, positive("clip", clip)


RGB_FRAME, GRAY_FRAME = (210, 160, 3), (210, 160)  # ale-py's screens: RGB, and grayscale=True's


def frames_array(frames):
    """uint8 Atari frames: RGB, (210, 160, 3) or (N, 210, 160, 3), or grayscale (ale-py's
    grayscale=True), (210, 160) or (N, 210, 160). Which it is: frame_ndim."""
    array = np.asarray(frames)
    if array.dtype != np.uint8:
        raise TypeError(f"frames must have dtype uint8, not {array.dtype}")
    if not ((array.ndim in (3, 4) and array.shape[-3:] == RGB_FRAME)
            or (array.ndim in (2, 3) and array.shape[-2:] == GRAY_FRAME)):
        raise ValueError("frames must have shape (210, 160, 3) or (N, 210, 160, 3) (RGB), or (210, 160) or "
                         f"(N, 210, 160) (grayscale), not {array.shape}")
    return array


def frame_ndim(frames):
    """The dimensions of one frame of frames_array's `frames`: 3 (RGB) or 2 (grayscale)."""
    return 3 if frames.shape[-1] == 3 else 2


def difference_args(frames, previous, rows, fresh):
    frames = frames_array(frames)
    if frames.ndim == frame_ndim(frames):
        raise ValueError(f"frames must be a batch, (N, 210, 160, 3) (RGB) or (N, 210, 160) (grayscale), "
                         f"not one frame {frames.shape}")
    previous, rows, fresh = previous_args(previous, 6400, len(frames), rows, fresh)
    return np.ascontiguousarray(frames), previous, rows, fresh


def previous_args(previous, width, n, rows, fresh):
    """previous (E, width) uint8, updated in place; rows (n,) distinct envs of it (default: all,
    when E is n); fresh (n,) bool as uint8 (default: none)."""
    if not isinstance(previous, np.ndarray):
        raise TypeError(f"previous is updated in place and must be a numpy array, not {type(previous).__name__}")
    if previous.dtype != np.uint8:
        raise TypeError(f"previous must have dtype uint8, not {previous.dtype}")
    if previous.ndim != 2 or previous.shape[1] != width:
        raise ValueError(f"previous must have shape (E, {width}), not {previous.shape}")
    if not (previous.flags.c_contiguous and previous.flags.writeable):
        raise ValueError("previous is updated in place and must be C-contiguous and writeable")
    if rows is None:
        if len(previous) != n:
            raise ValueError(f"previous must have one row per frame ({n}) when rows is not given, not {len(previous)}")
        rows = np.arange(n, dtype=np.intp)
    else:
        rows = distinct_rows(rows, n, len(previous))
    if fresh is None:
        fresh = np.zeros(n, dtype=np.uint8)
    else:
        fresh = np.asarray(fresh)
        if fresh.dtype != np.bool_:
            raise TypeError(f"fresh must be a boolean array, not {fresh.dtype}")
        if fresh.shape != (n,):
            raise ValueError(f"fresh must have shape ({n},), not {fresh.shape}")
        fresh = np.ascontiguousarray(fresh).view(np.uint8)
    return previous, rows, fresh


def distinct_rows(rows, n, upper):
    """`rows` as (n,) intp: distinct integers in [0, upper). Called every trainer step: few NumPy calls.

    Always a new array, never the caller's: the compiled kernels write rows of other arrays at
    these indices, so no write of theirs may change them (the caller's could overlap those arrays)."""
    rows = np.asarray(rows)
    if rows.dtype.kind not in "iu":
        raise TypeError(f"rows must have an integer dtype, not {rows.dtype}")
    if rows.shape != (n,):
        raise ValueError(f"rows must have shape ({n},), not {rows.shape}")
    rows = np.array(rows, dtype=np.intp)
    if n:
        try:
            counts = np.bincount(rows, minlength=upper)
        except ValueError:
            raise ValueError(f"rows must not be negative (found {rows.min()})") from None
        if len(counts) > upper:
            raise ValueError(f"rows must be below {upper} (found {rows.max()})")
        if max(counts.tolist()) > 1:  # (builtins: ndarray.max costs microseconds on a few elements)
            raise ValueError("rows must not repeat (each names the env of one frame)")
    return rows


def in_place_array(name, value, dtype=None, shape=None, contiguous=False):
    """An array updated in place: it must be a writeable float ndarray (any strides, or C-contiguous)."""
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} is updated in place and must be a numpy array, not {type(value).__name__}")
    if value.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, not {value.dtype}")
    if dtype is not None and value.dtype != dtype:
        raise TypeError(f"{name} has dtype {value.dtype} but param has {dtype}")
    if shape is not None and value.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, not {value.shape}")
    if not value.flags.writeable or (contiguous and not value.flags.c_contiguous):
        raise ValueError(f"{name} is updated in place and must be {'C-contiguous and ' if contiguous else ''}writeable")
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


def gae_args(rewards, values, gamma, lam, dones, last_values):
    """... and last_values as a C-contiguous array of rewards.shape[1:] (zeros when None)."""
    rewards, gamma, dones = returns_args(rewards, gamma, dones)
    values = same_shape("values", float_array("values", values, (1, 2), rewards.dtype), rewards.shape)
    if last_values is None:
        last_values = np.zeros(rewards.shape[1:], dtype=rewards.dtype)
    else:  # any real numbers, in rewards' dtype: a value net's float64 scalar bootstraps float32 rewards
        array = np.asarray(last_values)
        if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer) | np.issubdtype(array.dtype,
                                                                                                   np.floating):
            raise TypeError(f"last_values must be real numbers, not {array.dtype}")
        last_values = same_shape("last_values", array.astype(rewards.dtype), rewards.shape[1:])
    return rewards, values, gamma, probability("lam", lam), dones, contiguous(last_values)


def standardize_args(x, eps):
    return float_array("x", x, None), scalar("eps", eps, low=0.0)


def squared_error_args(predictions, targets, scale):
    predictions = float_array("predictions", predictions, None)
    targets = same_shape("targets", float_array("targets", targets, None, predictions.dtype), predictions.shape)
    return predictions, targets, scalar("scale", scale, low=0.0)


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


def distinct_indices(name, value, upper):
    """`value` as a new 1-d intp array of distinct integers in [0, upper) (any integer dtype, any length).

    Always a new array, checked after it was copied: the compiled kernels write rows of other arrays
    at these numbers, so no write of theirs may change them (the caller's could overlap those arrays)."""
    array = np.asarray(value)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name} must have an integer dtype, not {array.dtype}")
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-d, not shape {array.shape}")
    array = np.array(array)  # the copy, in the caller's dtype: range checked before any cast to intp
    if array.size:
        low, high = array.min(), array.max()
        if low < 0:
            raise ValueError(f"{name} must not be negative (found {low})")
        if high >= upper:
            raise ValueError(f"{name} must be below {upper} (found {high})")
        array = array.astype(np.intp, copy=False)
        counts = np.bincount(array, minlength=upper)
        if counts.max() > 1:
            repeated = int(np.flatnonzero(counts > 1)[0])
            raise ValueError(f"{name} must not repeat (found {repeated} {int(counts[repeated])} times)")
    return array.astype(np.intp, copy=False)


def ages_array(ages, n):
    """A row-age counter updated in place: a writeable C-contiguous int64 ndarray (n,), none negative."""
    if not isinstance(ages, np.ndarray):
        raise TypeError(f"ages is updated in place and must be a numpy array, not {type(ages).__name__}")
    if ages.dtype != np.int64:
        raise TypeError(f"ages must have dtype int64, not {ages.dtype}")
    if ages.shape != (n,):
        raise ValueError(f"ages must have shape ({n},) (one count per row of param), not {ages.shape}")
    if not (ages.flags.c_contiguous and ages.flags.writeable):
        raise ValueError("ages is updated in place and must be C-contiguous and writeable")
    if n and ages.min() < 0:
        raise ValueError(f"ages must not be negative (found {ages.min()})")
    return ages


def rows_matrix(name, value, dtype=None, shape=None):
    """A 2-d (R, H) float array updated in place, C-contiguous and writeable."""
    array = in_place_array(name, value, dtype, shape, contiguous=True)
    if shape is None and array.ndim != 2:
        raise ValueError(f"{name} must have 2 dimensions (R, H), not shape {array.shape}")
    return array


def rmsprop_rows_args(param, grad, cache, rows, ages, lr, decay, eps):
    """rmsprop_rows_step's: param, grad, cache (R, H) of one float dtype, C-contiguous and writeable;
    rows a private intp copy, distinct, in [0, R); ages (R,) int64 >= 0, writeable. Everything is
    read and checked here, before either backend writes anything."""
    param = rows_matrix("param", param)
    grad = rows_matrix("grad", grad, param.dtype, param.shape)
    cache = rows_matrix("cache", cache, param.dtype, param.shape)
    rows = distinct_indices("rows", rows, param.shape[0])
    ages = ages_array(ages, param.shape[0])
    return param, grad, cache, rows, ages, scalar("lr", lr), probability("decay", decay), scalar("eps", eps, low=0.0)


def rmsprop_rows_flush_args(cache, ages, decay):
    cache = rows_matrix("cache", cache)
    return cache, ages_array(ages, cache.shape[0]), probability("decay", decay)


def _decay_rate(name, value):
    """In [0, 1): Adam's bias correction divides by 1 - value**step."""
    value = probability(name, value)
    if value == 1.0:
        raise ValueError(f"{name} must be below 1 (the bias correction divides by 1 - {name}**step)")
    return value


# ---- sparse Pong inputs ----

INPUT_SIZE = 6400
INPUT_SIZES = (INPUT_SIZE, 2 * INPUT_SIZE)  # the difference frame; the difference, then the frame


def sees_frame(w1):
    """Whether a Pong net's first layer takes the frame after its difference (--frame-input)."""
    return len(w1) == INPUT_SIZES[1]


def sparse_rows_args(starts, indices, signs, n_inputs=INPUT_SIZE):
    """CSR rows of ternary inputs: starts (N + 1,) rising from 0, indices (nnz,) pixel numbers
    in [0, n_inputs), signs (nnz,) each -1 or +1."""
    starts = np.asarray(starts)
    if not np.issubdtype(starts.dtype, np.integer) or starts.ndim != 1 or len(starts) == 0:
        raise ValueError(f"starts must be a 1-d integer array of N + 1 offsets, not {starts.dtype} {starts.shape}")
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    nnz = int(starts[-1])
    if starts[0] != 0 or (starts[1:] < starts[:-1]).any():  # (not np.diff: twice the time, and it can overflow)
        raise ValueError("starts must begin with 0 and not decrease")
    indices, signs = np.asarray(indices), np.asarray(signs)
    if not np.issubdtype(indices.dtype, np.integer) or indices.ndim != 1:
        raise TypeError(f"indices must be a 1-d integer array, not {indices.dtype} {indices.shape}")
    if signs.dtype != np.int8 or signs.ndim != 1:
        raise TypeError(f"signs must be a 1-d int8 array, not {signs.dtype} {signs.shape}")
    if len(indices) < nnz or len(signs) < nnz:
        raise ValueError(f"starts reaches {nnz}, past the {min(len(indices), len(signs))} indices and signs")
    indices, signs = indices[:nnz], signs[:nnz]
    if nnz and (indices.min() < 0 or indices.max() >= n_inputs):
        raise ValueError(f"indices must be pixel numbers in [0, {n_inputs})")
    if nnz:  # |signs| all 1 (abs(-128) is -128): one array and two reductions, a third of (== 1) | (== -1)'s time
        magnitudes = np.abs(signs)
        if magnitudes.min() != 1 or magnitudes.max() != 1:
            raise ValueError("signs must each be -1 or +1")
    return starts, np.ascontiguousarray(indices, dtype=np.int16), np.ascontiguousarray(signs)


# A Pong net's output layer: w2 (H,) gives one logit, up with probability sigmoid(logit) (else
# down); w2 (H, 3) gives three, a softmax over down, up and stay (pgcore.pong.ACTIONS).
SOFTMAX_ACTIONS = 3
PONG_ACTIONS = (3, 2, 0)  # the ALE action of each action code: 0 down (LEFT), 1 up (RIGHT), 2 stay (NOOP)


def pong_net_args(w1, w2, dtype=None):
    w1 = float_array("w1", w1, (2,), dtype)
    if w1.shape[0] not in INPUT_SIZES:
        raise ValueError(f"w1 must have shape ({INPUT_SIZE}, H) (the difference frame) or ({2 * INPUT_SIZE}, H) "
                         f"(the difference, then the frame), not {w1.shape}")
    w2 = float_array("w2", w2, (1, 2), w1.dtype)
    if w2.shape not in ((w1.shape[1],), (w1.shape[1], SOFTMAX_ACTIONS)):
        raise ValueError(f"w2 must have shape ({w1.shape[1]},) (up or down) or ({w1.shape[1]}, {SOFTMAX_ACTIONS}) "
                         f"(down, up or stay), not {w2.shape}")
    return w1, w2


# A net over sparse inputs in general: int16 indices reach 32768 inputs; a softmax has at most
# ALE's full action set of logits.
MAX_SPARSE_INPUTS = 32768
MAX_ACTIONS = 18


def sparse_net_args(w1, w2):
    """w1 (D, H), 1 <= D <= MAX_SPARSE_INPUTS; w2 (H,), one logit through a sigmoid, or (H, K),
    a softmax over 2 <= K <= MAX_ACTIONS."""
    w1 = float_array("w1", w1, (2,))
    if not 1 <= w1.shape[0] <= MAX_SPARSE_INPUTS:
        raise ValueError(f"w1 must have 1 to {MAX_SPARSE_INPUTS} rows (the inputs int16 indices reach), "
                         f"not shape {w1.shape}")
    w2 = float_array("w2", w2, (1, 2), w1.dtype)
    if w2.shape[0] != w1.shape[1] or (w2.ndim == 2 and not 2 <= w2.shape[1] <= MAX_ACTIONS):
        raise ValueError(f"w2 must have shape ({w1.shape[1]},) (one logit) or ({w1.shape[1]}, K), 2 <= K <= "
                         f"{MAX_ACTIONS} (a softmax over K actions), not {w2.shape}")
    return w1, w2


def sparse_forward_args(starts, indices, signs, w1, w2):
    w1, w2 = sparse_net_args(w1, w2)
    return (*sparse_rows_args(starts, indices, signs, w1.shape[0]), w1, w2)


def sparse_backward_args(starts, indices, signs, grad_logits, w1, w2, grad_w1, grad_w2, h=None):
    """The checked arguments, h last: None, or the forward's h as a C-contiguous (N, H) array of
    w1's dtype (a strided one copied, as every input). Its values cannot be checked: that it is
    the forward of these rows and this w1 is the caller's word."""
    starts, indices, signs, w1, w2 = sparse_forward_args(starts, indices, signs, w1, w2)
    grad_logits = same_shape("grad_logits", float_array("grad_logits", grad_logits, (w2.ndim,), w1.dtype),
                             (len(starts) - 1,) + w2.shape[1:])
    if h is not None:
        h = float_array("h", h, (2,), w1.dtype)
        if h.shape != (len(starts) - 1, w1.shape[1]):
            raise ValueError(f"h must have shape {(len(starts) - 1, w1.shape[1])} (sparse_mlp_forward's h of "
                             f"these {len(starts) - 1} rows), not {h.shape}")
    grad_w1 = in_place_array("grad_w1", grad_w1, w1.dtype, w1.shape, contiguous=True)
    grad_w2 = in_place_array("grad_w2", grad_w2, w1.dtype, w2.shape, contiguous=True)
    return starts, indices, signs, grad_logits, w1, w2, grad_w1, grad_w2, h


# What a Pong episode store holds (pgcore.pong.SparseEpisodes): name -> (dtype, or None for the
# net's float dtype; dimensions, or None for the net's: logits (E, steps) or (E, steps, 3)).
EPISODE_ARRAYS = {"lengths": (np.dtype(np.int64), 1), "starts": (np.dtype(np.int64), 2),
                  "indices": (np.dtype(np.int16), 2), "signs": (np.dtype(np.int8), 2), "logits": (None, None),
                  "actions": (np.dtype(np.uint8), 2)}


def pong_step_args(frames, previous, rows, fresh, w1, w2, uniforms, episodes):
    """The checked arguments of pong_step, the episode store as the tuple of the arrays checked
    (EPISODE_ARRAYS' order: lengths, starts, indices, signs, logits, actions): the kernels use
    those, not attributes read again."""
    frames, previous, rows, fresh = difference_args(frames, previous, rows, fresh)
    w1, w2 = pong_net_args(w1, w2)
    return (frames, previous, rows, fresh, w1, w2, uniforms_args(uniforms, len(frames)),
            episode_store_args(episodes, w1, w2, rows, len(previous)))


def uniforms_args(uniforms, n):
    uniforms = np.asarray(uniforms)
    if uniforms.dtype != np.float64 or uniforms.shape != (n,):
        raise ValueError(f"uniforms must be float64 of shape ({n},), not {uniforms.dtype} {uniforms.shape}")
    return contiguous(uniforms)


def episode_store_args(episodes, w1, w2, rows, n_envs):
    """The arrays of an episode store (EPISODE_ARRAYS' order: lengths, starts, indices, signs,
    logits, actions) for a net (w1, w2) and n_envs envs, with room for a step of each of rows:
    the kernels use those, not attributes read again."""
    store = []
    for name, (dtype, ndim) in EPISODE_ARRAYS.items():
        array = getattr(episodes, name, None)
        dtype, ndim = dtype or w1.dtype, ndim or 1 + w2.ndim
        if not isinstance(array, np.ndarray) or array.dtype != dtype or array.ndim != ndim:
            raise TypeError(f"episodes.{name} must be a {ndim}-d {dtype} array")
        flags = array.flags
        if not (flags.c_contiguous and flags.writeable) or len(array) != n_envs:
            raise ValueError(f"episodes.{name} must be C-contiguous, writeable and have one row per env "
                             f"({n_envs})")
        store.append(array)
    lengths, starts, indices, signs, logits, actions = store
    steps, capacity = logits.shape[1], indices.shape[1]
    if (starts.shape[1] != steps + 1 or actions.shape[1] != steps
            or signs.shape[1] != capacity or logits.shape[2:] != w2.shape[1:]):
        raise ValueError("episodes: starts must have one more column than logits and actions; signs as many as "
                         "indices; logits one per action of w2")
    t = lengths[rows]
    taken = t.tolist()  # (builtins on lists: ndarray.max costs microseconds on a few elements)
    room = not taken or (min(taken) >= 0 and max(taken) < steps)
    if room and taken:  # each step's first free index, where the compiled kernel writes from
        first_free = starts[rows, t].tolist()
        room = min(first_free) >= 0 and max(first_free) <= capacity - w1.shape[0]
    if not room:
        raise ValueError(f"episodes has no room for another step of some of these envs (each needs a free step and "
                         f"{w1.shape[0]} free indices): call its make_room first")
    return tuple(store)


# ---- any game's frames, as ale-py resizes them ----

def atari_levels_args(frames, background, previous, rows, fresh, bits):
    """frames (N, H, W) uint8 (ale-py's grayscale frames, resized), 2 H W <= MAX_SPARSE_INPUTS;
    background (H W,) uint8 levels below 2**bits; previous, rows and fresh as previous_args's
    over H W pixels; bits in 1..8 -> (frames (N, H W), background, previous, rows, fresh, shift
    8 - bits). frames and background are copied where they share memory with previous, which
    the kernels write."""
    if isinstance(bits, (bool, np.bool_)) or not isinstance(bits, (int, np.integer)):
        raise TypeError(f"bits must be an integer, not {type(bits).__name__}")
    if not 1 <= bits <= 8:
        raise ValueError(f"bits must be in 1..8 (the levels kept: 2**bits), not {bits}")
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        raise TypeError(f"frames must have dtype uint8, not {frames.dtype}")
    if frames.ndim != 3 or frames.shape[1] * frames.shape[2] == 0:
        raise ValueError(f"frames must be a batch of grayscale frames, (N, H, W), not shape {frames.shape}")
    pixels = frames.shape[1] * frames.shape[2]
    if 2 * pixels > MAX_SPARSE_INPUTS:
        raise ValueError(f"frames of {frames.shape[1]} x {frames.shape[2]} pixels are too large: the inputs, twice "
                         f"the pixels, must fit {MAX_SPARSE_INPUTS} (at most {MAX_SPARSE_INPUTS // 2} pixels)")
    background = np.asarray(background)
    if background.dtype != np.uint8:
        raise TypeError(f"background must have dtype uint8, not {background.dtype}")
    if background.shape != (pixels,):
        raise ValueError(f"background must have shape ({pixels},) (a level a pixel), not {background.shape}")
    if pixels and int(background.max()) >= 2 ** bits:
        raise ValueError(f"background must hold levels below 2**bits = {2 ** bits}, not {int(background.max())}")
    previous, rows, fresh = previous_args(previous, pixels, len(frames), rows, fresh)
    frames, background = (np.array(a) if np.may_share_memory(a, previous) else np.ascontiguousarray(a)
                          for a in (frames.reshape(len(frames), pixels), background))
    return frames, background, previous, rows, fresh, 8 - bits


def atari_step_args(frames, background, previous, rows, fresh, w1, w2, uniforms, episodes, bits):
    """The checked arguments of atari_step: atari_levels_args' (shift for bits), w1 (2 H W, H),
    w2 (H, K) (a softmax over the game's K actions), uniforms, and the episode store's arrays."""
    frames, background, previous, rows, fresh, shift = atari_levels_args(frames, background, previous, rows, fresh,
                                                                         bits)
    w1, w2 = sparse_net_args(w1, w2)
    if w1.shape[0] != 2 * frames.shape[1] or w2.ndim != 2:
        raise ValueError(f"w1 must have 2 x {frames.shape[1]} rows (each pixel's change, then its level off the "
                         f"background) and w2 2 dimensions (H, K), not {w1.shape} and {w2.shape}")
    return (frames, background, previous, rows, fresh, shift, w1, w2, uniforms_args(uniforms, len(frames)),
            episode_store_args(episodes, w1, w2, rows, len(previous)))
