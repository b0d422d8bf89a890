"""Bad arguments raise ValueError (bad value or shape) or TypeError (wrong type or dtype)
with a message that names the argument (API.md), identically in pgcore.kernels and
pgcore.reference. Never a crash, never a silent wrong answer."""
import numpy as np
import pytest

import pgcore
from helpers import BACKENDS

f64, f32 = np.float64, np.float32


def ones(*shape, dtype=f64):
    return np.ones(shape, dtype)


def frozen(array):
    array = np.array(array)
    array.flags.writeable = False
    return array


def _valid():
    """Valid arguments of each kernel (float64); each bad case changes one of them."""
    h = np.abs(np.random.default_rng(0).normal(size=(4, 5)))
    return {
        "softmax": dict(logits=ones(4, 3), tau=1.0),
        "log_softmax": dict(logits=ones(4, 3), tau=1.0),
        "softmax_policy_grad": dict(logits=ones(4, 3), actions=np.array([0, 1, 2, 0]), weights=ones(4), tau=1.0),
        "sigmoid_policy_grad": dict(logits=ones(4), actions=np.array([0, 1, 1, 0]), weights=ones(4)),
        "clipped_sigmoid_policy_grad": dict(logits=ones(4), old_logits=ones(4), actions=np.array([0, 1, 1, 0]),
                                            advantages=ones(4), clip=0.2),
        "clipped_softmax_policy_grad": dict(logits=ones(4, 3), old_logits=ones(4, 3),
                                            actions=np.array([0, 1, 2, 0]), advantages=ones(4), clip=0.2),
        "relu": dict(x=ones(4, 3)),
        "relu_backward": dict(grad_out=ones(4, 3), x=ones(4, 3)),
        "linear_backward": dict(x=ones(4, 3), grad_out=ones(4, 2), w=ones(3, 2)),
        "mlp_forward": dict(x=ones(4, 6), w1=ones(6, 5), w2=ones(5, 2)),
        "mlp_backward": dict(x=ones(4, 6), h=h, grad_logits=ones(4, 2), w2=ones(5, 2)),
        "discounted_returns": dict(rewards=ones(6), gamma=0.9, dones=np.array([0, 1, 0, 0, 1, 0])),
        "standardize": dict(x=ones(4, 3), eps=1e-8),
        "squared_error": dict(predictions=ones(4, 3), targets=ones(4, 3), scale=0.5),
        "gaussian_policy_grad": dict(theta=ones(3), states=ones(4, 3), actions=ones(4), weights=ones(4), sigma=0.5),
        "rmsprop_step": dict(param=ones(5), grad=ones(5), cache=ones(5), lr=0.1, decay=0.99, eps=1e-5),
        "adam_step": dict(param=ones(5), grad=ones(5), m=ones(5), v=ones(5), step=1, lr=0.1),
        "rmsprop_rows_step": dict(param=ones(6, 3), grad=ones(6, 3), cache=ones(6, 3), rows=np.array([0, 2, 5]),
                                  ages=np.zeros(6, np.int64), lr=0.1, decay=0.99, eps=1e-5),
        "rmsprop_rows_flush": dict(cache=ones(6, 3), ages=np.zeros(6, np.int64), decay=0.99),
        "pong_preprocess": dict(frames=np.zeros((210, 160, 3), np.uint8)),
        "sparse_mlp_forward": dict(_sparse_rows(), w1=ones(6400, 5), w2=ones(5)),
        "sparse_mlp_backward": dict(_sparse_rows(), grad_logits=ones(2), w1=ones(6400, 5), w2=ones(5),
                                    grad_w1=np.zeros((6400, 5)), grad_w2=np.zeros(5), h=h[:2]),
    }


def _sparse_rows():
    """Two sparse ternary rows (pong_sparse_difference's form): pixels 3 and 9, then pixel 5."""
    return dict(starts=np.array([0, 2, 3]), indices=np.array([3, 9, 5], np.int16), signs=np.array([1, -1, 1], np.int8))


# (kernel, argument, bad value, error class); the message must start with the argument's name
BAD = [
    # softmax / log_softmax
    ("softmax", "logits", ones(2, 3, 4), ValueError),
    ("softmax", "logits", ones(4, 0), ValueError),
    ("softmax", "logits", np.ones((4, 3), np.int64), TypeError),
    ("softmax", "logits", np.array([["a", "b"]]), TypeError),
    ("softmax", "tau", 0.0, ValueError),
    ("softmax", "tau", -1.0, ValueError),
    ("softmax", "tau", float("nan"), ValueError),
    ("softmax", "tau", float("inf"), ValueError),
    ("softmax", "tau", "1.0", TypeError),
    ("softmax", "tau", None, TypeError),
    ("softmax", "tau", True, TypeError),
    ("log_softmax", "logits", np.ones(3, np.int32), TypeError),
    ("log_softmax", "tau", 0.0, ValueError),
    ("log_softmax", "tau", float("nan"), ValueError),
    # softmax_policy_grad
    ("softmax_policy_grad", "logits", ones(4), ValueError),
    ("softmax_policy_grad", "logits", ones(1, 4, 3), ValueError),
    ("softmax_policy_grad", "logits", np.ones((4, 3), np.int16), TypeError),
    ("softmax_policy_grad", "weights", ones(4, dtype=f32), TypeError),
    ("softmax_policy_grad", "weights", ones(5), ValueError),
    ("softmax_policy_grad", "weights", ones(4, 1), ValueError),
    ("softmax_policy_grad", "weights", np.ones(4, np.int64), TypeError),
    ("softmax_policy_grad", "actions", np.array([0, -1, 2, 0]), ValueError),
    ("softmax_policy_grad", "actions", np.array([0, 1, 3, 0]), ValueError),
    ("softmax_policy_grad", "actions", np.array([0.0, 1.0, 2.0, 0.0]), TypeError),
    ("softmax_policy_grad", "actions", np.array([0, 1, 2]), ValueError),
    ("softmax_policy_grad", "actions", np.array([[0, 1, 2, 0]]), ValueError),
    ("softmax_policy_grad", "actions", np.array(["0", "1", "2", "0"]), TypeError),
    ("softmax_policy_grad", "tau", 0.0, ValueError),
    ("softmax_policy_grad", "tau", -0.5, ValueError),
    ("softmax_policy_grad", "tau", float("nan"), ValueError),
    ("softmax_policy_grad", "entropy", float("nan"), ValueError),
    ("softmax_policy_grad", "entropy", float("-inf"), ValueError),
    ("softmax_policy_grad", "entropy", "0.1", TypeError),
    ("softmax_policy_grad", "entropy", None, TypeError),
    # sigmoid_policy_grad
    ("sigmoid_policy_grad", "logits", ones(4, 1), ValueError),
    ("sigmoid_policy_grad", "logits", np.ones(4, np.int64), TypeError),
    ("sigmoid_policy_grad", "actions", np.array([0, 1, 2, 0]), ValueError),
    ("sigmoid_policy_grad", "actions", np.array([0, -1, 1, 0]), ValueError),
    ("sigmoid_policy_grad", "actions", np.array([0.0, 1.0, 1.0, 0.0]), TypeError),
    ("sigmoid_policy_grad", "actions", np.array([0, 1, 1]), ValueError),
    ("sigmoid_policy_grad", "weights", ones(4, dtype=f32), TypeError),
    ("sigmoid_policy_grad", "weights", ones(3), ValueError),
    # clipped_sigmoid_policy_grad
    ("clipped_sigmoid_policy_grad", "logits", ones(4, 1), ValueError),
    ("clipped_sigmoid_policy_grad", "logits", np.ones(4, np.int64), TypeError),
    ("clipped_sigmoid_policy_grad", "old_logits", ones(3), ValueError),
    ("clipped_sigmoid_policy_grad", "old_logits", ones(4, dtype=f32), TypeError),
    ("clipped_sigmoid_policy_grad", "actions", np.array([0, 1, 2, 0]), ValueError),
    ("clipped_sigmoid_policy_grad", "advantages", ones(5), ValueError),
    ("clipped_sigmoid_policy_grad", "advantages", ones(4, dtype=f32), TypeError),
    ("clipped_sigmoid_policy_grad", "clip", 0.0, ValueError),
    ("clipped_sigmoid_policy_grad", "clip", -0.2, ValueError),
    ("clipped_sigmoid_policy_grad", "clip", float("nan"), ValueError),
    ("clipped_sigmoid_policy_grad", "clip", float("inf"), ValueError),
    ("clipped_sigmoid_policy_grad", "clip", "0.2", TypeError),
    # clipped_softmax_policy_grad
    ("clipped_softmax_policy_grad", "logits", ones(4), ValueError),
    ("clipped_softmax_policy_grad", "logits", np.ones((4, 3), np.int64), TypeError),
    ("clipped_softmax_policy_grad", "old_logits", ones(4, 2), ValueError),
    ("clipped_softmax_policy_grad", "old_logits", ones(4, 3, dtype=f32), TypeError),
    ("clipped_softmax_policy_grad", "actions", np.array([0, 1, 3, 0]), ValueError),
    ("clipped_softmax_policy_grad", "actions", np.array([0, -1, 2, 0]), ValueError),
    ("clipped_softmax_policy_grad", "advantages", ones(5), ValueError),
    ("clipped_softmax_policy_grad", "clip", 0.0, ValueError),
    ("clipped_softmax_policy_grad", "clip", float("nan"), ValueError),
    # relu, relu_backward
    ("relu", "x", np.ones(4, np.int32), TypeError),
    ("relu", "x", np.ones(4, np.float16), TypeError),
    ("relu_backward", "x", ones(4, 2), ValueError),
    ("relu_backward", "x", ones(4, 3, dtype=f32), TypeError),
    ("relu_backward", "grad_out", np.ones((4, 3), np.int64), TypeError),
    # linear_backward
    ("linear_backward", "x", ones(3), ValueError),
    ("linear_backward", "x", np.ones((4, 3), np.int64), TypeError),
    ("linear_backward", "w", ones(4, 2), ValueError),
    ("linear_backward", "w", ones(3), ValueError),
    ("linear_backward", "w", ones(3, 2, dtype=f32), TypeError),
    ("linear_backward", "grad_out", ones(4, 3), ValueError),
    ("linear_backward", "grad_out", ones(5, 2), ValueError),
    ("linear_backward", "grad_out", ones(4, 2, dtype=f32), TypeError),
    # mlp_forward
    ("mlp_forward", "w1", ones(7, 5), ValueError),
    ("mlp_forward", "w1", ones(6), ValueError),
    ("mlp_forward", "w1", np.ones((6, 5), np.int8), TypeError),
    ("mlp_forward", "w2", ones(4, 2), ValueError),
    ("mlp_forward", "w2", ones(5, 2, 1), ValueError),
    ("mlp_forward", "w2", ones(5, 2, dtype=f32), TypeError),
    ("mlp_forward", "x", ones(4, 6, dtype=f32), TypeError),
    ("mlp_forward", "x", np.ones((4, 6), np.int32), TypeError),
    ("mlp_forward", "x", np.ones((4, 6), np.uint8), TypeError),
    ("mlp_forward", "x", ones(2, 4, 6), ValueError),
    ("mlp_forward", "x", np.ones((2, 4, 6), np.int8), ValueError),
    # mlp_backward
    ("mlp_backward", "h", ones(3, 5), ValueError),
    ("mlp_backward", "h", ones(5), ValueError),
    ("mlp_backward", "h", np.ones((4, 5), np.int64), TypeError),
    ("mlp_backward", "w2", ones(4, 2), ValueError),
    ("mlp_backward", "w2", ones(5, 2, dtype=f32), TypeError),
    ("mlp_backward", "grad_logits", ones(4, 3), ValueError),
    ("mlp_backward", "grad_logits", ones(4), ValueError),
    ("mlp_backward", "grad_logits", ones(3, 2), ValueError),
    ("mlp_backward", "grad_logits", ones(4, 2, dtype=f32), TypeError),
    ("mlp_backward", "x", ones(6), ValueError),
    ("mlp_backward", "x", np.ones(6, np.int8), ValueError),
    ("mlp_backward", "x", np.ones((4, 6), np.int16), TypeError),
    ("mlp_backward", "x", ones(4, 6, dtype=f32), TypeError),
    # discounted_returns
    ("discounted_returns", "gamma", -0.1, ValueError),
    ("discounted_returns", "gamma", 1.5, ValueError),
    ("discounted_returns", "gamma", float("nan"), ValueError),
    ("discounted_returns", "gamma", "0.9", TypeError),
    ("discounted_returns", "dones", np.array([0, 1, 0, 0, 1]), ValueError),
    ("discounted_returns", "dones", np.zeros((6, 1)), ValueError),
    ("discounted_returns", "dones", np.array(["a"] * 6), TypeError),
    ("discounted_returns", "rewards", ones(2, 3, 1), ValueError),
    ("discounted_returns", "rewards", np.ones(6, np.int64), TypeError),
    # squared_error
    ("squared_error", "predictions", np.ones(5, np.int64), TypeError),
    ("squared_error", "targets", ones(4, 2), ValueError),
    ("squared_error", "targets", np.ones((4, 3), np.float32), TypeError),
    ("squared_error", "scale", -1.0, ValueError),
    ("squared_error", "scale", float("nan"), ValueError),
    ("squared_error", "scale", "1", TypeError),
    # standardize
    ("standardize", "x", np.ones(5, np.int64), TypeError),
    ("standardize", "eps", -1e-3, ValueError),
    ("standardize", "eps", float("nan"), ValueError),
    # gaussian_policy_grad
    ("gaussian_policy_grad", "sigma", 0.0, ValueError),
    ("gaussian_policy_grad", "sigma", -1.0, ValueError),
    ("gaussian_policy_grad", "sigma", float("nan"), ValueError),
    ("gaussian_policy_grad", "theta", ones(3, 2, 1), ValueError),
    ("gaussian_policy_grad", "theta", np.ones(3, np.int64), TypeError),
    ("gaussian_policy_grad", "states", ones(4, 2), ValueError),
    ("gaussian_policy_grad", "states", ones(4), ValueError),
    ("gaussian_policy_grad", "states", ones(4, 3, dtype=f32), TypeError),
    ("gaussian_policy_grad", "actions", ones(5), ValueError),
    ("gaussian_policy_grad", "actions", ones(4, 1), ValueError),
    ("gaussian_policy_grad", "actions", np.ones(4, np.int64), TypeError),
    ("gaussian_policy_grad", "weights", ones(3), ValueError),
    ("gaussian_policy_grad", "weights", ones(4, dtype=f32), TypeError),
    # rmsprop_step
    ("rmsprop_step", "param", frozen(ones(5)), ValueError),
    ("rmsprop_step", "param", [1.0] * 5, TypeError),
    ("rmsprop_step", "param", np.ones(5, np.int64), TypeError),
    ("rmsprop_step", "cache", frozen(ones(5)), ValueError),
    ("rmsprop_step", "cache", ones(4), ValueError),
    ("rmsprop_step", "cache", ones(5, dtype=f32), TypeError),
    ("rmsprop_step", "grad", ones(4), ValueError),
    ("rmsprop_step", "grad", ones(5, dtype=f32), TypeError),
    ("rmsprop_step", "decay", 1.5, ValueError),
    ("rmsprop_step", "decay", -0.5, ValueError),
    ("rmsprop_step", "lr", float("nan"), ValueError),
    ("rmsprop_step", "lr", "0.1", TypeError),
    ("rmsprop_step", "eps", -1.0, ValueError),
    # adam_step
    ("adam_step", "param", frozen(ones(5)), ValueError),
    ("adam_step", "param", [1.0] * 5, TypeError),
    ("adam_step", "m", ones(4), ValueError),
    ("adam_step", "m", ones(5, dtype=f32), TypeError),
    ("adam_step", "v", frozen(ones(5)), ValueError),
    ("adam_step", "v", np.ones(5, np.int64), TypeError),
    ("adam_step", "grad", ones(4), ValueError),
    ("adam_step", "step", 0, ValueError),
    ("adam_step", "step", 1.5, TypeError),
    ("adam_step", "step", True, TypeError),
    ("adam_step", "lr", float("inf"), ValueError),
    ("adam_step", "beta1", 1.5, ValueError),
    ("adam_step", "beta2", -0.1, ValueError),
    ("adam_step", "beta2", 1.0, ValueError),
    ("adam_step", "eps", -1.0, ValueError),
    # rmsprop_rows_step, rmsprop_rows_flush
    ("rmsprop_rows_step", "rows", np.array([0, 2, 2]), ValueError),
    ("rmsprop_rows_step", "rows", np.array([0, 6]), ValueError),
    ("rmsprop_rows_step", "rows", np.array([-1, 2]), ValueError),
    ("rmsprop_rows_step", "rows", np.array([2**64 - 1], np.uint64), ValueError),
    ("rmsprop_rows_step", "rows", np.array([[0, 2]]), ValueError),
    ("rmsprop_rows_step", "rows", np.array([0.0, 2.0]), TypeError),
    ("rmsprop_rows_step", "rows", np.array([True, False]), TypeError),
    ("rmsprop_rows_step", "ages", np.zeros(5, np.int64), ValueError),
    ("rmsprop_rows_step", "ages", np.zeros((6, 1), np.int64), ValueError),
    ("rmsprop_rows_step", "ages", np.zeros(6, np.int32), TypeError),
    ("rmsprop_rows_step", "ages", np.zeros(6), TypeError),
    ("rmsprop_rows_step", "ages", [0] * 6, TypeError),
    ("rmsprop_rows_step", "ages", frozen(np.zeros(6, np.int64)), ValueError),
    ("rmsprop_rows_step", "ages", np.zeros(12, np.int64)[::2], ValueError),
    ("rmsprop_rows_step", "ages", np.array([0, 0, 0, -1, 0, 0]), ValueError),
    ("rmsprop_rows_step", "param", frozen(ones(6, 3)), ValueError),
    ("rmsprop_rows_step", "param", ones(6, 6)[:, ::2], ValueError),
    ("rmsprop_rows_step", "param", ones(18), ValueError),
    ("rmsprop_rows_step", "param", np.ones((6, 3), np.int64), TypeError),
    ("rmsprop_rows_step", "param", [[1.0] * 3] * 6, TypeError),
    ("rmsprop_rows_step", "grad", ones(6, 4), ValueError),
    ("rmsprop_rows_step", "grad", ones(6, 3, dtype=f32), TypeError),
    ("rmsprop_rows_step", "grad", frozen(ones(6, 3)), ValueError),
    ("rmsprop_rows_step", "cache", ones(5, 3), ValueError),
    ("rmsprop_rows_step", "cache", ones(6, 3, dtype=f32), TypeError),
    ("rmsprop_rows_step", "cache", ones(6, 6)[:, ::2], ValueError),
    ("rmsprop_rows_step", "decay", 1.5, ValueError),
    ("rmsprop_rows_step", "lr", float("nan"), ValueError),
    ("rmsprop_rows_step", "lr", "0.1", TypeError),
    ("rmsprop_rows_step", "eps", -1.0, ValueError),
    ("rmsprop_rows_flush", "cache", frozen(ones(6, 3)), ValueError),
    ("rmsprop_rows_flush", "cache", ones(18), ValueError),
    ("rmsprop_rows_flush", "cache", np.ones((6, 3), np.int64), TypeError),
    ("rmsprop_rows_flush", "ages", np.zeros(5, np.int64), ValueError),
    ("rmsprop_rows_flush", "ages", np.zeros(6, np.int32), TypeError),
    ("rmsprop_rows_flush", "ages", np.full(6, -3, np.int64), ValueError),
    ("rmsprop_rows_flush", "decay", -0.1, ValueError),
    ("rmsprop_rows_flush", "decay", None, TypeError),
    # sparse_mlp_forward / sparse_mlp_backward (and the other cases of test_sparse.py)
    ("sparse_mlp_forward", "starts", np.array([0, 3, 2]), ValueError),
    ("sparse_mlp_forward", "indices", np.array([3, 6400, 5], np.int16), ValueError),
    ("sparse_mlp_forward", "signs", np.array([1, 0, 1], np.int8), ValueError),
    ("sparse_mlp_forward", "signs", np.array([1, -128, 1], np.int8), ValueError),
    ("sparse_mlp_forward", "signs", np.array([1.0, -1.0, 1.0]), TypeError),
    ("sparse_mlp_forward", "w1", ones(32769, 5), ValueError),
    ("sparse_mlp_forward", "w2", ones(5, 19), ValueError),
    ("sparse_mlp_forward", "w2", ones(4), ValueError),
    ("sparse_mlp_backward", "grad_logits", ones(3), ValueError),
    ("sparse_mlp_backward", "grad_w1", frozen(np.zeros((6400, 5))), ValueError),
    ("sparse_mlp_backward", "h", ones(3, 5), ValueError),
    ("sparse_mlp_backward", "h", ones(2, 4), ValueError),
    ("sparse_mlp_backward", "h", ones(10), ValueError),
    ("sparse_mlp_backward", "h", ones(2, 5, dtype=f32), TypeError),
    ("sparse_mlp_backward", "h", np.ones((2, 5), np.int64), TypeError),
    # pong_preprocess
    ("pong_preprocess", "frames", np.zeros((210, 160, 4), np.uint8), ValueError),
    ("pong_preprocess", "frames", np.zeros((2, 210, 160, 4), np.uint8), ValueError),
    ("pong_preprocess", "frames", np.zeros((200, 160, 3), np.uint8), ValueError),
    ("pong_preprocess", "frames", np.zeros((210, 150, 3), np.uint8), ValueError),
    ("pong_preprocess", "frames", np.zeros((160, 210), np.uint8), ValueError),
    ("pong_preprocess", "frames", np.zeros((1, 1, 210, 160, 3), np.uint8), ValueError),
    ("pong_preprocess", "frames", np.zeros((210, 160, 3), np.float32), TypeError),
    ("pong_preprocess", "frames", np.zeros((210, 160, 3), np.int16), TypeError),
    ("pong_preprocess", "frames", np.zeros((210, 160, 3), np.int8), TypeError),
]


def _case_id(case):
    name, arg, value, error = case
    shape = getattr(value, "shape", None)
    what = f"{np.asarray(value).dtype}{list(shape)}" if shape is not None else repr(value)
    return f"{name}-{arg}={what}-{error.__name__}"


@pytest.mark.parametrize("case", BAD, ids=[_case_id(c) for c in BAD])
def test_bad_argument(backend, case):
    name, arg, value, error = case
    kwargs = _valid()[name]
    getattr(backend, name)(**kwargs)  # the valid call works
    kwargs = _valid()[name]
    kwargs[arg] = value
    with pytest.raises(error, match=rf"^{arg}\b"):
        getattr(backend, name)(**kwargs)


def test_same_message_in_both_backends():
    """The checks are shared: kernels and reference raise the same class and message."""
    for name, arg, value, error in BAD:
        messages = []
        for module in BACKENDS:
            kwargs = _valid()[name]
            kwargs[arg] = value
            with pytest.raises(error) as info:
                getattr(module, name)(**kwargs)
            messages.append(str(info.value))
        assert messages[0] == messages[1], (name, arg)


def test_positional_and_float32_args_also_checked(backend):
    """The same checks for float32 and for positional arguments."""
    with pytest.raises(TypeError, match=r"^weights\b"):
        backend.softmax_policy_grad(ones(2, 3, dtype=f32), [0, 1], ones(2), 1.0)
    with pytest.raises(ValueError, match=r"^actions\b"):
        backend.softmax_policy_grad(ones(2, 3, dtype=f32), [0, 3], ones(2, dtype=f32))
    with pytest.raises(ValueError, match=r"^tau\b"):
        backend.softmax(ones(2, 3, dtype=f32), 0)
    with pytest.raises(TypeError, match=r"^x\b"):
        backend.mlp_forward(ones(4, 6), ones(6, 5, dtype=f32), ones(5, dtype=f32))
    with pytest.raises(ValueError, match=r"^gamma\b"):
        backend.discounted_returns(ones(3, dtype=f32), 1.0000001)


def test_failed_rmsprop_step_leaves_arrays_alone(backend):
    param, cache = np.arange(5.0), np.full(5, 2.0)
    for bad in (dict(grad=ones(4)), dict(grad=ones(5, dtype=f32)), dict(lr=float("nan")), dict(decay=2.0)):
        kwargs = dict(grad=ones(5), lr=0.1, decay=0.9, eps=1e-5) | bad
        with pytest.raises((ValueError, TypeError)):
            backend.rmsprop_step(param, cache=cache, **kwargs)
        assert np.array_equal(param, np.arange(5.0)) and np.array_equal(cache, np.full(5, 2.0))


def test_rmsprop_step_read_only_view_of_param(backend):
    base = ones(10)
    view = base[::2]
    view.flags.writeable = False
    with pytest.raises(ValueError, match=r"^param\b"):
        backend.rmsprop_step(view, ones(5), ones(5), 0.1)
    assert np.array_equal(base, ones(10))


@pytest.mark.parametrize("n, error", [(0, ValueError), (-1, ValueError), (1.5, TypeError), (2.0, TypeError),
                                      ("2", TypeError), (True, TypeError), (None, TypeError)])
def test_set_num_threads_rejects(n, error):
    before = pgcore.get_num_threads()
    with pytest.raises(error, match=r"^n_threads\b"):
        pgcore.set_num_threads(n)
    assert pgcore.get_num_threads() == before


def test_set_num_threads_accepts_integers():
    before = pgcore.get_num_threads()
    try:
        pgcore.set_num_threads(np.int64(1))
        assert pgcore.get_num_threads() == 1 and type(pgcore.get_num_threads()) is int
        pgcore.set_num_threads(3)
        assert pgcore.get_num_threads() == 3
    finally:
        pgcore.set_num_threads(before)
