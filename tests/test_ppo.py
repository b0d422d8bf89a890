"""PPO-style epochs over each batch (`--epochs`, `--minibatches`, `--clip`): the kernels
clipped_sigmoid_policy_grad and clipped_softmax_policy_grad (against central finite differences of the clipped surrogate in
float64, its limit at ratio 1, the twin in float32/float64 on 1 and 2 threads with hypothesis
shapes, far-moved logits; bad inputs are in test_bad_inputs.py), the trainer's replayed episode gradient (finite
differences through the network), and what such a run does (its update count, resume, the
settings' checks)."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import pgcore
import pgcore.kernels as K
import pgcore.reference as R
from pgcore import pong

from helpers import (assert_bad_pong_flags_fail_in_one_line, assert_close, central_differences, load_run_checkpoint, read_progress_csv, rtol_of, run_cli,
                     train_run, write_run_checkpoint)
from test_pong import cut_returns, sparse_episode, synthetic_episode

BACKENDS = pytest.mark.parametrize("module", [K, R], ids=["kernels", "reference"])


def log_pi(logits, actions):
    """log pi(a | logits), float64: a Bernoulli (sigmoid) policy for 1-d logits (a = 1 up), a
    softmax over the columns of 2-d logits."""
    if logits.ndim == 1:
        return np.where(actions == 1, -np.logaddexp(0, -logits), -np.logaddexp(0, logits))
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return log_p[np.arange(len(actions)), actions]


def surrogate(logits, old_logits, actions, advantages, clip):
    """sum_i min(r_i A_i, clip(r_i, 1 - clip, 1 + clip) A_i), r = pi(a | logits) / pi(a | old_logits):
    PPO's clipped objective, float64, from scratch."""
    ratio = np.exp(log_pi(logits, actions) - log_pi(old_logits, actions))
    return float(np.sum(np.minimum(ratio * advantages, np.clip(ratio, 1 - clip, 1 + clip) * advantages)))


# The two policies' kernels: (clipped gradient, policy gradient, action count; 0 for a sigmoid).
POLICIES = {"sigmoid": ("clipped_sigmoid_policy_grad", "sigmoid_policy_grad", 0),
            "softmax": ("clipped_softmax_policy_grad", "softmax_policy_grad", 3)}
KINDS = pytest.mark.parametrize("kind", list(POLICIES))


def draw_logits(rng, n, kind, scale=1.0):
    """(logits (n,) or (n, 3), actions) for the policy `kind`."""
    n_actions = POLICIES[kind][2]
    logits = rng.standard_normal((n, n_actions) if n_actions else n) * scale
    return logits, rng.integers(0, n_actions or 2, n)


def moved_logits(rng, n, clip, kind):
    """(logits, old_logits, actions) whose ratios are all at least 1e-3 away from the clip's
    edges (no kink within a finite difference's reach), both sides of the clip represented."""
    old, actions = draw_logits(rng, n, kind, scale=2.0)
    logits = old + draw_logits(rng, n, kind, scale=0.6)[0]
    rows = np.arange(n)
    for _ in range(100):
        ratio = np.exp(log_pi(logits, actions) - log_pi(old, actions))
        near = (np.abs(ratio - (1 + clip)) < 1e-3) | (np.abs(ratio - (1 - clip)) < 1e-3)
        if not near.any():
            break
        if logits.ndim == 1:
            logits[near] += 0.01
        else:
            logits[rows[near], actions[near]] += 0.01
    return logits, old, actions


@BACKENDS
@KINDS
@pytest.mark.parametrize("clip", [0.1, 0.2, 1.5])
def test_clipped_gradient_matches_finite_differences(module, kind, clip):
    rng = np.random.default_rng(5)
    logits, old, actions = moved_logits(rng, 64, clip, kind)
    advantages = rng.standard_normal(64)
    grad = getattr(module, POLICIES[kind][0])(logits, old, actions, advantages, clip)
    numeric = central_differences(lambda: surrogate(logits, old, actions, advantages, clip), logits, eps=1e-6)
    assert_close(grad, numeric, rtol=1e-7, atol=1e-9, what="d surrogate / d logits")
    held = np.all(grad == 0, axis=tuple(range(1, grad.ndim)))
    if clip < 1:
        assert 0 < held.sum() < len(held), "the test needs clipped and unclipped steps"


@BACKENDS
@KINDS
def test_at_ratio_1_it_is_the_policy_gradient(module, kind, dtype):
    rng = np.random.default_rng(6)
    logits, actions = draw_logits(rng, 300, kind, scale=4.0)
    logits, advantages = logits.astype(dtype), rng.standard_normal(300).astype(dtype)
    clipped_grad, policy_grad, _ = POLICIES[kind]
    got = getattr(module, clipped_grad)(logits, logits.copy(), actions, advantages, 0.2)
    assert got.dtype == dtype
    assert_close(got, getattr(module, policy_grad)(logits, actions, advantages), rtol=rtol_of(dtype),
                 atol=1e-6 if dtype == np.float32 else 1e-14, what="ratio 1")


@BACKENDS
def test_far_moved_logits_give_finite_gradients(module, dtype):
    """The ratio of a step whose probability moved from ~e^-60 to ~1 is e^60; the gradient is
    finite (A r (1 - p) computed as one exp), or held at 0 by the clip."""
    logits = np.array([60.0, -60.0, 60.0, -60.0, 0.0, 30.0], dtype)
    old = np.array([-60.0, 60.0, -60.0, 60.0, 80.0, -30.0], dtype)
    actions = np.array([1, 0, 1, 0, 0, 1])
    advantages = np.array([1.0, 1.0, -1.0, -1.0, -1.0, -2.0], dtype)
    got = module.clipped_sigmoid_policy_grad(logits, old, actions, advantages, 0.2)
    assert np.all(np.isfinite(got))
    assert got[0] == got[1] == 0, "a positive advantage's ratio above 1 + clip is held"
    assert got[2] < 0 and got[3] > 0, "a negative advantage's ratio above 1 is not held: the step moves back"
    # the same four steps as softmaxes over (down, up, stay), stay far below both
    three = np.stack((-logits / 2, logits / 2, np.full_like(logits, -90)), axis=1)
    three_old = np.stack((-old / 2, old / 2, np.full_like(old, -90)), axis=1)
    got = module.clipped_softmax_policy_grad(three, three_old, actions, advantages, 0.2)
    assert np.all(np.isfinite(got))
    assert not np.any(got[:2]), "a positive advantage's ratio above 1 + clip is held"
    assert got[2, 1] < 0 and got[3, 0] < 0, "a negative advantage's ratio above 1 is not held: the step moves back"


@given(seed=st.integers(0, 2**32 - 1), size=st.sampled_from([0, 1, 7, 300, 40_000]),
       clip=st.sampled_from([0.05, 0.2, 1.0, 3.0]), spread=st.sampled_from([0.0, 0.3, 5.0]),
       kind=st.sampled_from(list(POLICIES)))
def test_kernel_matches_twin(dtype, threads, seed, size, clip, spread, kind):
    rng = np.random.default_rng(seed)
    old, actions = draw_logits(rng, size, kind, scale=3.0)
    logits = (old + draw_logits(rng, size, kind, scale=spread)[0]).astype(dtype)
    old = old.astype(dtype)
    advantages = rng.standard_normal(size).astype(dtype)
    name = POLICIES[kind][0]
    got = getattr(K, name)(logits, old, actions, advantages, clip)
    want = getattr(R, name)(logits, old, actions, advantages, clip)
    assert got.dtype == dtype and got.shape == logits.shape
    assert_close(got, want, rtol=rtol_of(dtype), atol=1e-30, what=name)
    assert np.array_equal(got == 0, want == 0), "the same steps are clipped"


# ---------------------------------------------------------------------------
# The trainer's replayed episode gradient
# ---------------------------------------------------------------------------

def smooth_sparse_layer(rng, steps, hidden):
    """(x (steps, INPUT_SIZE) int8 frames using 12 pixels, those pixels, w1 (float64, zero off
    them), x @ w1) with every pre-activation away from the ReLU kink, so that finite differences
    through the network are smooth."""
    pixels = np.sort(rng.choice(pong.INPUT_SIZE, 12, replace=False))
    x = np.zeros((steps, pong.INPUT_SIZE), np.int8)
    x[:, pixels] = rng.integers(-1, 2, size=(steps, len(pixels)))
    w1 = np.zeros((pong.INPUT_SIZE, hidden))
    while True:
        w1[pixels] = rng.standard_normal((len(pixels), hidden)) * 0.5
        pre = x @ w1
        if np.abs(pre).min() > 1e-3 and 0 < (pre > 0).mean() < 1:
            return x, pixels, w1, pre


def assert_descends(objective, state, pixels, rows, w2):
    """state's grad_w1 (on `pixels`, whose rows of w1 `objective` reads from `rows`) and grad_w2
    are minus objective's gradient, by central differences."""
    for name, got, numeric in [("grad_w1", state["grad_w1"][pixels], -central_differences(objective, rows, eps=1e-6)),
                               ("grad_w2", state["grad_w2"], -central_differences(objective, w2, eps=1e-6))]:
        scale = np.abs(numeric).max()
        assert scale > 1e-3, f"{name}: the objective is flat, the test has no teeth"
        assert_close(got, numeric, rtol=1e-6, atol=1e-6 * scale, what=f"{name} vs finite differences")


@pytest.mark.parametrize("kernels", [K, R], ids=["cython", "numpy"])
def test_replayed_episode_gradient_matches_finite_differences(kernels):
    """With targets from episode_targets (the episode as it arrived) and weights that moved since,
    the policy's gradient is minus that of the clipped surrogate at the current weights, the
    ratios against the logits the episode was played with."""
    rng = np.random.default_rng(12)
    steps, hidden, gamma, clip = 40, 4, 0.9, 0.2
    w2 = rng.standard_normal(hidden)
    x, pixels, w1, pre = smooth_sparse_layer(rng, steps, hidden)
    played = np.maximum(pre, 0) @ w2 + rng.standard_normal(steps) * 0.4   # the weights moved since
    actions = (rng.random(steps) < 0.5).astype(np.uint8)
    rewards = np.zeros(steps)
    rewards[[7, 15, 16, 30, steps - 1]] = [1.0, -1.0, 1.0, -1.0, 1.0]
    episode = (*sparse_episode(x), played, actions, rewards)
    config = pong.make_config("fast", gamma=gamma, epochs=2, clip=clip)
    state = {"w1": w1, "w2": w2, "grad_w1": np.zeros_like(w1), "grad_w2": np.zeros_like(w2)}
    targets = pong.episode_targets(kernels, episode, state, config)
    returns = cut_returns(rewards, gamma)
    np.testing.assert_allclose(targets[0], (returns - returns.mean()) / (returns.std() + 1e-8), rtol=1e-10)
    pong.add_episode_gradient(kernels, episode, state, config, targets)

    xf = x.astype(np.float64)
    rows = w1[pixels].copy()

    def objective():
        w1[pixels] = rows
        return surrogate(np.maximum(xf @ w1, 0) @ w2, played, actions, targets[0], clip)

    ratios_clipped = kernels.clipped_sigmoid_policy_grad(np.maximum(pre, 0) @ w2, played, actions, targets[0], clip) == 0
    assert ratios_clipped.any() and not ratios_clipped.all(), "the test needs clipped and unclipped steps"
    assert_descends(objective, state, pixels, rows, w2)


def entropy_sum(logits):
    """sum_i H(softmax(logits[i])), float64, from scratch."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-(np.exp(log_p) * log_p).sum())


@pytest.mark.parametrize("kernels", [K, R], ids=["cython", "numpy"])
@pytest.mark.parametrize("replayed", [False, True], ids=["one-update", "replayed"])
def test_entropy_bonus_gradient_matches_finite_differences(kernels, replayed):
    """With --entropy X, a softmax policy's gradient is minus that of its objective plus X times
    the summed entropy of its action probabilities: the clipped surrogate's at the current weights
    (replayed), or sum_t A_t log pi(a_t | s_t) at the logits the episode was played with."""
    rng = np.random.default_rng(14)
    steps, hidden, clip, bonus = 40, 4, 0.2, 0.3
    w2 = rng.standard_normal((hidden, 3))
    x, pixels, w1, pre = smooth_sparse_layer(rng, steps, hidden)
    current = np.maximum(pre, 0) @ w2
    played = current + rng.standard_normal((steps, 3)) * 0.4 if replayed else current
    actions = rng.integers(0, 3, steps)
    rewards = np.zeros(steps)
    rewards[[7, 15, 16, 30, steps - 1]] = [1.0, -1.0, 1.0, -1.0, 1.0]
    episode = (*sparse_episode(x), played, actions, rewards)
    config = pong.make_config("fast", actions=3, gamma=0.9, epochs=2 if replayed else 1, clip=clip, entropy=bonus)
    state = {"w1": w1, "w2": w2, "grad_w1": np.zeros_like(w1), "grad_w2": np.zeros_like(w2)}
    targets = pong.episode_targets(kernels, episode, state, config)
    advantages = targets[0]
    pong.add_episode_gradient(kernels, episode, state, config, targets if replayed else None)
    xf = x.astype(np.float64)
    rows = w1[pixels].copy()

    def objective():
        w1[pixels] = rows
        logits = np.maximum(xf @ w1, 0) @ w2
        gain = surrogate(logits, played, actions, advantages, clip) if replayed \
            else float(np.sum(advantages * log_pi(logits, actions)))
        return gain + bonus * entropy_sum(logits)

    assert_descends(objective, state, pixels, rows, w2)


def test_entropy_bonus_needs_a_softmax_policy(tmp_path):
    """The two-action policy's sigmoid takes no entropy bonus: a one-line error naming it."""
    assert_bad_pong_flags_fail_in_one_line(["--actions", "2", "--entropy", "0.01"], "entropy", tmp_path / "run")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_replayed_gradient_at_the_played_weights_is_the_one_update_gradient(dtype):
    """Replayed with the weights it was played with (ratio 1), an episode's gradient is the
    one-update path's, up to rounding (the logits are recomputed)."""
    rng = np.random.default_rng(13)
    x, w1, w2, _, logits, actions, rewards = synthetic_episode(rng, dtype=dtype)
    episode = (*sparse_episode(x), logits, actions, rewards)
    grads = []
    for replay in (False, True):
        config = pong.make_config("fast", gamma=0.99, epochs=2 if replay else 1)
        state = {"w1": w1, "w2": w2, "grad_w1": np.zeros_like(w1), "grad_w2": np.zeros_like(w2)}
        pong.add_episode_gradient(K, episode, state, config,
                                  pong.episode_targets(K, episode, state, config) if replay else None)
        grads.append(state)
    for name in ("grad_w1", "grad_w2"):
        scale = np.abs(grads[0][name]).max()
        assert scale > 0
        assert_close(grads[1][name], grads[0][name], rtol=rtol_of(dtype) * 10, atol=scale * rtol_of(dtype) * 10,
                     what=name)


# ---------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ppo_run(tmp_path_factory):
    """A finished 4-episode run: batches of 2 episodes, 3 passes of 2 updates each."""
    return train_run(tmp_path_factory.mktemp("ppo_run") / "run", "--batch-episodes", "2", "--epochs", "3",
                     "--minibatches", "2", "--clip", "0.1", episodes=4)


def test_a_run_makes_epochs_times_minibatches_updates_a_batch(ppo_run):
    header, rows = read_progress_csv(ppo_run)
    updates = [int(row[header.index("updates")]) for row in rows]
    assert updates == [0, 6, 6, 12]
    arrays, meta = load_run_checkpoint(ppo_run)
    config = meta["config"]
    assert (config["epochs"], config["minibatches"], config["clip"]) == (3, 2, 0.1)
    assert meta["counters"]["updates"] == 12 and meta["counters"]["episodes_in_batch"] == 0
    fresh = pong.initial_params(pong.config_from_saved(config))
    assert np.abs(arrays["w2"] - fresh["w2"]).max() > 0


def test_a_stopped_run_learns_from_its_last_batch_and_resumes(ppo_run, tmp_path):
    import shutil
    run_dir = tmp_path / "run"
    shutil.copytree(ppo_run, run_dir)
    result = run_cli("pgcore-train", "pong", "--resume", run_dir, "--max-episodes", 7, "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    header, rows = read_progress_csv(run_dir)
    assert [int(row[0]) for row in rows] == list(range(1, 8))
    assert [int(row[header.index("updates")]) for row in rows][4:] == [12, 18, 18]
    _, meta = load_run_checkpoint(run_dir)
    # the run stopped in a batch (episode 7 alone): it learned from it before its last checkpoint,
    # 3 passes of one update (a minibatch takes at least an episode)
    assert meta["config"]["epochs"] == 3 and meta["counters"]["episodes_in_batch"] == 0
    assert meta["counters"]["updates"] == 21
    result = run_cli("pgcore-train", "pong", "--resume", run_dir, "--max-episodes", 9, "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    header, rows = read_progress_csv(run_dir)
    assert [int(row[header.index("updates")]) for row in rows][7:] == [21, 27]
    # a checkpoint taken within a batch (as a crash leaves it) does not hold the batch's episodes:
    # the resumed run starts a new batch
    arrays, meta = load_run_checkpoint(run_dir)
    meta["counters"]["episodes_in_batch"] = 1
    write_run_checkpoint(f"{run_dir}/checkpoint.npz", arrays, meta)
    result = run_cli("pgcore-train", "pong", "--resume", run_dir, "--max-episodes", 11, "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    header, rows = read_progress_csv(run_dir)
    assert [int(row[header.index("updates")]) for row in rows][9:] == [27, 33]


@pytest.mark.parametrize("flags, named", [(["--epochs", "0"], "--epochs"),
                                          (["--batch-steps", "-1"], "--batch-steps"),
                                          (["--minibatches", "0"], "--minibatches"),
                                          (["--clip", "0"], "--clip"),
                                          (["--clip", "nan"], "--clip")])
def test_bad_ppo_settings_are_one_line_errors(flags, named, tmp_path):
    assert_bad_pong_flags_fail_in_one_line(flags, named, tmp_path / "run")


def test_bad_ppo_settings_in_python_name_the_setting():
    with pytest.raises(ValueError, match="minibatches"):
        pgcore.Agent("pong", minibatches=0)
    with pytest.raises(ValueError, match="clip"):
        pgcore.Agent("pong", epochs=4, clip=-1.0)
    with pytest.raises(ValueError, match="does not apply"):
        pgcore.Agent("cartpole", epochs=4)


@pytest.mark.parametrize("passes, minibatches", [(1, 1), (2, 2)], ids=["one-update", "replayed"])
def test_batches_counted_in_steps_end_at_the_episode_that_fills_them(passes, minibatches, tmp_path):
    """--batch-steps: a batch ends at the first episode that brings it to that many agent steps
    (one emulator, so each progress row's step count is the episodes' lengths summed)."""
    batch_steps = 1500
    run_dir = train_run(tmp_path / "run", "--envs", "1", "--batch-steps", batch_steps, "--epochs", passes,
                        "--minibatches", minibatches, episodes=5)
    header, rows = read_progress_csv(run_dir)
    lengths = np.diff([0] + [int(row[header.index("steps")]) for row in rows])
    expected, updates, in_batch, episodes_in_batch = [], 0, 0, 0
    for length in lengths:
        in_batch += length
        episodes_in_batch += 1
        if in_batch >= batch_steps:
            updates += passes * min(minibatches, episodes_in_batch)
            in_batch = episodes_in_batch = 0
        expected.append(updates)
    assert [int(row[header.index("updates")]) for row in rows] == expected
    assert 0 < expected[-1] and len(set(expected)) < len(expected), f"batches of one episode each: {lengths}"
    _, meta = load_run_checkpoint(run_dir)
    assert meta["config"]["batch_steps"] == batch_steps
    if passes == 1:  # the batch gradient in progress is checkpointed with its counts
        assert (meta["counters"]["steps_in_batch"], meta["counters"]["episodes_in_batch"]) == (in_batch,
                                                                                                 episodes_in_batch)
    else:  # a replayed batch in progress is learned from when the run stops
        assert meta["counters"]["steps_in_batch"] == 0
        assert meta["counters"]["updates"] == updates + (passes * min(minibatches, episodes_in_batch) if in_batch else 0)
