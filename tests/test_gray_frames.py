"""Grayscale Pong frames (ale-py's grayscale=True, what the trainer's emulators return): the frame
kernels (pong_preprocess, pong_difference, pong_sparse_difference, pong_step) take them as they
take RGB ones, and give exactly what they give for the same screens in RGB. Pong's background is
87 and 107 in gray (144 and 109 in red), black 0 in both, and no other colour of Pong's has
either gray value: checked here on real emulator screens, and each kernel against its twin on
synthetic gray frames.
"""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import pgcore
import pgcore.kernels as K
import pgcore.reference as R
from pgcore import pong, runs

from helpers import arrange, load_run_checkpoint, progress_columns
from test_sparse import frames_like_pong

D = 6400
BACKENDS = pytest.mark.parametrize("module", [K, R], ids=["kernels", "reference"])
seeds = st.integers(0, 2**32 - 1)
# Pong's colours in gray: black, the two background shades, the paddles, ball, walls and scores
# (and the colours of a game's first frames)
PONG_GRAYS = {0, 74, 87, 107, 121, 147, 148, 179, 236}
# what the synthetic frames are drawn from: mostly black and background, some objects, near misses
GRAY_PALETTE = np.array([0, 87, 107, 87, 107, 147, 236, 1, 255, 86, 88, 106, 108, 144, 109], np.uint8)


@pytest.fixture
def keep_threads():
    """pong.train sets the process-wide kernel thread count: put it back afterwards."""
    old = pgcore.get_num_threads()
    yield
    pgcore.set_num_threads(old)


def vector_env(grayscale, n_envs=2):
    """make_envs' emulators, but synchronous (both modes then see the same actions) and with
    episodes cut at 800 frames (so a few hundred steps include new episodes' first frames)."""
    from ale_py.vector_env import AtariVectorEnv
    return AtariVectorEnv("pong", num_envs=n_envs, batch_size=n_envs, num_threads=1, img_height=210, img_width=160,
                          grayscale=grayscale, stack_num=1, maxpool=False, noop_max=0, frameskip=4,
                          repeat_action_probability=0.25, reward_clipping=False, use_fire_reset=False,
                          episodic_life=False, autoreset_mode="SameStep", max_num_frames_per_episode=800)


@pytest.fixture(scope="module")
def screens():
    """The same screens of real Pong play (seed 11, random actions, 2 envs, 300 steps), from RGB and
    from grayscale emulators: (rgb (T, 2, 210, 160, 3), gray (T, 2, 210, 160), fresh (T, 2) bool:
    a game's first frame)."""
    pytest.importorskip("ale_py")
    envs = [vector_env(False), vector_env(True)]
    try:
        (rgb, info), (gray, info_gray) = (e.reset(seed=11) for e in envs)
        frames, fresh, points = [(rgb[:, 0].copy(), gray[:, 0].copy())], [np.ones(2, bool)], 0
        actions = np.random.default_rng(11).integers(0, 6, size=(300, 2)).astype(np.int32)
        for a in actions:
            assert np.array_equal(info["env_id"], info_gray["env_id"])
            assert np.array_equal(info["frame_number"], info_gray["frame_number"])
            for e in envs:
                e.send(a)
            (rgb, reward, terminated, truncated, info), (gray, *_, info_gray) = (e.recv() for e in envs)
            frames.append((rgb[:, 0].copy(), gray[:, 0].copy()))  # (ale-py may reuse its buffers)
            fresh.append(terminated | truncated)
            points += int((reward != 0).sum())
    finally:
        for e in envs:
            e.close()
    rgb, gray = (np.stack(f) for f in zip(*frames))
    fresh = np.stack(fresh)
    assert rgb.shape == (301, 2, 210, 160, 3) and gray.shape == (301, 2, 210, 160)
    assert points >= 4 and fresh[1:].sum() >= 2, "the play includes points and new games"
    return rgb, gray, fresh


# ---- real screens: RGB and gray give the same ----

def test_pong_grays_on_real_screens(screens):
    """The kept pixels of gray screens take only Pong's gray values, and a kept pixel is
    background (or black) in gray exactly where it is in RGB."""
    rgb, gray, _ = screens
    kept_gray, kept_red = gray[..., 35:195:2, ::2], rgb[..., 35:195:2, ::2, 0]
    assert set(np.unique(kept_gray).tolist()) <= PONG_GRAYS and 87 in kept_gray
    assert np.array_equal(np.isin(kept_gray, [0, 87, 107]), np.isin(kept_red, [0, 144, 109]))


@BACKENDS
def test_real_screens_preprocess_the_same_in_rgb_and_gray(threads, module, screens):
    rgb, gray, _ = screens
    rgb, gray = rgb.reshape(-1, 210, 160, 3), gray.reshape(-1, 210, 160)
    got = module.pong_preprocess(gray)
    assert got.dtype == np.float32 and got.shape == (len(gray), D)
    assert np.array_equal(got, module.pong_preprocess(rgb))
    assert 0 < got.sum(axis=1).min() and got.sum(axis=1).max() < 400, "a handful of object pixels a frame"
    for i in (0, 7, len(gray) - 1):  # single frames
        assert np.array_equal(module.pong_preprocess(gray[i]), got[i])
    assert np.array_equal(module.pong_preprocess(gray[::3]), got[::3])  # a strided batch


@BACKENDS
@pytest.mark.parametrize("inputs, n_logits", [(D, 1), (2 * D, 3)], ids=["difference-1", "frame-3"])
def test_real_play_gives_the_same_steps_in_rgb_and_gray(threads, module, screens, inputs, n_logits):
    """The trainer's loop over the real play, once on its RGB screens and once on its gray ones:
    the same difference frames, sparse rows, pong_step episodes, actions and previous frames."""
    rgb_frames, gray_frames, fresh = screens
    w1 = (np.random.default_rng(1).standard_normal((inputs, 16)) * 0.1).astype(np.float32)
    w2 = np.random.default_rng(2).standard_normal((16,) if n_logits == 1 else (16, n_logits)).astype(np.float32)
    uniforms = np.random.default_rng(3).random(fresh.shape)
    state = {mode: dict(dense=np.zeros((2, D), np.uint8), sparse=np.zeros((2, D), np.uint8),
                        step=np.zeros((2, D), np.uint8),
                        episodes=pong.SparseEpisodes(2, np.float32, steps=64, capacity=inputs, inputs=inputs,
                                                     logits=n_logits))
             for mode in ("rgb", "gray")}
    rng = np.random.default_rng(4)
    for t in range(len(fresh)):
        rows = rng.permutation(2)[:int(rng.integers(1, 3))]  # the envs that came back, in any order
        out = {}
        for mode, frames in (("rgb", rgb_frames[t, rows]), ("gray", gray_frames[t, rows])):
            s = state[mode]
            s["episodes"].make_room(rows)
            out[mode] = (module.pong_difference(frames, s["dense"], rows, fresh[t, rows]),
                         *module.pong_sparse_difference(frames, s["sparse"], rows, fresh[t, rows],
                                                        with_frame=inputs == 2 * D),
                         module.pong_step(frames, s["step"], rows, fresh[t, rows], w1, w2, uniforms[t, rows],
                                          s["episodes"]))
        for got, want in zip(out["gray"], out["rgb"]):
            assert got.dtype == want.dtype and np.array_equal(got, want), f"step {t}"
    gray, rgb = state["gray"], state["rgb"]
    for name in ("dense", "sparse", "step"):
        assert np.array_equal(gray[name], rgb[name]), name
    for name in ("lengths", "starts", "indices", "signs", "logits", "actions"):
        assert np.array_equal(getattr(gray["episodes"], name), getattr(rgb["episodes"], name)), name
    assert gray["episodes"].lengths.sum() > 300


# ---- synthetic gray frames: each kernel against its twin ----

def gray_frames(rng, shape):
    """Gray frames of background with objects, black and near misses: mostly GRAY_PALETTE, some
    of any value."""
    frames = rng.integers(0, 256, size=shape, dtype=np.uint8)
    mask = rng.random(shape) < 0.9
    frames[mask] = rng.choice(GRAY_PALETTE, size=int(mask.sum()))
    return frames


@given(batch=st.sampled_from([None, 0, 1, 2, 5]), layout=st.sampled_from(["C", "strided", "reversed"]), seed=seeds)
def test_pong_preprocess_gray_matches_its_twin(threads, batch, layout, seed):
    frames = arrange(gray_frames(np.random.default_rng(seed), (210, 160) if batch is None else (batch, 210, 160)),
                     layout)
    got, want = K.pong_preprocess(frames), R.pong_preprocess(frames)
    assert got.dtype == want.dtype == np.float32 and got.shape == frames.shape[:-2] + (D,)
    assert np.array_equal(got, want)


@BACKENDS
def test_pong_preprocess_gray_pixel_mapping(module):
    """Independent of the twin: which input pixel lands where, and which gray values count."""
    frame = np.full((210, 160), 87, np.uint8)
    frame[35 + 2 * 7, 2 * 11] = 236  # -> out[7 * 80 + 11] = 1
    frame[35 + 2 * 79, 2 * 79] = 1  # bottom-right kept pixel, any value but 0, 87 and 107 counts
    frame[35 + 2 * 3 + 1, 2 * 5] = 236  # odd row: dropped
    frame[35 + 2 * 3, 2 * 5 + 1] = 236  # odd column: dropped
    frame[34, 0] = 236  # above the crop
    frame[195, 0] = 236  # below the crop
    frame[35 + 2 * 20, 2 * 20] = 107  # the other background shade
    frame[35 + 2 * 21, 2 * 21] = 0  # black
    frame[35 + 2 * 22, 2 * 22] = 144  # a red background value is an object in gray
    out = module.pong_preprocess(frame)
    expected = np.zeros(D, np.float32)
    expected[[7 * 80 + 11, 22 * 80 + 22, 79 * 80 + 79]] = 1
    assert np.array_equal(out, expected)


@given(seed=seeds, batch=st.integers(0, 6), envs_extra=st.integers(0, 3), with_frame=st.booleans())
def test_gray_differences_match_their_twins(threads, seed, batch, envs_extra, with_frame):
    rng = np.random.default_rng(seed)
    n_envs = batch + envs_extra
    previous = (rng.random((n_envs, D)) < 0.01).astype(np.uint8)
    rows, fresh = rng.permutation(n_envs)[:batch], rng.random(batch) < 0.3
    frames = frames_like_pong(rng, batch, gray=True)
    copies = [previous.copy() for _ in range(4)]
    got, want = K.pong_difference(frames, copies[0], rows, fresh), R.pong_difference(frames, copies[1], rows, fresh)
    assert got.dtype == want.dtype == np.int8 and np.array_equal(got, want)
    got = K.pong_sparse_difference(frames, copies[2], rows, fresh, with_frame=with_frame)
    want = R.pong_sparse_difference(frames, copies[3], rows, fresh, with_frame=with_frame)
    for a, b in zip(got, want):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    for other in copies[1:]:
        assert np.array_equal(other, copies[0])


# ---- bad frames ----

BAD_FRAMES = [
    (np.zeros((210, 161), np.uint8), ValueError),
    (np.zeros((209, 160), np.uint8), ValueError),
    (np.zeros((160, 210), np.uint8), ValueError),
    (np.zeros((2, 1, 210, 160), np.uint8), ValueError),  # ale-py's observations: their frames are [:, 0]
    (np.zeros((2, 210, 160, 1), np.uint8), ValueError),
    (np.zeros((210,), np.uint8), ValueError),
    (np.zeros((2, 210, 160), np.float32), TypeError),
    (np.zeros((2, 210, 160), np.int8), TypeError),
]


@pytest.mark.parametrize("frames, error", BAD_FRAMES,
                         ids=[f"{f.dtype}{list(f.shape)}-{e.__name__}" for f, e in BAD_FRAMES])
def test_bad_frames_raise_the_same_error_in_both_backends(frames, error):
    w1, w2 = np.zeros((D, 4), np.float32), np.zeros(4, np.float32)
    calls = {
        "pong_preprocess": lambda m, f: m.pong_preprocess(f),
        "pong_difference": lambda m, f: m.pong_difference(f, np.zeros((2, D), np.uint8), [0, 1]),
        "pong_sparse_difference": lambda m, f: m.pong_sparse_difference(f, np.zeros((2, D), np.uint8), [0, 1]),
        "pong_step": lambda m, f: m.pong_step(f, np.zeros((2, D), np.uint8), [0, 1], np.zeros(2, bool), w1, w2,
                                              np.full(2, 0.5), pong.SparseEpisodes(2, np.float32)),
    }
    for name, call in calls.items():
        messages = []
        for module in (K, R):
            with pytest.raises(error, match=r"^frames\b") as caught:
                call(module, frames)
            messages.append(str(caught.value))
        assert messages[0] == messages[1], name


@BACKENDS
def test_one_gray_frame_is_not_a_batch(module):
    """pong_preprocess takes one frame (210, 160); the difference kernels need a batch (B, 210, 160)."""
    frame = np.full((210, 160), 87, np.uint8)
    assert module.pong_preprocess(frame).shape == (D,)
    with pytest.raises(ValueError, match=r"^frames must be a batch"):
        module.pong_difference(frame, np.zeros((1, D), np.uint8))
    with pytest.raises(ValueError, match=r"^frames must be a batch"):
        module.pong_sparse_difference(frame, np.zeros((1, D), np.uint8))


# ---- the trainer ----

def test_make_envs_returns_gray_frames():
    pytest.importorskip("ale_py")
    envs = pong.make_envs(pong.make_config("fast", envs=2, threads=1, sync=True))
    try:
        observations, _ = envs.reset(seed=0)
        assert observations.shape == (2, 1, 210, 160) and observations.dtype == np.uint8
        assert K.pong_preprocess(observations[:, 0]).sum() > 0
    finally:
        envs.close()


def test_a_sync_run_on_gray_emulators_is_the_run_on_rgb_ones(tmp_path, keep_threads, monkeypatch):
    """The trainer's emulators give grayscale frames; with RGB ones the same seed gives the same
    rewards, episodes and weights, bit for bit."""
    real_make_envs = pong.make_envs
    results = {}
    for grayscale in (True, False):
        monkeypatch.setattr(pong, "make_envs", lambda config, g=grayscale: real_make_envs(config, grayscale=g))
        run_dir = str(tmp_path / f"gray-{grayscale}")
        runs.prepare_run_dir(run_dir, resume=False)
        config = pong.make_config("fast", seed=1, envs=2, threads=2, sync=True, hidden=8, batch_episodes=1,
                                  max_episodes=2, run_dir=run_dir, quiet=True)
        pong.train(config, pgcore.kernels)
        results[grayscale] = (progress_columns(run_dir, ["episode", "frames", "steps", "reward"]),
                              load_run_checkpoint(run_dir)[0])
    (gray_progress, gray_arrays), (rgb_progress, rgb_arrays) = results[True], results[False]
    for name in gray_progress:
        np.testing.assert_array_equal(gray_progress[name], rgb_progress[name], err_msg=name)
    assert gray_arrays.keys() == rgb_arrays.keys()
    for name in gray_arrays:
        np.testing.assert_array_equal(gray_arrays[name], rgb_arrays[name], err_msg=name)
