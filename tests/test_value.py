"""Pong with a learned baseline (`--advantage gae`): the episode gradient of the policy and of
the value net, against today's returns path, finite differences (float64) and each backend;
and what such a run leaves behind (the value net in checkpoints, its loss in progress.csv,
resuming, the settings' checks, checkpoints from before the value net).
"""
import dataclasses
import json

import numpy as np
import pytest

import pgcore
import pgcore.kernels
import pgcore.reference
from pgcore import pong, runs

from helpers import (assert_bad_pong_flags_fail_in_one_line, assert_close, central_differences, load_run_checkpoint, read_progress_csv, run_cli,
                     train_run, write_run_checkpoint)
from test_gae import gae_by_definition
from test_pong import cut_returns, reinforce_objective, sparse_episode, synthetic_episode

BACKEND_PAIR = [pgcore.kernels, pgcore.reference]


def gae_state(rng, w1, w2, value_hidden=8, value_scale=1.0):
    """A state dict with a policy (w1, w2), a value net and zero batch gradients."""
    dtype = w1.dtype
    state = {"w1": w1, "w2": w2,
             "value_w1": (rng.standard_normal((pong.INPUT_SIZE, value_hidden)) * 0.3).astype(dtype),
             "value_w2": (rng.standard_normal(value_hidden) * value_scale).astype(dtype),
             "value_b": np.array([0.1 * value_scale], dtype=dtype)}
    return state | {"grad_" + name: np.zeros_like(value) for name, value in list(state.items())}


def dense_values(x, state):
    """V(s_t) = relu(x @ value_w1) @ value_w2 + value_b, float64, from scratch."""
    return np.maximum(x.astype(np.float64) @ state["value_w1"], 0) @ state["value_w2"] + state["value_b"][0]


@pytest.mark.parametrize("kernels", BACKEND_PAIR, ids=["cython", "numpy"])
def test_before_gae_start_frames_the_advantages_are_the_returns_and_the_value_net_learns(kernels):
    rng = np.random.default_rng(23)
    x, w1, w2, _, logits, actions, rewards = synthetic_episode(rng)
    episode = (*sparse_episode(x), logits, actions, rewards)
    state = gae_state(rng, w1, w2)
    gae = pong.make_config("fast", gamma=0.99, advantage="gae", gae_lambda=0.9)
    starting_later = dataclasses.replace(gae, gae_start_frames=1000)
    returns_only, _, _ = pong.episode_targets(kernels, episode, state, pong.make_config("fast", gamma=0.99))
    with_gae, returns, value_loss = pong.episode_targets(kernels, episode, state, gae)
    assert np.abs(with_gae - returns_only).max() > 0.01, "V is not zero: GAE differs from the returns"
    before = pong.episode_targets(kernels, episode, state, starting_later, frames=999)
    np.testing.assert_array_equal(before[0], returns_only)
    np.testing.assert_array_equal(before[1], returns)
    assert before[2] == value_loss > 0
    for frames in (1000, None):  # from gae_start_frames on, and where no frame count is given
        np.testing.assert_array_equal(pong.episode_targets(kernels, episode, state, starting_later, frames)[0],
                                      with_gae)
    # the one-update path: the policy's gradient is the returns', the value net's is GAE's
    returns_state = {"w1": w1, "w2": w2, "grad_w1": np.zeros_like(w1), "grad_w2": np.zeros_like(w2)}
    pong.add_episode_gradient(kernels, episode, returns_state, pong.make_config("fast", gamma=0.99))
    gae_grads = {name: np.zeros_like(value) for name, value in state.items() if name.startswith("grad_")}
    pong.add_episode_gradient(kernels, episode, state | gae_grads, gae)
    assert pong.add_episode_gradient(kernels, episode, state, starting_later, frames=999) == pytest.approx(value_loss)
    np.testing.assert_array_equal(state["grad_w1"], returns_state["grad_w1"])
    np.testing.assert_array_equal(state["grad_value_w1"], gae_grads["grad_value_w1"])
    assert np.abs(state["grad_value_w1"]).max() > 0


@pytest.mark.parametrize("kernels", BACKEND_PAIR, ids=["cython", "numpy"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_gae_at_lambda_1_with_zero_values_is_the_returns_path_exactly(kernels, dtype):
    """With lambda = 1 and V = 0 (the value net's start: output weights and bias zero) the
    policy's gradient is today's, bit for bit."""
    rng = np.random.default_rng(21)
    x, w1, w2, _, logits, actions, rewards = synthetic_episode(rng, dtype=dtype)
    episode = (*sparse_episode(x), logits, actions, rewards)
    returns_state = {"w1": w1, "w2": w2, "grad_w1": np.zeros_like(w1), "grad_w2": np.zeros_like(w2)}
    pong.add_episode_gradient(kernels, episode, returns_state, pong.make_config("fast", gamma=0.99))
    state = gae_state(rng, w1, w2)
    state["value_w2"][:] = 0
    state["value_b"][:] = 0
    config = pong.make_config("fast", gamma=0.99, advantage="gae", gae_lambda=1.0)
    value_loss = pong.add_episode_gradient(kernels, episode, state, config)
    np.testing.assert_array_equal(state["grad_w1"], returns_state["grad_w1"])
    np.testing.assert_array_equal(state["grad_w2"], returns_state["grad_w2"])
    returns = cut_returns(rewards.astype(np.float64), 0.99)
    assert value_loss == pytest.approx(0.5 * np.sum(returns**2), rel=1e-5)
    assert np.abs(state["grad_value_w2"]).max() > 0, "the value net learns even from V = 0"


@pytest.mark.parametrize("kernels", BACKEND_PAIR, ids=["cython", "numpy"])
def test_gae_episode_gradients_match_finite_differences(kernels):
    """The policy: minus the gradient of sum_t A_t log pi(a_t | s_t), A the standardized GAE over
    the value net's V (held constant). The value net: the gradient of 0.5 sum_t (V(s_t) - G_t)^2,
    G the returns cut at points. Frames use 12 pixels; differences are taken over those rows."""
    rng = np.random.default_rng(8)
    steps, hidden, gamma, lam = 40, 4, 0.9, 0.8
    pixels = np.sort(rng.choice(pong.INPUT_SIZE, 12, replace=False))
    x = np.zeros((steps, pong.INPUT_SIZE), np.int8)
    x[:, pixels] = rng.integers(-1, 2, size=(steps, len(pixels)))
    w1, w2 = np.zeros((pong.INPUT_SIZE, hidden)), rng.standard_normal(hidden)
    state = gae_state(rng, w1, w2, value_hidden=5)
    state["value_w1"][:] = 0
    for name, width in (("w1", hidden), ("value_w1", 5)):   # pre-activations away from the ReLU kink
        while True:
            state[name][pixels] = rng.standard_normal((len(pixels), width)) * 0.5
            pre = x @ state[name]
            if np.abs(pre).min() > 1e-3 and 0 < (pre > 0).mean() < 1:
                break
    _, logits = kernels.mlp_forward(x, w1, w2)
    actions = (rng.random(steps) < 0.5).astype(np.uint8)
    rewards = np.zeros(steps)
    rewards[[7, 15, 16, 30, steps - 1]] = [1.0, -1.0, 1.0, -1.0, 1.0]
    returns = cut_returns(rewards, gamma)
    values = dense_values(x, state)
    gae = gae_by_definition(rewards, values, rewards != 0, gamma, lam)
    advantages = (gae - gae.mean()) / (gae.std() + 1e-8)                  # constants of the policy's objective

    config = pong.make_config("fast", gamma=gamma, advantage="gae", gae_lambda=lam)
    value_loss = pong.add_episode_gradient(kernels, (*sparse_episode(x), logits, actions, rewards), state, config)
    assert value_loss == pytest.approx(0.5 * np.sum((values - returns) ** 2), rel=1e-10)
    for name in ("w1", "value_w1"):
        assert not np.any(np.delete(state["grad_" + name], pixels, axis=0)), f"{name}: rows no frame selects"

    xf = x.astype(np.float64)
    policy_rows = w1[pixels].copy()

    def policy_objective():
        w1[pixels] = policy_rows
        return reinforce_objective(xf, w1, w2, actions, advantages)

    value_rows = state["value_w1"][pixels].copy()

    def value_loss_of_params():
        state["value_w1"][pixels] = value_rows
        return 0.5 * float(np.sum((dense_values(x, state) - returns) ** 2))

    checks = [("grad_w1", state["grad_w1"][pixels], -central_differences(policy_objective, policy_rows, eps=1e-6)),
              ("grad_w2", state["grad_w2"], -central_differences(policy_objective, w2, eps=1e-6)),
              ("grad_value_w1", state["grad_value_w1"][pixels],
               central_differences(value_loss_of_params, value_rows, eps=1e-6)),
              ("grad_value_w2", state["grad_value_w2"], central_differences(value_loss_of_params, state["value_w2"], eps=1e-6)),
              ("grad_value_b", state["grad_value_b"], central_differences(value_loss_of_params, state["value_b"], eps=1e-6))]
    for name, got, numeric in checks:
        scale = np.abs(numeric).max()
        assert scale > 1e-3, f"{name}: the objective is flat, the test has no teeth"
        assert_close(got, numeric, rtol=1e-6, atol=1e-6 * scale, what=f"{name} vs finite differences")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_gae_episode_gradient_is_the_same_on_both_backends(dtype):
    rng = np.random.default_rng(9)
    x, w1, w2, _, logits, actions, rewards = synthetic_episode(rng, steps=500, dtype=dtype)
    episode = (*sparse_episode(x), logits, actions, rewards)
    config = pong.make_config("fast", gamma=0.99, advantage="gae", gae_lambda=0.95)
    template = gae_state(rng, w1, w2, value_scale=0.3)
    got = {name: value.copy() for name, value in template.items()}
    want = {name: value.copy() for name, value in template.items()}
    loss_got = pong.add_episode_gradient(pgcore.kernels, episode, got, config)
    loss_want = pong.add_episode_gradient(pgcore.reference, episode, want, config)
    rtol = 2e-4 if dtype == np.float32 else 1e-9
    assert loss_got == pytest.approx(loss_want, rel=rtol)
    for name in template:
        if name.startswith("grad_"):
            scale = np.abs(want[name]).max()
            assert scale > 0, name
            assert_close(got[name], want[name], rtol=rtol, atol=rtol * scale, what=name)


# ---------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gae_run(tmp_path_factory):
    """A finished 2-episode `--advantage gae` run of the small settings."""
    return train_run(tmp_path_factory.mktemp("gae_run") / "run", "--advantage", "gae", "--value-hidden", "4",
                     "--gae-lambda", "0.9", "--value-lr", "0.01")


def test_gae_run_saves_the_value_net_and_logs_its_loss(gae_run):
    header, rows = read_progress_csv(gae_run)
    assert header[-2:] == ["skipped_updates", "value_loss"] and len(rows) == 2
    losses = [float(row[-1]) for row in rows]
    assert all(np.isfinite(losses)) and min(losses) > 0
    arrays, meta = load_run_checkpoint(gae_run)
    config = meta["config"]
    assert (config["advantage"], config["gae_lambda"], config["value_hidden"], config["value_lr"]) == ("gae", 0.9, 4, 0.01)
    with open(f"{gae_run}/config.json") as f:
        assert json.load(f)["config"]["advantage"] == "gae"
    assert arrays["value_w1"].shape == (pong.INPUT_SIZE, 4) and arrays["value_b"].shape == (1,)
    for name in ("value_w2", "value_b"):   # both start at zero: updates moved them
        assert np.abs(arrays[name]).max() > 0, f"{name} never moved"
        assert np.abs(arrays["cache_" + name]).max() > 0
    agent = pgcore.Agent.load(gae_run)
    assert set(agent.params) == {"w1", "w2"}   # the value net trains, it does not play
    assert agent.evaluate(episodes=1, seed=10_000).shape == (1,)


def test_a_gae_run_with_the_frame_input_trains_both_nets_on_the_frame(tmp_path):
    """--frame-input with --advantage gae: the policy and the value net both read 12800 inputs
    (the difference frame, then the frame) and both learn on the frame's rows."""
    run_dir = train_run(tmp_path / "run", "--advantage", "gae", "--frame-input", "--value-hidden", "4")
    arrays, meta = load_run_checkpoint(run_dir)
    assert meta["config"]["frame_input"] and meta["config"]["advantage"] == "gae"
    assert arrays["w1"].shape == (2 * pong.INPUT_SIZE, 8) and arrays["value_w1"].shape == (2 * pong.INPUT_SIZE, 4)
    for name in ("w1", "value_w1"):   # RMSProp's cache is nonzero where a gradient arrived
        frame_rows = arrays["cache_" + name][pong.INPUT_SIZE:]
        assert np.abs(frame_rows).max() > 0, f"{name}'s frame rows never had a gradient"


def test_a_gae_policy_plays_without_its_value_net(gae_run, tmp_path):
    """A shipped policy keeps only w1 and w2, though its config records advantage "gae"."""
    arrays, meta = load_run_checkpoint(gae_run)
    policy_file = str(tmp_path / "policy.npz")
    runs.save_checkpoint(policy_file, {name: arrays[name] for name in ("w1", "w2")}, {"config": meta["config"]})
    agent = pgcore.Agent.load(policy_file)
    assert agent.config.advantage == "gae" and set(agent.params) == {"w1", "w2"}
    np.testing.assert_array_equal(agent.params["w1"], arrays["w1"])
    result = run_cli("pgcore-play", "pong", "--checkpoint", policy_file, "--episodes", 1, "--seed", 10_000)
    assert result.returncode == 0, result.stderr[-3000:]


def test_gae_run_resumes(gae_run, tmp_path):
    import shutil
    run_dir = tmp_path / "run"
    shutil.copytree(gae_run, run_dir)
    old, _ = load_run_checkpoint(run_dir)
    result = run_cli("pgcore-train", "pong", "--resume", run_dir, "--max-episodes", 3, "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    header, rows = read_progress_csv(run_dir)
    assert [row[0] for row in rows] == ["1", "2", "3"] and header[-1] == "value_loss"
    new, meta = load_run_checkpoint(run_dir)
    assert meta["config"]["advantage"] == "gae" and sorted(new) == sorted(old)
    assert np.abs(new["value_w2"] - old["value_w2"]).max() > 0, "the resumed run did not train the value net"
    # a resumed run keeps its own advantage settings
    result = run_cli("pgcore-train", "pong", "--resume", run_dir, "--advantage", "returns", "--max-episodes", 4)
    assert result.returncode == 2 and "--advantage" in result.stderr


@pytest.mark.parametrize("epochs", ["1", "2"], ids=["one-update", "replayed"])
def test_a_run_before_gae_start_frames_plays_and_learns_as_a_returns_run(epochs, tmp_path):
    """Same seed, synchronous emulators: until gae_start_frames the policy's weights are the
    returns run's bit for bit, while the value net learns."""
    returns_run = train_run(tmp_path / "returns", "--epochs", epochs)
    gae_run = train_run(tmp_path / "gae", "--epochs", epochs, "--advantage", "gae", "--gae-start-frames", 10**9)
    returns_arrays, _ = load_run_checkpoint(returns_run)
    gae_arrays, meta = load_run_checkpoint(gae_run)
    assert meta["config"]["gae_start_frames"] == 10**9
    for name in ("w1", "w2"):
        np.testing.assert_array_equal(gae_arrays[name], returns_arrays[name])
    assert np.abs(gae_arrays["value_w2"]).max() > 0, "the value net did not learn"
    assert [row[:5] for row in read_progress_csv(gae_run)[1]] == [row[:5] for row in read_progress_csv(returns_run)[1]]


def test_gae_start_frames_needs_advantage_gae(tmp_path):
    for flags in (["--advantage", "returns"], ["--preset", "fast"]):
        assert_bad_pong_flags_fail_in_one_line([*flags, "--gae-start-frames", "1000"], "--gae-start-frames",
                                               tmp_path / "run")
    with pytest.raises(ValueError, match="gae_start_frames"):
        pgcore.Agent("pong", advantage="gae", gae_start_frames=-1)


def test_checkpoint_from_before_the_value_net_resumes_as_returns(small_run_copy):
    """Checkpoints written before `advantage` existed record no such setting: they ran on returns."""
    arrays, meta = load_run_checkpoint(small_run_copy)
    for name in ("advantage", "gae_lambda", "value_hidden", "value_lr"):
        del meta["config"][name]
    write_run_checkpoint(f"{small_run_copy}/checkpoint.npz", arrays, meta)
    result = run_cli("pgcore-train", "pong", "--resume", small_run_copy, "--max-episodes", 3, "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    _, meta = load_run_checkpoint(small_run_copy)
    assert meta["config"]["advantage"] == "returns" and meta["counters"]["episode"] == 3


@pytest.mark.parametrize("flags, named", [(["--advantage", "td"], "--advantage"),
                                          (["--gae-lambda", "1.5"], "--gae-lambda"),
                                          (["--gae-lambda", "nan"], "--gae-lambda"),
                                          (["--value-lr", "0"], "--value-lr"),
                                          (["--value-hidden", "0"], "--value-hidden")])
def test_bad_gae_settings_are_one_line_errors(flags, named, tmp_path):
    assert_bad_pong_flags_fail_in_one_line(flags, named, tmp_path / "run")


def test_bad_gae_settings_in_python_name_the_setting():
    with pytest.raises(ValueError, match="gae_lambda"):
        pgcore.Agent("pong", advantage="gae", gae_lambda=-0.1)
    with pytest.raises(ValueError, match="advantage"):
        pgcore.Agent("pong", advantage="GAE")
    with pytest.raises(ValueError, match="value_hidden"):
        pgcore.Agent("pong", advantage="gae", value_hidden=10**9)
    with pytest.raises(ValueError, match="does not apply"):
        pgcore.Agent("cartpole", advantage="gae")


def test_memory_estimate_counts_the_value_net():
    returns = pong.memory_bytes(pong.make_config("fast"))
    gae = pong.memory_bytes(pong.make_config("fast", advantage="gae", value_hidden=64))
    per_param = 4 * (2 + len(pong.OPTIMIZER_STATE["rmsprop"]))
    assert gae - returns == (pong.INPUT_SIZE * 64 + 64 + 1) * per_param
    assert dataclasses.asdict(pong.config_from_saved({"lr": 1e-3}))["advantage"] == "returns"
