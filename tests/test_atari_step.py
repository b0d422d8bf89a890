"""Any game's frames as sparse inputs: atari_sparse_levels against its definition (a loop over
pixels), atari_step against its NumPy twin (float32/float64, 1 and 2 threads, hypothesis shapes
and level counts), the sparse net at any input size and softmax width, and bad inputs."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import pgcore.kernels as K
import pgcore.reference as R
from pgcore import pong
from helpers import assert_close, assert_same_episodes, rtol_of

seeds = st.integers(0, 2**32 - 1)
BACKENDS = pytest.mark.parametrize("module", [K, R], ids=["kernels", "reference"])


def scene(rng, n, height, width, bits):
    """(frames (n, height, width), background levels (P,), previous levels (n, P)): one random
    picture, each frame and the previous levels a few random pixels off it (or, at random, all),
    the background a few pixels off its levels."""
    base = rng.integers(0, 256, (height, width), dtype=np.uint8)
    frames = np.repeat(base[None], n, axis=0)
    for frame in frames:
        if rng.random() < 0.2:
            frame[...] = rng.integers(0, 256, frame.shape, dtype=np.uint8)
        else:
            changed = rng.random(frame.shape) < rng.choice([0.0, 0.02, 0.3])
            frame[changed] = rng.integers(0, 256, int(changed.sum()), dtype=np.uint8)
    levels = base.ravel() >> (8 - bits)
    background = levels.copy()
    off = rng.random(levels.shape) < 0.1
    background[off] = rng.integers(0, 2 ** bits, int(off.sum()), dtype=np.uint8)
    previous = np.repeat(levels[None], n, axis=0)
    off = rng.random(previous.shape) < 0.05
    previous[off] = rng.integers(0, 2 ** bits, int(off.sum()), dtype=np.uint8)
    return frames, background, previous


def levels_by_definition(frames, background, previous, rows, fresh, bits):
    """atari_sparse_levels pixel by pixel, in Python integers."""
    pixels = frames.shape[1] * frames.shape[2]
    starts, indices, signs = [0], [], []
    for i, e in enumerate(rows):
        levels = [int(value) >> (8 - bits) for value in frames[i].ravel()]
        for p in range(pixels):
            if not fresh[i] and levels[p] != previous[e, p]:
                indices.append(p)
                signs.append(1 if levels[p] > previous[e, p] else -1)
        previous[e] = levels
        for p in range(pixels):
            if levels[p] != background[p]:
                indices.append(pixels + p)
                signs.append(1)
        starts.append(len(indices))
    return np.array(starts), np.array(indices, dtype=np.int16), np.array(signs, dtype=np.int8)


# ---- atari_sparse_levels ----

@BACKENDS
@given(seed=seeds, batch=st.integers(0, 5), envs_extra=st.integers(0, 3), height=st.integers(1, 13),
       width=st.integers(1, 13), bits=st.integers(1, 8))
def test_sparse_levels_are_their_definition(module, seed, batch, envs_extra, height, width, bits):
    """Changed levels (+1 up, -1 down; none on a fresh frame), then the levels off the background,
    each pixel once, rising; previous becomes the frames' levels. Widths that are not a multiple
    of 8 pixels reach the tail after the words compared 8 at a time."""
    rng = np.random.default_rng(seed)
    n_envs = batch + envs_extra
    frames, background, previous = scene(rng, max(batch, n_envs), height, width, bits)
    frames, previous = frames[:batch], previous[:n_envs]
    rows = rng.permutation(n_envs)[:batch]
    fresh = rng.random(batch) < 0.3
    want_previous = previous.copy()
    want = levels_by_definition(frames, background, want_previous, rows, fresh, bits)
    got = module.atari_sparse_levels(frames, background, previous, rows, fresh, bits)
    for a, b, what in zip(got, want, ("starts", "indices", "signs")):
        assert a.dtype == b.dtype or what == "starts", what
        assert np.array_equal(a, b), what
    assert got[0].dtype == np.int64
    assert np.array_equal(previous, want_previous), "previous"


def test_sparse_levels_defaults_and_every_pixel_changed():
    """rows None is 0..B-1, fresh None none fresh; a frame whose every pixel changed and is off the
    background gives every input."""
    for module in (K, R):
        frames = np.full((2, 6, 10), 255, np.uint8)
        previous = np.zeros((2, 60), np.uint8)
        starts, indices, signs = module.atari_sparse_levels(frames, np.zeros(60, np.uint8), previous, bits=3)
        assert starts.tolist() == [0, 120, 240] and np.array_equal(indices[:120], np.arange(120))
        assert (signs == 1).all() and (previous == 7).all()


# ---- atari_step ----

def run_steps(module, seed, hidden, dtype, n_envs, steps, height, width, n_logits, bits):
    """atari_step calls on random subsets of envs; returns what they wrote."""
    rng = np.random.default_rng(seed)
    inputs = 2 * height * width
    w1 = (np.random.default_rng(seed + 1).standard_normal((inputs, hidden)) * 0.3).astype(dtype)
    w2 = np.random.default_rng(seed + 2).standard_normal((hidden, n_logits)).astype(dtype)
    frames, background, previous = scene(rng, n_envs, height, width, bits)
    episodes = pong.SparseEpisodes(n_envs, dtype, steps=2, capacity=inputs, inputs=inputs, logits=n_logits)
    actions = []
    for _ in range(steps):
        rows = rng.permutation(n_envs)[:int(rng.integers(1, n_envs + 1))]
        episodes.make_room(rows)
        step_frames, _, _ = scene(rng, len(rows), height, width, bits)
        actions.append(module.atari_step(step_frames, background, previous, rows, rng.random(len(rows)) < 0.2, w1,
                                         w2, rng.random(len(rows)), episodes, bits))
    return actions, episodes, previous, w2


@given(seed=seeds, hidden=st.integers(1, 24), n_envs=st.integers(1, 6), height=st.integers(1, 12),
       width=st.integers(1, 12), n_logits=st.integers(2, 18), bits=st.integers(1, 8))
def test_atari_step_matches_its_twin(dtype, threads, seed, hidden, n_envs, height, width, n_logits, bits):
    got = run_steps(K, seed, hidden, dtype, n_envs, 6, height, width, n_logits, bits)
    want = run_steps(R, seed, hidden, dtype, n_envs, 6, height, width, n_logits, bits)
    for a, b in zip(got[0], want[0]):
        assert a.dtype == np.int32 and np.array_equal(a, b) and ((0 <= a) & (a < n_logits)).all()
    assert np.array_equal(got[2], want[2]), "previous levels"
    assert_same_episodes(got[1], want[1], n_envs, dtype, atol=1e-5 * np.abs(got[3]).sum())


def test_atari_step_logits_are_the_forward_bits():
    """The learner recomputes the logits with sparse_mlp_forward and takes them for the ones the
    step acted on: the same bits."""
    rng = np.random.default_rng(3)
    height, width, n_logits = 21, 16, 6
    inputs = 2 * height * width
    w1 = (rng.standard_normal((inputs, 32)) * 0.1).astype(np.float32)
    w2 = rng.standard_normal((32, n_logits)).astype(np.float32)
    frames, background, previous = scene(rng, 4, height, width, 4)
    episodes = pong.SparseEpisodes(4, np.float32, inputs=inputs, logits=n_logits)
    for _ in range(6):
        rows = rng.permutation(4)[:int(rng.integers(1, 5))]
        episodes.make_room(rows)
        K.atari_step(scene(rng, len(rows), height, width, 4)[0], background, previous, rows,
                     np.zeros(len(rows), bool), w1, w2, rng.random(len(rows)), episodes)
    for e in range(4):
        starts, indices, signs, logits, _, _ = episodes.episode(e)
        _, want = K.sparse_mlp_forward(starts, indices[:starts[-1]], signs[:starts[-1]], w1, w2)
        assert logits.shape == want.shape and logits.tobytes() == want.tobytes()


# ---- the sparse net at any size ----

@BACKENDS
@given(seed=seeds, inputs=st.integers(1, 300), hidden=st.integers(1, 20), n_logits=st.integers(1, 18),
       batch=st.integers(0, 7))
def test_sparse_net_of_any_inputs_and_actions_is_the_dense_net(module, dtype, threads, seed, inputs, hidden, n_logits,
                                                                batch):
    """sparse_mlp_forward and sparse_mlp_backward on D inputs and K logits are mlp_forward and
    mlp_backward's products on the dense rows (one logit: w2 (H,))."""
    rng = np.random.default_rng(seed)
    x = np.zeros((batch, inputs), np.int8)
    mask = rng.random(x.shape) < 0.2
    x[mask] = rng.choice(np.array([-1, 1], np.int8), size=int(mask.sum()))
    w1 = rng.standard_normal((inputs, hidden)).astype(dtype)
    w2 = rng.standard_normal((hidden,) if n_logits == 1 else (hidden, n_logits)).astype(dtype)
    rows, columns = np.nonzero(x)
    starts = np.concatenate(([0], np.cumsum(np.bincount(rows, minlength=batch))))
    indices, signs = columns.astype(np.int16), x[rows, columns]
    h, logits = module.sparse_mlp_forward(starts, indices, signs, w1, w2)
    want_h = np.maximum(x.astype(np.float64) @ w1, 0)
    rtol = rtol_of(dtype)
    assert_close(h, want_h.astype(dtype), rtol=rtol, atol=rtol * (np.abs(w1).sum(axis=0) + 1), what="h")
    assert_close(logits, (want_h @ w2).astype(dtype), rtol=rtol, atol=rtol * hidden * (np.abs(want_h).max(initial=0) + 1) *
                 np.abs(w2).max(), what="logits")
    grad_logits = rng.standard_normal(logits.shape).astype(dtype)
    grad_w1, grad_w2 = np.zeros_like(w1), np.zeros_like(w2)
    module.sparse_mlp_backward(starts, indices, signs, grad_logits, w1, w2, grad_w1, grad_w2)
    grad_h = (grad_logits[:, None] * w2 if n_logits == 1 else grad_logits @ w2.T) * (want_h > 0)
    scale = rtol * (batch + 1) * (np.abs(grad_logits).max(initial=0) + 1) * (np.abs(w2).max() + 1) * n_logits
    assert_close(grad_w2, (want_h.T @ grad_logits).astype(dtype), rtol=rtol, atol=scale * (np.abs(want_h).max(initial=0) + 1),
                 what="grad_w2")
    assert_close(grad_w1, (x.T.astype(np.float64) @ grad_h).astype(dtype), rtol=rtol, atol=scale, what="grad_w1")


# ---- bad inputs ----

def good_step(bits=4):
    rng = np.random.default_rng(0)
    w1 = np.zeros((2 * 6 * 8, 4), np.float32)
    w2 = np.zeros((4, 5), np.float32)
    episodes = pong.SparseEpisodes(3, np.float32, inputs=len(w1), logits=5)
    return dict(frames=rng.integers(0, 256, (2, 6, 8), dtype=np.uint8), background=np.zeros(48, np.uint8),
                previous=np.zeros((3, 48), np.uint8), rows=[0, 2], fresh=np.array([False, False]), w1=w1, w2=w2,
                uniforms=np.array([0.1, 0.9]), episodes=episodes, bits=bits)


@BACKENDS
@pytest.mark.parametrize("change, error, words", [
    (dict(bits=0), ValueError, "bits"), (dict(bits=9), ValueError, "bits"), (dict(bits=True), TypeError, "bits"),
    (dict(bits=4.0), TypeError, "bits"),
    (dict(frames=np.zeros((2, 48), np.uint8)), ValueError, "frames"),
    (dict(frames=np.zeros((2, 6, 8), np.int16)), TypeError, "frames"),
    (dict(frames=np.zeros((2, 130, 130), np.uint8)), ValueError, "too large"),
    (dict(background=np.zeros(47, np.uint8)), ValueError, "background"),
    (dict(background=np.full(48, 16, np.uint8)), ValueError, "levels below"),
    (dict(background=np.zeros(48, np.int64)), TypeError, "background"),
    (dict(previous=np.zeros((3, 47), np.uint8)), ValueError, "previous"),
    (dict(rows=[0, 0]), ValueError, "repeat"), (dict(rows=[0, 3]), ValueError, "below 3"),
    (dict(fresh=np.array([0, 1])), TypeError, "fresh"),
    (dict(w1=np.zeros((95, 4), np.float32)), ValueError, "rows"),
    (dict(w2=np.zeros(4, np.float32)), ValueError, "w2"),
    (dict(w2=np.zeros((4, 19), np.float32)), ValueError, "w2"),
    (dict(uniforms=np.array([0.1])), ValueError, "uniforms"),
])
def test_atari_step_bad_inputs(module, change, error, words):
    arguments = good_step() | change
    with pytest.raises(error, match=words):
        module.atari_step(**arguments)


@BACKENDS
def test_atari_step_without_room_in_the_store_is_an_error(module):
    arguments = good_step()
    arguments["episodes"].lengths[:] = arguments["episodes"].logits.shape[1]
    with pytest.raises(ValueError, match="make_room"):
        module.atari_step(**arguments)


@BACKENDS
def test_sparse_net_bad_sizes(module):
    starts, indices, signs = np.array([0, 1]), np.array([0], np.int16), np.array([1], np.int8)
    with pytest.raises(ValueError, match="32768"):
        module.sparse_mlp_forward(starts, indices, signs, np.zeros((32769, 2)), np.zeros(2))
    with pytest.raises(ValueError, match="w2"):
        module.sparse_mlp_forward(starts, indices, signs, np.zeros((4, 2)), np.zeros((2, 19)))
    with pytest.raises(ValueError, match="w2"):
        module.sparse_mlp_forward(starts, indices, signs, np.zeros((4, 2)), np.zeros((3, 2)))


def test_previous_that_overlaps_the_frames_reads_them_first():
    """previous written while the frames it shares memory with are read: the frames are copied first,
    so the kernel gives the twin's result."""
    results = []
    for module in (K, R):
        block = np.random.default_rng(5).integers(0, 256, (3, 6, 8), dtype=np.uint8)
        frames, previous = block[:2], block.reshape(3, 48)[1:]   # frame 1 is previous row 0
        results.append((module.atari_sparse_levels(frames, np.zeros(48, np.uint8), previous, [0, 1], bits=8),
                        previous.copy()))
    (got, got_previous), (want, want_previous) = results
    assert all(np.array_equal(a, b) for a, b in zip(got, want)) and np.array_equal(got_previous, want_previous)
