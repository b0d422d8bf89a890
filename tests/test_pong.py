"""The Pong trainer: its per-episode gradient (both backends, against finite differences),
its episode buffers, and what a run leaves behind: config.json, progress.csv,
checkpoint.npz, resuming, determinism, and a Ctrl-C that lands inside an update.

Runs are short (2 emulators, hidden 8, 1 to 3 episodes of a few seconds each).
"""
import json
import os
import signal

import numpy as np
import pytest

import pgcore
import pgcore.kernels
import pgcore.reference
from pgcore import pong, runs

from helpers import (PROGRESS_HEADER, assert_close, central_differences, load_run_checkpoint,
                    progress_columns, read_progress_csv, run_cli, train_run)

BACKEND_PAIR = [pgcore.kernels, pgcore.reference]


@pytest.fixture
def keep_threads():
    """pong.train sets the process-wide kernel thread count: put it back afterwards."""
    old = pgcore.get_num_threads()
    yield
    pgcore.set_num_threads(old)


# ---------------------------------------------------------------------------
# add_episode_gradient: the sparse episode against the dense net, both backends, FD
# ---------------------------------------------------------------------------

def sparse_episode(x):
    """(starts, indices, signs) of an episode's (T, 6400) int8 difference frames."""
    return pgcore.reference._sparse_rows(x)


def synthetic_episode(rng, steps=300, hidden=16, dtype=np.float32, density=0.004):
    """An episode shaped like the trainer's: ternary int8 difference frames (~26 nonzeros), h and
    logits from mlp_forward, sampled actions, rewards 0 with a +-1 point now and then."""
    x = rng.choice(np.array([-1, 0, 1], dtype=np.int8), size=(steps, pong.INPUT_SIZE),
                   p=[density / 2, 1 - density, density / 2])
    w1 = (rng.standard_normal((pong.INPUT_SIZE, hidden)) / np.sqrt(pong.INPUT_SIZE) * 40).astype(dtype)
    w2 = (rng.standard_normal(hidden) / np.sqrt(hidden)).astype(dtype)
    h, logits = pgcore.reference.mlp_forward(x, w1, w2)
    actions = (rng.random(steps) < 1 / (1 + np.exp(-logits.astype(np.float64)))).astype(np.uint8)
    rewards = np.zeros(steps, dtype=dtype)
    points = rng.choice(np.arange(10, steps), size=steps // 40, replace=False)
    rewards[points] = rng.choice([-1.0, 1.0], size=len(points))
    rewards[-1] = -1.0  # the episode ends on a point, as Pong's do
    return x, w1, w2, h, logits, actions, rewards


def dense_episode_gradient(kernels, x, h, logits, actions, rewards, w2, gamma):
    """The gradient as the dense net computes it (mlp_backward on the stored h): the reference."""
    returns = kernels.discounted_returns(rewards, gamma, dones=rewards != 0)
    grad_logits = kernels.sigmoid_policy_grad(logits, actions, -kernels.standardize(returns))
    return kernels.mlp_backward(x, h, grad_logits, w2)


def added_gradient(kernels, x, logits, actions, rewards, w1, w2, gamma, start=0.0):
    state = {"w1": w1, "w2": w2, "grad_w1": np.full_like(w1, start), "grad_w2": np.full_like(w2, start)}
    value_loss = pong.add_episode_gradient(kernels, (*sparse_episode(x), logits, actions, rewards), state,
                                           pong.make_config("fast", gamma=gamma))
    assert value_loss == 0.0, "no value net, no value loss"
    return state["grad_w1"], state["grad_w2"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_sparse_episode_gradient_matches_the_dense_net_on_both_backends(dtype):
    rng = np.random.default_rng(11)
    x, w1, w2, h, logits, actions, rewards = synthetic_episode(rng, dtype=dtype)
    assert np.any(x != 0) and np.any(h > 0) and np.any(h == 0), "a test episode with live and dead units"
    assert 5 < np.count_nonzero(x) / len(x) < 60, "Pong-like sparsity"
    gamma = 0.99
    want = dense_episode_gradient(pgcore.reference, x, h, logits, actions, rewards, w2, gamma)
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    # Error bounds of the products: rtol * (|x|.T @ |grad_h|) and rtol * (|h|.T @ |grad_logits|).
    returns = pgcore.reference.discounted_returns(rewards, gamma, dones=rewards != 0)
    advantages = pgcore.reference.standardize(returns).astype(np.float64)
    p_up = 1 / (1 + np.exp(-logits.astype(np.float64)))
    grad_logits = np.abs(advantages * (actions - p_up))
    grad_h = np.outer(grad_logits, np.abs(w2.astype(np.float64))) * (h > 0)
    bound_w1 = rtol * (np.abs(x).astype(np.float64).T @ grad_h) + rtol * np.abs(want[0]).max() * 1e-3
    bound_w2 = rtol * (np.abs(h.astype(np.float64)).T @ grad_logits)
    for kernels in BACKEND_PAIR:
        got = added_gradient(kernels, x, logits, actions, rewards, w1, w2, gamma)
        assert got[0].shape == (pong.INPUT_SIZE, w1.shape[1]) and got[1].shape == w2.shape
        assert_close(got[0], want[0], rtol=rtol, atol=bound_w1, what=f"grad_w1 ({kernels.__name__})")
        assert_close(got[1], want[1], rtol=rtol, atol=bound_w2, what=f"grad_w2 ({kernels.__name__})")
        # accumulated in place: onto a batch gradient that already holds something
        more = added_gradient(kernels, x, logits, actions, rewards, w1, w2, gamma, start=0.5)
        assert_close(more[0], (want[0] + dtype(0.5)).astype(dtype), rtol=rtol, atol=bound_w1 + 1e-6,
                     what="grad_w1 added to 0.5")
        assert_close(more[1], (want[1] + dtype(0.5)).astype(dtype), rtol=rtol, atol=bound_w2 + 1e-6,
                     what="grad_w2 added to 0.5")
    assert np.abs(want[0]).max() > 0 and np.abs(want[1]).max() > 0


def reinforce_objective(x, w1, w2, actions, advantages):
    """sum_t A_t log pi(a_t | s_t), pi(up) = sigmoid(relu(x @ w1) @ w2), in float64, from scratch."""
    logits = np.maximum(x @ w1, 0) @ w2
    log_p_up = -np.logaddexp(0.0, -logits)
    log_p_down = -np.logaddexp(0.0, logits)
    return float(np.sum(advantages * np.where(actions == 1, log_p_up, log_p_down)))


def cut_returns(rewards, gamma):
    """Discounted returns restarting after every nonzero reward (a Pong point), written out."""
    returns = np.zeros(len(rewards))
    running = 0.0
    for t in reversed(range(len(rewards))):
        if rewards[t] != 0:
            running = 0.0
        running = rewards[t] + gamma * running
        returns[t] = running
    return returns


@pytest.mark.parametrize("kernels", BACKEND_PAIR, ids=["cython", "numpy"])
def test_episode_gradient_matches_finite_differences(kernels):
    """add_episode_gradient adds the descent direction of the REINFORCE objective: minus its gradient.
    The frames use 12 pixels; the difference quotients are taken over those rows of w1 and w2."""
    rng = np.random.default_rng(5)
    steps, hidden, gamma = 40, 4, 0.9
    pixels = np.sort(rng.choice(pong.INPUT_SIZE, 12, replace=False))
    x = np.zeros((steps, pong.INPUT_SIZE), np.int8)
    x[:, pixels] = rng.integers(-1, 2, size=(steps, len(pixels)))
    w1 = np.zeros((pong.INPUT_SIZE, hidden))
    while True:  # keep every pre-activation away from the ReLU kink, so FD is smooth
        w1[pixels] = rng.standard_normal((len(pixels), hidden)) * 0.5
        if np.abs(x @ w1).min() > 1e-3 and 0 < (x @ w1 > 0).mean() < 1:
            break
    w2 = rng.standard_normal(hidden)
    _, logits = kernels.mlp_forward(x, w1, w2)
    actions = (rng.random(steps) < 0.5).astype(np.uint8)
    rewards = np.zeros(steps)
    rewards[[7, 15, 16, 30, steps - 1]] = [1.0, -1.0, 1.0, -1.0, 1.0]
    returns = cut_returns(rewards, gamma)
    advantages = (returns - returns.mean()) / (returns.std() + 1e-8)       # constants of the objective

    grad_w1, grad_w2 = added_gradient(kernels, x, logits, actions, rewards, w1, w2, gamma)
    assert grad_w1.dtype == np.float64 and grad_w1.shape == w1.shape and grad_w2.shape == w2.shape
    assert not np.any(np.delete(grad_w1, pixels, axis=0)), "rows no frame selects get no gradient"

    xf, used_rows = x.astype(np.float64), w1[pixels].copy()

    def objective():
        w1[pixels] = used_rows
        return reinforce_objective(xf, w1, w2, actions, advantages)
    numeric_w1 = central_differences(objective, used_rows, eps=1e-6)
    numeric_w2 = central_differences(objective, w2, eps=1e-6)
    for name, got, numeric in (("grad_w1", grad_w1[pixels], numeric_w1), ("grad_w2", grad_w2, numeric_w2)):
        scale = np.abs(numeric).max()
        assert scale > 1e-3, f"{name}: the objective is flat, the test has no teeth"
        assert_close(got, -numeric, rtol=1e-6, atol=1e-6 * scale, what=f"{name} vs -dJ/d{name[5:]}")


def test_episode_gradient_returns_are_cut_at_points():
    """A point ends a Pong game: rewards after it must not flow back into earlier steps."""
    rng = np.random.default_rng(2)
    x = np.zeros((6, pong.INPUT_SIZE), np.int8)
    x[:, :5] = rng.integers(-1, 2, size=(6, 5))
    w1 = rng.standard_normal((pong.INPUT_SIZE, 3))
    w2 = rng.standard_normal(3)
    h, logits = pgcore.reference.mlp_forward(x, w1, w2)
    actions = np.array([1, 0, 1, 1, 0, 1], dtype=np.uint8)
    # Two games: [0..2] ends +1, [3..5] ends -1. With the cut, steps 0..2 get positive returns.
    rewards = np.array([0, 0, 1, 0, 0, -1], dtype=np.float64)
    returns = pgcore.kernels.discounted_returns(rewards, 0.5, dones=rewards != 0)
    np.testing.assert_allclose(returns, [0.25, 0.5, 1, -0.25, -0.5, -1])
    for kernels in BACKEND_PAIR:
        got = added_gradient(kernels, x, logits, actions, rewards, w1, w2, 0.5)
        advantages = (returns - returns.mean()) / (returns.std() + 1e-8)
        p_up = 1 / (1 + np.exp(-logits))
        grad_logits = -advantages * (actions - p_up)
        np.testing.assert_allclose(got[1], h.T @ grad_logits, rtol=1e-10, atol=1e-12)


def test_sparse_episodes_grow_and_keep_data():
    """make_room doubles the steps, or the pixel entries, of every env when one needs more, and
    keeps what is stored; episode() returns an env's episode as add_episode_gradient reads it."""
    episodes = pong.SparseEpisodes(2, np.float32, steps=4, capacity=pong.INPUT_SIZE + 10)
    rng = np.random.default_rng(0)
    written = []
    for t in range(9):
        episodes.make_room(np.array([0]))
        count = 6400 if t == 3 else int(rng.integers(0, 20))  # step 3: every pixel changed
        start = episodes.starts[0, t]
        indices = np.sort(rng.choice(pong.INPUT_SIZE, count, replace=False)).astype(np.int16)
        episodes.indices[0, start:start + count] = indices
        episodes.signs[0, start:start + count] = 1
        episodes.starts[0, t + 1] = start + count
        episodes.logits[0, t], episodes.actions[0, t], episodes.rewards[0, t] = -t, t % 2, t % 3 == 0
        episodes.lengths[0] += 1
        written.append(indices)
    assert episodes.logits.shape[1] >= 9 and episodes.starts.shape[1] == episodes.logits.shape[1] + 1
    assert episodes.indices.shape[1] >= sum(map(len, written)) + pong.INPUT_SIZE
    starts, indices, signs, logits, actions, rewards = episodes.episode(0)
    assert len(starts) == 10 and np.array_equal(logits, -np.arange(9, dtype=np.float32))
    for t, want in enumerate(written):
        assert np.array_equal(indices[starts[t]:starts[t + 1]], want), f"step {t}"
    assert np.array_equal(actions, np.arange(9) % 2) and np.array_equal(rewards, np.arange(9) % 3 == 0)
    assert episodes.lengths[1] == 0 and len(episodes.episode(1)[0]) == 1


# ---------------------------------------------------------------------------
# A run's files
# ---------------------------------------------------------------------------

def check_progress(run_dir, episodes, envs, frameskip=4):
    header, rows = read_progress_csv(run_dir)
    assert header[:len(PROGRESS_HEADER)] == PROGRESS_HEADER, f"progress.csv header {header}"
    assert len(rows) == episodes, f"{len(rows)} rows for {episodes} episodes"
    assert all(len(row) == len(header) for row in rows)
    cols = progress_columns(run_dir)
    np.testing.assert_array_equal(cols["episode"], np.arange(1, episodes + 1))
    reward = cols["reward"]
    assert np.all((reward >= -21) & (reward <= 21)) and np.all(reward == np.round(reward)), reward
    running = []
    for r in reward:
        running.append(r if not running else 0.99 * running[-1] + 0.01 * r)
    np.testing.assert_allclose(cols["running_reward"], running, rtol=0, atol=1e-5,
                               err_msg="running_reward != 0.99 * previous + 0.01 * reward")
    assert cols["running_reward"][0] == reward[0]
    frames, steps = cols["frames"], cols["steps"]
    assert frames[0] > 0 and np.all(np.diff(frames) >= 0), f"frames not increasing: {frames}"
    assert np.all(np.diff(steps) >= 0) and steps[0] > 0
    if episodes > 1:
        assert frames[-1] > frames[0]
    # emulator frames = agent steps * frameskip, up to the actions still in flight, less up to
    # frameskip - 1 a finished episode: ALE stops emulating once the game is over, mid-skip
    finished = np.arange(1, len(frames) + 1)
    assert np.all(np.abs(frames - frameskip * steps) <= frameskip * envs + (frameskip - 1) * finished), (frames, steps)
    assert np.all(np.diff(cols["wall_s"]) >= 0) and np.all(cols["wall_s"] > 0)
    assert np.all(cols["steps_per_s"] > 0)
    return cols


def test_train_main_writes_config_progress_and_checkpoint(tmp_path, monkeypatch, keep_threads):
    from pgcore import cli
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")  # train_main sets it; keep the environment clean
    run_dir = str(tmp_path / "run")
    code = cli.train_main(["pong", "--envs", "2", "--hidden", "16", "--seed", "7", "--max-episodes", "3",
                           "--batch-episodes", "2", "--backend", "numpy", "--quiet", "--run-dir", run_dir,
                           "--preset", "reinforce"])   # one update a batch: a partial batch's gradient is saved
    assert code == 0
    assert {"checkpoint.npz", "config.json", "progress.csv"} <= set(os.listdir(run_dir))

    with open(os.path.join(run_dir, "config.json")) as f:
        document = json.load(f)
    settings = document.get("config", document)
    assert settings["seed"] == 7 and settings["envs"] == 2 and settings["hidden"] == 16
    assert settings["backend"] == "numpy" and settings["dtype"] == "float32"
    assert settings["batch_episodes"] == 2 and settings["max_episodes"] == 3
    machine = document["machine"]
    assert machine["cpu_count"] == os.cpu_count() and machine["python"] and machine["numpy"] == np.__version__
    assert "ale_py" in machine

    check_progress(run_dir, episodes=3, envs=2)

    arrays, meta = load_run_checkpoint(os.path.join(run_dir, "checkpoint.npz"))
    assert arrays["w1"].shape == (pong.INPUT_SIZE, 16) and arrays["w2"].shape == (16,)
    assert arrays["w1"].dtype == np.float32 and arrays["w2"].dtype == np.float32
    assert all(np.all(np.isfinite(a)) for a in arrays.values())
    assert meta["counters"]["episode"] == 3
    assert meta["counters"]["updates"] == 1, "batch of 2 episodes: 3 episodes give one update"
    assert np.any(arrays["cache_w2"] > 0), "an update ran, so the RMSProp cache is nonzero"
    assert np.any(arrays["grad_w2"] != 0), "episode 3's gradient waits in the batch gradient"


def test_small_run_files(small_run):
    """The shared sync run: progress.csv rows and the checkpoint's counters agree."""
    cols = check_progress(small_run, episodes=2, envs=2)
    arrays, meta = load_run_checkpoint(small_run)
    counters = meta["counters"]
    assert counters["episode"] == 2 and counters["updates"] == 2
    assert counters["frames"] >= cols["frames"][-1] and counters["steps"] >= cols["steps"][-1]
    assert counters["running_reward"] == pytest.approx(cols["running_reward"][-1], abs=1e-5)
    assert np.all(arrays["grad_w1"] == 0) and np.all(arrays["grad_w2"] == 0), "applied, then cleared"
    # --sync: every env steps every time, so frames are steps * frameskip, less the frames not
    # emulated when a game ends part-way through an episode's last step (up to 3 per episode)
    assert np.all(cols["frames"] <= 4 * cols["steps"])
    assert np.all(cols["frames"] >= 4 * cols["steps"] - 3 * cols["episode"])


def test_max_frames_stops_the_run(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli("pgcore-train", "pong", "--envs", "2", "--hidden", "8", "--quiet", "--max-frames", "800",
                     "--run-dir", run_dir)
    assert result.returncode == 0, result.stderr
    _, meta = load_run_checkpoint(run_dir)
    frames = meta["counters"]["frames"]
    assert 800 <= frames <= 800 + 4 * 2 * 2, frames
    header, rows = read_progress_csv(run_dir)
    assert header[:7] == PROGRESS_HEADER and rows == []      # no episode finishes in 800 frames


def test_max_minutes_stops_the_run(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli("pgcore-train", "pong", "--envs", "2", "--hidden", "8", "--quiet", "--max-minutes", "0.05",
                     "--run-dir", run_dir)
    assert result.returncode == 0, result.stderr
    _, meta = load_run_checkpoint(run_dir)
    assert meta["config"]["max_minutes"] == 0.05
    assert 3.0 <= meta["counters"]["wall_s"] < 3.0 + 60, meta["counters"]   # the loop checks the limit every step


# ---------------------------------------------------------------------------
# Resuming
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("new_lr", [None, 3e-4])
def test_resume_continues_counters_and_optimizer(small_run_copy, new_lr):
    """Resuming continues the counters and the RMSProp state; a new --lr takes effect at once."""
    run_dir = small_run_copy
    before_header, before_rows = read_progress_csv(run_dir)
    old, old_meta = load_run_checkpoint(run_dir)
    lr = new_lr or old_meta["config"]["lr"]

    lr_flag = [] if new_lr is None else ["--lr", new_lr]
    result = run_cli("pgcore-train", "pong", "--resume", run_dir, "--max-episodes", 3, "--quiet", *lr_flag)
    assert result.returncode == 0, result.stderr[-3000:]

    header, rows = read_progress_csv(run_dir)
    assert header == before_header
    assert rows[:2] == before_rows, "resuming rewrote the rows already there"
    cols = check_progress(run_dir, episodes=3, envs=2)       # episodes 1, 2, 3: none lost or repeated
    assert cols["frames"][2] > cols["frames"][1] and cols["steps"][2] > cols["steps"][1]
    assert cols["wall_s"][2] >= cols["wall_s"][1]

    new, meta = load_run_checkpoint(run_dir)
    counters = meta["counters"]
    assert counters["episode"] == 3 and counters["updates"] == old_meta["counters"]["updates"] + 1
    assert counters["frames"] > old_meta["counters"]["frames"] and counters["steps"] > old_meta["counters"]["steps"]
    for key in ("seed", "envs", "hidden", "gamma", "batch_episodes", "dtype", "backend", "sync"):
        assert meta["config"][key] == old_meta["config"][key], key
    assert meta["config"]["lr"] == lr
    assert json.loads(open(os.path.join(run_dir, "config.json")).read())["config"]["lr"] == lr

    # Exactly one RMSProp step separates the checkpoints (batch of 1 episode):
    #   cache' = 0.99 cache + 0.01 g^2,  w' = w - lr g / (sqrt(cache') + eps).
    for name in ("w1", "w2"):
        w, w_new = old[name].astype(np.float64), new[name].astype(np.float64)
        c, c_new = old["cache_" + name].astype(np.float64), new["cache_" + name].astype(np.float64)
        moved = np.abs(w_new - w)
        assert moved.max() > 0, f"{name} did not change on resume"
        # it started from the saved weights: one step moves a weight by at most lr / sqrt(1 - 0.99)
        assert moved.max() <= 10 * lr * (1 + 1e-3) + 1e-7, f"{name} moved {moved.max():.3g}: not resumed from the checkpoint?"
        # the saved RMSProp cache was loaded: it only decays by 0.99 and grows by g^2
        assert np.all(c_new >= 0.99 * c * (1 - 1e-5) - 1e-30), f"cache_{name} was not resumed"
        g2 = (c_new - 0.99 * c) / 0.01
        strong = g2 > 0.05 * c_new          # where g^2 is well determined from the caches
        assert strong.sum() > 0
        predicted = lr * np.sqrt(g2[strong]) / (np.sqrt(c_new[strong]) + 1e-5)
        np.testing.assert_allclose(moved[strong], predicted, rtol=2e-3, atol=1e-8,
                                   err_msg=f"{name}: the step is not one RMSProp step from the saved state")
        assert np.all(new["grad_" + name] == 0)


def test_learning_rate_scale_falls_linearly_then_stays():
    decaying = pong.make_config(lr_decay_frames=1000, lr_decay_to=0.2)
    scales = [pong.learning_rate_scale(decaying, frames) for frames in (0, 250, 500, 1000, 10**9)]
    assert scales == pytest.approx([1.0, 0.8, 0.6, 0.2, 0.2], rel=1e-12)
    assert pong.learning_rate_scale(pong.make_config(), 10**9) == 1.0  # lr_decay_frames 0: constant
    rollouts = pong.make_config("rollouts")  # a tenth at 16 M frames
    assert [pong.learning_rate_scale(rollouts, frames) for frames in (0, 8_000_000, 16_000_000, 10**9)] == \
        pytest.approx([1.0, 0.55, 0.1, 0.1], rel=1e-12)


def test_a_decayed_run_steps_at_the_decayed_rates(tmp_path):
    """Same seed, synchronous emulators: a run whose rates have fallen to half by its first
    update (at frame 1) takes exactly the steps of a run at half the rates, policy and value net,
    and not those of a run at the full rates."""
    gae = ["--advantage", "gae"]
    decayed = train_run(tmp_path / "decayed", *gae, "--lr-decay-frames", 1, "--lr-decay-to", 0.5)
    halved = train_run(tmp_path / "halved", *gae, "--lr", 5e-4, "--value-lr", 5e-4)
    full = train_run(tmp_path / "full", *gae)
    decayed_arrays, meta = load_run_checkpoint(decayed)
    assert (meta["config"]["lr_decay_frames"], meta["config"]["lr_decay_to"]) == (1, 0.5)
    halved_arrays, _ = load_run_checkpoint(halved)
    full_arrays, _ = load_run_checkpoint(full)
    for name in ("w1", "w2", "value_w1", "value_w2", "value_b"):
        np.testing.assert_array_equal(decayed_arrays[name], halved_arrays[name], err_msg=name)
        assert not np.array_equal(decayed_arrays[name], full_arrays[name]), f"{name}: the decay changed nothing"


def test_resume_may_change_the_learning_rate_decay(small_run_copy):
    result = run_cli("pgcore-train", "pong", "--resume", small_run_copy, "--max-episodes", 3, "--quiet",
                     "--lr-decay-frames", 50_000_000, "--lr-decay-to", 0.25)
    assert result.returncode == 0, result.stderr[-3000:]
    _, meta = load_run_checkpoint(small_run_copy)
    assert (meta["config"]["lr_decay_frames"], meta["config"]["lr_decay_to"]) == (50_000_000, 0.25)
    saved = json.loads(open(os.path.join(small_run_copy, "config.json")).read())["config"]
    assert (saved["lr_decay_frames"], saved["lr_decay_to"]) == (50_000_000, 0.25)


def test_resume_without_new_episodes_keeps_state_and_drops_stale_rows(small_run_copy):
    """A resume whose limit is already reached saves the same checkpoint back; rows in
    progress.csv beyond the checkpoint (a crash after they were written) and a torn last
    line are dropped, so episode numbers never repeat."""
    run_dir = small_run_copy
    old, old_meta = load_run_checkpoint(run_dir)
    _, rows = read_progress_csv(run_dir)
    with open(os.path.join(run_dir, "progress.csv"), "a") as f:
        f.write("3,99999,99999,5.0,1.0,9.0,9.0,3\n4,99999,99999,5.0,1.0,9.0,9.0,4\n5,999")  # stale, torn
    result = run_cli("pgcore-train", "pong", "--resume", run_dir, "--max-episodes", 2, "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    _, rows_after = read_progress_csv(run_dir)
    assert rows_after == rows
    new, meta = load_run_checkpoint(run_dir)
    assert sorted(new) == sorted(old)
    for name in old:
        np.testing.assert_array_equal(new[name], old[name], err_msg=name)
    for key in ("episode", "frames", "steps", "updates", "episodes_in_batch", "running_reward"):
        assert meta["counters"][key] == old_meta["counters"][key], key
    assert meta["rng"] == old_meta["rng"]


# ---------------------------------------------------------------------------
# Determinism
# ---------------------------------------------------------------------------

def test_sync_runs_are_reproducible_and_seeded(small_run, tmp_path):
    again = train_run(tmp_path / "again", seed=3)
    other = train_run(tmp_path / "other", seed=4)
    columns = ["episode", "frames", "steps", "reward", "running_reward"]
    a, b = progress_columns(small_run, columns), progress_columns(again, columns)
    for name in columns:
        np.testing.assert_array_equal(a[name], b[name], err_msg=f"progress.csv {name} differs between equal runs")
    first, _ = load_run_checkpoint(small_run)
    second, _ = load_run_checkpoint(again)
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=f"{name} differs between equal runs")
    third, _ = load_run_checkpoint(other)
    assert not np.array_equal(first["w1"], third["w1"]) and not np.array_equal(first["w2"], third["w2"])


def test_sync_runs_do_not_depend_on_the_emulator_thread_count(small_run, tmp_path):
    """--threads sets only the emulator threads (the trainer's kernels run on one): with --sync the
    same seed gives the same rewards and weights on 1 thread as on the machine's cores."""
    one = train_run(tmp_path / "one", "--threads", "1", seed=3)
    columns = ["episode", "frames", "steps", "reward"]
    a, b = progress_columns(small_run, columns), progress_columns(one, columns)
    for name in columns:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    first, _ = load_run_checkpoint(small_run)
    second, _ = load_run_checkpoint(one)
    for name in ("w1", "w2"):
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)


# ---------------------------------------------------------------------------
# A Ctrl-C inside an update
# ---------------------------------------------------------------------------

class InterruptedOnce:
    """pgcore.kernels, except that a real SIGINT (Ctrl-C) reaches the process during the first
    rmsprop_step, after it has updated its parameter and before the second one runs."""

    def __init__(self):
        self.fired = False

    def __getattr__(self, name):
        return getattr(pgcore.kernels, name)

    def rmsprop_step(self, *args, **kwargs):
        pgcore.kernels.rmsprop_step(*args, **kwargs)
        if not self.fired:
            self.fired = True
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_inside_an_update_leaves_a_resumable_run(tmp_path, keep_threads):
    run_dir = str(tmp_path / "run")
    runs.prepare_run_dir(run_dir, resume=False)
    config = pong.make_config("reinforce", seed=1, envs=2, threads=2, sync=True, hidden=8, batch_episodes=1,
                              max_episodes=5, run_dir=run_dir, quiet=True)
    kernels = InterruptedOnce()
    counters, stopped_by = pong.train(config, kernels)
    assert kernels.fired and stopped_by == "Ctrl-C"

    arrays, meta = runs.load_checkpoint(os.path.join(run_dir, runs.CHECKPOINT_NAME))
    saved = meta["counters"]
    problems = []
    _, rows = read_progress_csv(run_dir)
    if len(rows) != saved["episode"]:
        problems.append(f"progress.csv has {len(rows)} rows but the checkpoint counts {saved['episode']} "
                        "episodes: that episode number will be missing after --resume")
    if not 0 <= saved["episodes_in_batch"] < config.batch_episodes:
        problems.append(f"checkpoint saved mid-update: episodes_in_batch={saved['episodes_in_batch']} with "
                        f"batch_episodes={config.batch_episodes} (updates={saved['updates']})")

    # Resuming must go on updating the parameters every batch_episodes episodes.
    config = pong.PongConfig(**dict(meta["config"], max_episodes=saved["episode"] + 1))
    counters, _ = pong.train(config, pgcore.kernels, meta, arrays)
    assert counters["episode"] == saved["episode"] + 1
    if counters["updates"] != saved["updates"] + 1:
        problems.append(f"after resuming, one more episode (batch of 1) gave "
                        f"{counters['updates'] - saved['updates']} updates instead of 1")
    episodes = progress_columns(run_dir, ["episode"])["episode"]
    if not np.array_equal(episodes, np.arange(1, counters["episode"] + 1)):
        problems.append(f"progress.csv episodes after resuming: {episodes.astype(int).tolist()}")
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------
# A batch whose gradient is not finite
# ---------------------------------------------------------------------------

class PoisonedFirstEpisode:
    """pgcore.kernels, except that the first episode's gradient is NaN."""

    def __init__(self):
        self.poisoned = False

    def __getattr__(self, name):
        return getattr(pgcore.kernels, name)

    def sparse_mlp_backward(self, *args, **kwargs):
        pgcore.kernels.sparse_mlp_backward(*args, **kwargs)
        if not self.poisoned:
            self.poisoned = True
            args[6][0, 0] = np.nan  # grad_w1, the batch gradient it added to


def test_non_finite_batch_is_skipped_counted_and_training_goes_on(tmp_path, keep_threads):
    run_dir = str(tmp_path / "run")
    runs.prepare_run_dir(run_dir, resume=False)
    config = pong.make_config("reinforce", seed=1, envs=2, threads=2, sync=True, hidden=8, batch_episodes=1,
                              max_episodes=3, run_dir=run_dir, quiet=True)
    with pytest.warns(RuntimeWarning, match="not finite"):
        counters, _ = pong.train(config, PoisonedFirstEpisode())
    assert counters["skipped_updates"] == 1 and counters["updates"] == counters["episode"] - 1
    header, rows = read_progress_csv(run_dir)
    skipped = [int(row[header.index("skipped_updates")]) for row in rows]
    assert skipped[0] == 1 and skipped == sorted(skipped) and skipped[-1] == 1
    arrays, _ = runs.load_checkpoint(os.path.join(run_dir, runs.CHECKPOINT_NAME))
    assert all(np.isfinite(arrays[k]).all() for k in ("w1", "w2", "cache_w1", "cache_w2", "grad_w1", "grad_w2"))


def test_progress_written_before_a_new_column_is_resumed(small_run_copy):
    """A progress.csv from before `skipped_updates` existed keeps its rows, padded with 0."""
    path = os.path.join(small_run_copy, "progress.csv")
    with open(path) as f:
        lines = f.read().splitlines()
    with open(path, "w") as f:
        f.write("\n".join(",".join(line.split(",")[:8]) for line in lines) + "\n")
    train_run(small_run_copy, "--resume", small_run_copy, episodes=3)
    header, rows = read_progress_csv(small_run_copy)
    assert header[-1] == "skipped_updates"
    assert [int(row[0]) for row in rows] == list(range(1, len(rows) + 1)) and len(rows) >= 3
    assert all(row[header.index("skipped_updates")] == "0" for row in rows)


# ---------------------------------------------------------------------------
# A full disk while saving
# ---------------------------------------------------------------------------

def test_full_disk_during_a_checkpoint_keeps_the_previous_one(tmp_path, keep_threads, monkeypatch):
    """The third checkpoint write (episode 4: a new run saves at episode 0, then every 2) fails with
    ENOSPC part-way (as a full disk does): the error reaches the caller, the episode-2 checkpoint is
    intact and loads, no temporary file is left.
    (benchmarks/reliability/full_disk.py shows the same with a real 1 MiB tmpfs, which needs root.)"""
    import errno
    run_dir = str(tmp_path / "run")
    runs.prepare_run_dir(run_dir, resume=False)
    config = pong.make_config("fast", seed=1, envs=2, threads=2, sync=True, hidden=8, batch_episodes=1,
                              max_episodes=6, checkpoint_every=2, run_dir=run_dir, quiet=True)
    path = os.path.join(run_dir, runs.CHECKPOINT_NAME)
    real_fdopen = os.fdopen
    writes = []

    class FullDisk:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            self.f.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    real_atomic_write = runs.atomic_write_bytes

    def atomic_write_bytes(target, data):
        if target == path:
            writes.append(open(path, "rb").read() if os.path.exists(path) else None)
        return real_atomic_write(target, data)

    def fdopen(fd, mode="r", *args, **kwargs):
        f = real_fdopen(fd, mode, *args, **kwargs)
        return FullDisk(f) if len(writes) == 3 and "w" in mode else f

    monkeypatch.setattr(runs, "atomic_write_bytes", atomic_write_bytes)
    monkeypatch.setattr(runs.os, "fdopen", fdopen)
    with pytest.raises(OSError) as error:
        pong.train(config, pgcore.kernels)
    assert error.value.errno == errno.ENOSPC
    assert writes[0] is None and open(path, "rb").read() == writes[2], "the previous checkpoint was touched"
    arrays, meta = runs.load_checkpoint(path, pong.checkpoint_arrays(config))
    assert meta["counters"]["episode"] == 2
    assert not [name for name in os.listdir(run_dir) if name.startswith(".tmp-")]


# ---------------------------------------------------------------------------
# An emulator batch that names one env twice (seen once from ale-py's async vector env)
# ---------------------------------------------------------------------------

def test_a_batch_naming_an_env_twice_restarts_the_emulators(tmp_path, keep_threads, monkeypatch):
    """The 30th batch names its first env twice: the run warns, starts new emulators, drops the
    episodes in progress (1 to 4, as timing has it) and goes on to its last episode (it used to stop
    with "rows must not repeat")."""
    real_make_envs = pong.make_envs
    made = []

    class NamesAnEnvTwice:
        def __init__(self, envs):
            self.envs, self.batches = envs, 0

        def __getattr__(self, name):
            return getattr(self.envs, name)

        def recv(self):
            observations, rewards, terminated, truncated, info = self.envs.recv()
            self.batches += 1
            if len(made) == 1 and self.batches == 30:
                info["env_id"][1] = info["env_id"][0]
            return observations, rewards, terminated, truncated, info

    def make_envs(config):
        made.append(NamesAnEnvTwice(real_make_envs(config)))
        return made[-1]

    monkeypatch.setattr(pong, "make_envs", make_envs)
    run_dir = str(tmp_path / "run")
    runs.prepare_run_dir(run_dir, resume=False)
    config = pong.make_config("fast", seed=1, envs=4, threads=2, sync=False, hidden=8, batch_episodes=1, epochs=1,
                              minibatches=1, max_episodes=2, run_dir=run_dir, quiet=True)
    with pytest.warns(RuntimeWarning, match=r"twice\); its emulators were started again and their [1-4] episodes"):
        counters, _ = pong.train(config, pgcore.kernels)
    assert len(made) == 2 and counters["episode"] == 2
    assert made[1].batches > made[0].batches, "the second emulators played the episodes"
