"""The other policy families (pgcore.control): their gradients, the temperature, the loop, the CLI."""
import dataclasses
import os
import signal

import numpy as np
import pytest

import pgcore.kernels
import pgcore.reference
from pgcore import control, runs
from helpers import BACKENDS, central_differences, read_progress_csv, run_cli


class Box:
    def __init__(self, dim):
        self.shape = (dim,)
        self.low, self.high = -np.ones(dim), np.ones(dim)


class Discrete:
    def __init__(self, n):
        self.n = n


def log_softmax_rows(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


# ---- gradients of the three families against central finite differences (float64) ----

@pytest.mark.parametrize("kernels", BACKENDS, ids=["cython", "numpy"])
@pytest.mark.parametrize("tau", [0.05, 0.3, 1.0, 4.0])
def test_tabular_gradient_matches_finite_differences_at_each_temperature(kernels, tau):
    """d/dw of sum_i A_i log softmax(w[s_i] / tau)[a_i], with repeated states (the scatter-add)."""
    rng = np.random.default_rng(0)
    policy = control.Tabular(kernels, Discrete(5), Discrete(4))
    params = {"w": rng.normal(size=(5, 4))}
    states = np.array([0, 3, 3, 1, 0, 4, 3])
    actions = rng.integers(0, 4, size=7)
    weights = rng.normal(size=7)

    def objective():
        return float((weights * log_softmax_rows(params["w"][states] / tau)[np.arange(7), actions]).sum())

    grad = policy.objective_grad(params, states, actions, weights, tau)["w"]
    np.testing.assert_allclose(grad, central_differences(objective, params["w"]), rtol=1e-6, atol=1e-8)
    assert np.all(grad[2] == 0), "a state never visited gets no gradient"


def test_tabular_gradient_scales_with_one_over_tau():
    """Same probabilities (w scaled with tau), gradient times tau constant: the 1/tau factor."""
    rng = np.random.default_rng(1)
    policy = control.Tabular(pgcore.kernels, Discrete(3), Discrete(5))
    base = rng.normal(size=(3, 5))
    states, actions, weights = np.array([0, 1, 2, 1]), np.array([4, 0, 2, 2]), rng.normal(size=4)
    scaled = [tau * policy.objective_grad({"w": base * tau}, states, actions, weights, tau)["w"]
              for tau in (0.01, 0.1, 1.0, 10.0)]
    for other in scaled[1:]:
        np.testing.assert_allclose(other, scaled[0], rtol=1e-9, atol=1e-12)


def entropy_rows(logits):
    log_p = log_softmax_rows(logits)
    return -(np.exp(log_p) * log_p).sum(axis=1)


@pytest.mark.parametrize("kernels", BACKENDS, ids=["cython", "numpy"])
@pytest.mark.parametrize("tau", [0.05, 1.0, 4.0])
def test_tabular_gradient_with_entropy_bonus_matches_finite_differences(kernels, tau):
    """d/dw of sum_i [A_i log pi(a_i | s_i) + beta H(pi(. | s_i))]: the bonus counts once per visit."""
    rng = np.random.default_rng(5)
    policy = control.Tabular(kernels, Discrete(5), Discrete(4))
    params = {"w": rng.normal(0.0, tau, size=(5, 4))}
    states = np.array([0, 3, 3, 1, 0, 4, 3])
    actions, weights, beta = rng.integers(0, 4, size=7), rng.normal(size=7), 0.3

    def objective():
        z = params["w"][states] / tau
        return float((weights * log_softmax_rows(z)[np.arange(7), actions]).sum() + beta * entropy_rows(z).sum())

    grad = policy.objective_grad(params, states, actions, weights, tau, beta)["w"]
    np.testing.assert_allclose(grad, central_differences(objective, params["w"]), rtol=1e-6, atol=1e-8)
    without = policy.objective_grad(params, states, actions, weights, tau)["w"]
    assert np.abs(grad - without).max() > 1e-3, "the bonus changes the gradient"


@pytest.mark.parametrize("kernels", BACKENDS, ids=["cython", "numpy"])
@pytest.mark.parametrize("beta", [0.0, 0.5])
def test_softmax_mlp_gradient_matches_finite_differences(kernels, beta):
    rng = np.random.default_rng(2)
    policy = control.SoftmaxMLP(kernels, Box(4), Discrete(3), hidden=6)
    params = policy.init_params(rng, np.float64)
    params["w2"] = rng.normal(size=params["w2"].shape)  # not the near-zero init: exercise every path
    x = policy.inputs(rng.normal(size=(9, 4)), np.float64)
    actions, weights = rng.integers(0, 3, size=9), rng.normal(size=9)

    def objective():
        logits = np.maximum(x @ params["w1"], 0) @ params["w2"]
        return float((weights * log_softmax_rows(logits)[np.arange(9), actions]).sum() + beta * entropy_rows(logits).sum())

    grads = policy.objective_grad(params, x, actions, weights, 1.0, beta)
    for name in ("w1", "w2"):
        np.testing.assert_allclose(grads[name], central_differences(objective, params[name]),
                                   rtol=1e-5, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("kernels", BACKENDS, ids=["cython", "numpy"])
@pytest.mark.parametrize("sigma", [0.1, 1.0])
def test_linear_gaussian_gradient_matches_finite_differences(kernels, sigma):
    rng = np.random.default_rng(3)
    policy = control.LinearGaussian(kernels, Box(4), Box(2))
    params = {"theta": rng.normal(size=(5, 2))}
    x = policy.inputs(rng.normal(size=(7, 4)), np.float64)
    actions, weights = rng.normal(size=(7, 2)), rng.normal(size=7)

    def objective():
        mean = x @ params["theta"]
        log_pi = -0.5 * ((actions - mean) ** 2).sum(axis=1) / sigma**2  # constants drop out
        return float((weights * log_pi).sum())

    grad = policy.objective_grad(params, x, actions, weights, sigma)["theta"]
    np.testing.assert_allclose(grad, central_differences(objective, params["theta"]), rtol=1e-6, atol=1e-6)


# ---- the temperature really acts ----

def entropy(p):
    return float(-(p * np.log(np.maximum(p, 1e-300))).sum(axis=-1).mean())


@pytest.mark.parametrize("kernels", BACKENDS, ids=["cython", "numpy"])
def test_temperature_moves_the_policy_from_greedy_to_uniform(kernels):
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(200, 6))
    entropies = [entropy(kernels.softmax(logits, tau)) for tau in (1e-3, 0.1, 1.0, 10.0, 1e4)]
    assert entropies[0] < 1e-3, "tau -> 0: near-greedy"
    assert entropies[-1] > np.log(6) - 1e-6, "tau -> inf: near-uniform"
    assert all(a < b for a, b in zip(entropies, entropies[1:])), entropies
    greedy = kernels.softmax(logits, 1e-3).argmax(axis=1)
    assert np.array_equal(greedy, logits.argmax(axis=1))


def test_sampling_follows_the_temperature():
    """Sampled actions of the tabular policy: frequencies match softmax(w / tau)."""
    policy = control.Tabular(pgcore.kernels, Discrete(1), Discrete(3))
    params = {"w": np.array([[0.0, 1.0, 2.0]])}
    rng = np.random.default_rng(5)
    states = np.zeros(200_000, dtype=np.int64)
    for tau in (0.5, 2.0):
        counts = np.bincount(policy.act(params, states, rng, tau), minlength=3) / len(states)
        np.testing.assert_allclose(counts, pgcore.reference.softmax(params["w"][0], tau), atol=0.005)


@pytest.mark.parametrize("anneal, middle", [("exponential", 0.1), ("linear", 0.505)])
def test_anneal_schedules(anneal, middle):
    config = control.default_config("frozenlake", tau=1.0, tau_final=0.01, max_episodes=1000, anneal=anneal)
    assert control.temperature_at(config, 0) == 1.0
    assert control.temperature_at(config, 500) == pytest.approx(middle)
    assert control.temperature_at(config, 1000) == pytest.approx(0.01)
    assert control.temperature_at(config, 5000) == pytest.approx(0.01), "held at the final value after the horizon"


def test_annealing_needs_an_episode_budget():
    with pytest.raises(ValueError, match="max_episodes"):
        control.check_config(control.default_config("taxi", max_episodes=0))
    control.check_config(control.default_config("taxi", max_episodes=0, tau_final=1.0))
    with pytest.raises(ValueError, match="max_episodes"):
        control.check_config(control.default_config("cartpole", max_episodes=0, entropy=0.1, entropy_final=0.01))


@pytest.mark.parametrize("overrides, message", [
    (dict(task="cartpole", entropy=-0.1), r"entropy must be a number in \[0, inf\)"),
    (dict(task="cartpole", entropy_final=float("nan")), r"entropy_final must be a number in \[0, inf\)"),
    (dict(task="cartpole", entropy=float("inf"), entropy_final=float("inf")), r"entropy must be a number in \[0, inf\)"),
    (dict(task="cartpole", entropy=0.1), "exponential anneal cannot reach or leave 0"),
    (dict(task="cliffwalking", entropy_final=0.0), "exponential anneal cannot reach or leave 0"),
    (dict(task="inverted-pendulum", entropy=0.1, entropy_final=0.1), "softmax policies"),
])
def test_bad_entropy_settings_are_refused(overrides, message):
    task = overrides.pop("task")
    with pytest.raises(ValueError, match=message):
        control.check_config(control.default_config(task, **overrides))


def test_entropy_may_anneal_linearly_to_zero():
    config = control.default_config("cartpole", entropy=0.2, entropy_final=0.0, anneal="linear", max_episodes=100)
    control.check_config(config)
    assert control.annealed(config.entropy, config.entropy_final, 50, config) == pytest.approx(0.1)
    assert control.annealed(config.entropy, config.entropy_final, 100, config) == 0.0


# ---- advantages ----

def test_advantages_without_baseline_are_the_standardized_active_returns():
    returns = np.array([[3.0, 1.0], [2.0, 0.0], [1.0, 0.0]])
    active = np.array([[True, True], [True, False], [True, False]])
    advantages, baseline = control.advantages_of(pgcore.kernels, returns, active, np.zeros(0), False)
    picked = np.array([3.0, 1.0, 2.0, 1.0])
    np.testing.assert_allclose(advantages, (picked - picked.mean()) / picked.std(), rtol=1e-6)
    assert len(baseline) == 0


def test_baseline_is_a_running_mean_per_step_index():
    returns = np.array([[3.0, 1.0], [2.0, 0.0], [1.0, 0.0]])
    active = np.array([[True, True], [True, False], [True, False]])
    baseline = np.array([10.0])
    advantages, new = control.advantages_of(pgcore.kernels, returns, active, baseline, True)
    centred = np.array([3.0 - 10, 1.0 - 10, 2.0, 1.0])
    np.testing.assert_allclose(advantages, centred / centred.std(), rtol=1e-6)
    # step 0: 0.9 * 10 + 0.1 * mean(3, 1); steps 1, 2 start from 0 and see only env 0
    np.testing.assert_allclose(new, [0.9 * 10 + 0.1 * 2.0, 0.2, 0.1])


# ---- the loop ----

def train_small(tmp_path, task, episodes, backend="cython", **overrides):
    os.makedirs(tmp_path, exist_ok=True)
    config = control.default_config(task, max_episodes=episodes, run_dir=str(tmp_path), quiet=True,
                                    backend=backend, **overrides)
    control.check_config(config)
    kernels = pgcore.kernels if backend == "cython" else pgcore.reference
    counters, _ = control.train(config, kernels)
    header, rows = read_progress_csv(tmp_path)
    return config, counters, header, rows


def rewards_of(rows):
    return np.array([float(row[3]) for row in rows])


def test_each_update_uses_one_whole_batch_of_episodes(tmp_path):
    config, counters, header, rows = train_small(tmp_path, "cartpole", 24, batch_episodes=8)
    assert header[-1] == "updates" and len(rows) == 24
    updates = [int(row[-1]) for row in rows]
    assert updates == [1] * 8 + [2] * 8 + [3] * 8
    steps = [int(row[2]) for row in rows]
    assert steps == sorted(steps) and counters["steps"] == steps[-1] == int(rewards_of(rows).sum()), \
        "cartpole pays 1 per step, so the steps are the summed returns"


@pytest.mark.parametrize("task", ["frozenlake", "inverted-pendulum"])
def test_same_seed_same_run(tmp_path, task):
    first = train_small(tmp_path / "a", task, 32)[3]
    second = train_small(tmp_path / "b", task, 32)[3]
    assert [row[3] for row in first] == [row[3] for row in second]
    a, _ = runs.load_checkpoint(str(tmp_path / "a" / runs.CHECKPOINT_NAME))
    b, _ = runs.load_checkpoint(str(tmp_path / "b" / runs.CHECKPOINT_NAME))
    assert all(np.array_equal(a[k], b[k]) for k in a)


class InterruptedMidBatch:
    """pgcore.kernels, except that a Ctrl-C arrives during the n-th policy forward pass."""

    def __init__(self, at_call):
        self.calls, self.at_call = 0, at_call

    def __getattr__(self, name):
        return getattr(pgcore.kernels, name)

    def mlp_forward(self, *args):
        self.calls += 1
        if self.calls == self.at_call:
            os.kill(os.getpid(), signal.SIGINT)
        return pgcore.kernels.mlp_forward(*args)


def test_resumed_run_equals_an_uninterrupted_one(tmp_path):
    """Interrupted twice (at the episode limit, then by Ctrl-C in the middle of a batch) and resumed
    each time: the same progress.csv rewards and the same final weights, bit for bit."""
    os.makedirs(tmp_path / "whole")
    whole = control.default_config("cartpole", max_episodes=40, batch_episodes=4, run_dir=str(tmp_path / "whole"),
                                   quiet=True)
    control.train(whole, pgcore.kernels)

    run_dir = str(tmp_path / "parts")
    os.makedirs(run_dir)
    config = dataclasses.replace(whole, run_dir=run_dir, max_episodes=12)
    control.train(config, pgcore.kernels)
    path = os.path.join(run_dir, runs.CHECKPOINT_NAME)
    arrays, meta = runs.load_checkpoint(path)
    counters, stopped_by = control.train(dataclasses.replace(config, max_episodes=40), InterruptedMidBatch(300),
                                         meta, arrays)
    assert stopped_by == "Ctrl-C" and 12 < counters["episode"] < 40 and counters["episode"] % 4 == 0
    arrays, meta = runs.load_checkpoint(path)
    control.train(dataclasses.replace(config, max_episodes=40), pgcore.kernels, meta, arrays)

    assert [row[3] for row in read_progress_csv(run_dir)[1]] == [row[3] for row in read_progress_csv(whole.run_dir)[1]]
    resumed, _ = runs.load_checkpoint(path)
    uninterrupted, _ = runs.load_checkpoint(os.path.join(whole.run_dir, runs.CHECKPOINT_NAME))
    for name in ("w1", "w2", "m_w1", "v_w1"):
        assert np.array_equal(resumed[name], uninterrupted[name]), name


def test_backends_agree_on_a_run(tmp_path):
    cython = rewards_of(train_small(tmp_path / "c", "frozenlake", 64)[3])
    numpy = rewards_of(train_small(tmp_path / "n", "frozenlake", 64, backend="numpy")[3])
    np.testing.assert_array_equal(cython, numpy)


def test_tau_is_logged_and_anneals(tmp_path):
    _, _, header, rows = train_small(tmp_path, "frozenlake", 64, batch_episodes=16, tau=2.0, tau_final=0.5)
    assert header[-1] == "tau"
    taus = [float(row[-1]) for row in rows]
    assert taus[0] == 2.0 and taus[-1] == pytest.approx(2.0 * 0.25 ** (48 / 64), rel=1e-5)


def test_entropy_bonus_is_logged_anneals_and_acts(tmp_path):
    _, _, header, rows = train_small(tmp_path / "bonus", "frozenlake", 64, batch_episodes=16, entropy=0.5,
                                     entropy_final=0.05)
    assert header[-2:] == ["tau", "entropy"]
    bonuses = [float(row[-1]) for row in rows]
    assert bonuses[0] == 0.5 and bonuses[-1] == pytest.approx(0.5 * 0.1 ** (48 / 64), rel=1e-5)
    arrays, _ = runs.load_checkpoint(str(tmp_path / "bonus" / runs.CHECKPOINT_NAME))
    _, _, header, _ = train_small(tmp_path / "none", "frozenlake", 64, batch_episodes=16)
    assert "entropy" not in header
    plain, _ = runs.load_checkpoint(str(tmp_path / "none" / runs.CHECKPOINT_NAME))
    assert not np.array_equal(arrays["w"], plain["w"])


# ---- learning, in seconds (the full targets are in benchmarks/learning/control_targets.py) ----

def test_cliffwalking_learns_the_optimal_path(tmp_path):
    """From a uniform random walk (thousands of steps, falls of -100) to the greedy path along the
    cliff's edge, -13, the optimum: the defaults (entropy bonus 0.5 -> 5e-4, 10,000 episodes, ~25 s).
    Without the bonus the same run settles on a safe path that keeps away from the edge."""
    config, _, _, rows = train_small(tmp_path, "cliffwalking", 10_000)
    assert rewards_of(rows)[:4].mean() < -100
    arrays, _ = runs.load_checkpoint(str(tmp_path / runs.CHECKPOINT_NAME))
    returns = control.evaluate(config, {"w": arrays["w"]}, 3, seed=0)
    assert np.all(returns == -13), returns


def test_cliffwalking_episodes_have_a_step_limit():
    """gymnasium gives CliffWalking no time limit: a greedy policy that walks into a wall (here: left
    from the start) must still end, at the task's limit, not hang pgcore-play."""
    config = control.default_config("cliffwalking")
    w = np.zeros((48, 4))
    w[:, 3] = 1.0  # always left
    returns = control.evaluate(config, {"w": w}, 2, seed=0)
    assert np.array_equal(returns, [-2000.0, -2000.0]), returns


def test_cartpole_learns(tmp_path):
    _, _, _, rows = train_small(tmp_path, "cartpole", 600)
    assert rewards_of(rows)[-50:].mean() >= 150, rewards_of(rows)[-50:].mean()


def test_inverted_pendulum_learns(tmp_path):
    """Its default budget, 1,000 episodes (~20 s): the pole falls after ~5-30 steps at first."""
    config, _, _, rows = train_small(tmp_path, "inverted-pendulum", 1000)
    assert rewards_of(rows)[:16].mean() < 50
    arrays, _ = runs.load_checkpoint(str(tmp_path / runs.CHECKPOINT_NAME))
    returns = control.evaluate(config, {"theta": arrays["theta"]}, 5, seed=0)
    assert returns.mean() >= 500, returns


# ---- command line ----

def test_unknown_task_lists_the_known_ones():
    result = run_cli("pgcore-train", "frozen-lake")
    assert result.returncode == 2
    for name in ("pong", "frozenlake", "taxi", "cliffwalking", "cartpole", "acrobot", "inverted-pendulum"):
        assert name in result.stderr


@pytest.mark.parametrize("args, flag", [(["pong", "--tau", "0.5"], "--tau"), (["cartpole", "--sigma", "1"], "--sigma"),
                                        (["taxi", "--map", "8x8"], "--map"), (["frozenlake", "--envs", "4"], "--envs"),
                                        (["inverted-pendulum", "--entropy", "0.1"], "--entropy"),
                                        (["cartpole", "--frame-input"], "--frame-input")])
def test_a_flag_of_another_task_is_refused(args, flag):
    result = run_cli("pgcore-train", *args)
    assert result.returncode == 2 and flag in result.stderr and "does not apply" in result.stderr


def test_help_shows_the_task_defaults():
    """The per-task defaults in --help come from control.TASKS, so they cannot drift from it."""
    from pgcore import cli
    assert cli._task_defaults("entropy") == "pong: 0; atari: 0; the other tasks: 0.5 for cliffwalking, 0 otherwise"
    assert cli._task_defaults("entropy_final") == "0.0005 for cliffwalking, 0 otherwise"
    assert cli._task_defaults("tau_final") == "0.3 for frozenlake, 0.05 otherwise"
    assert cli._task_defaults("baseline") == "on for taxi and inverted-pendulum, off otherwise"
    assert cli._task_defaults("sigma") == "1"
    assert "(default 0.0005)" in " ".join(run_cli("pgcore-train", "cliffwalking", "--help").stdout.split())


def test_cli_train_resume_and_play(tmp_path):
    run_dir = tmp_path / "run"
    assert run_cli("pgcore-train", "cartpole", "--max-episodes", "16", "--run-dir", run_dir, "--quiet").returncode == 0
    config = runs.read_json(str(run_dir / "config.json"))
    assert config["task"] == "cartpole" and config["config"]["hidden"] == 32
    result = run_cli("pgcore-train", "cartpole", "--resume", run_dir, "--max-episodes", "32", "--quiet")
    assert result.returncode == 0, result.stderr
    _, rows = read_progress_csv(run_dir)
    assert [int(row[0]) for row in rows] == list(range(1, 33))
    wrong = run_cli("pgcore-train", "acrobot", "--resume", run_dir)
    assert wrong.returncode == 2 and "cartpole" in wrong.stderr
    played = run_cli("pgcore-play", "cartpole", "--checkpoint", run_dir, "--episodes", "2")
    assert played.returncode == 0 and "mean return over 2 episode(s)" in played.stdout
    assert run_cli("pgcore-play", "cartpole").returncode == 2, "no checkpoint ships for cartpole"
    assert run_cli("pgcore-play", "taxi", "--checkpoint", run_dir).returncode == 2, "a cartpole checkpoint is not a taxi policy"


def test_a_checkpoint_from_before_the_entropy_bonus_resumes(tmp_path):
    """Checkpoints written before --entropy existed have no entropy settings: they resume without a
    bonus (as they were trained) and progress.csv keeps its columns."""
    run_dir = tmp_path / "run"
    assert run_cli("pgcore-train", "frozenlake", "--max-episodes", "64", "--batch-episodes", "16", "--run-dir", run_dir,
                   "--quiet").returncode == 0
    path = str(run_dir / runs.CHECKPOINT_NAME)
    arrays, meta = runs.load_checkpoint(path)
    for key in ("entropy", "entropy_final"):
        del meta["config"][key]
    runs.save_checkpoint(path, arrays, meta)
    result = run_cli("pgcore-train", "frozenlake", "--resume", run_dir, "--max-episodes", "96", "--quiet")
    assert result.returncode == 0, result.stderr
    header, rows = read_progress_csv(run_dir)
    assert "entropy" not in header and [int(row[0]) for row in rows] == list(range(1, 97))
    assert runs.load_checkpoint(path)[1]["config"]["entropy"] == 0.0


class PoisonedGradients:
    """pgcore.kernels, except that softmax_policy_grad returns NaN."""

    def __getattr__(self, name):
        return getattr(pgcore.kernels, name)

    def softmax_policy_grad(self, *args):
        return np.full_like(pgcore.kernels.softmax_policy_grad(*args), np.nan)


def test_a_non_finite_batch_is_skipped_with_a_warning(tmp_path):
    config = control.default_config("frozenlake", max_episodes=16, batch_episodes=16, run_dir=str(tmp_path),
                                    quiet=True)
    before = control.Tabular(pgcore.kernels, Discrete(16), Discrete(4)).init_params(None, np.float64)["w"]
    with pytest.warns(RuntimeWarning, match="not finite"):
        counters, _ = control.train(config, PoisonedGradients())
    arrays, _ = runs.load_checkpoint(str(tmp_path / runs.CHECKPOINT_NAME))
    assert counters["updates"] == 0 and counters["episode"] == 16
    assert np.array_equal(arrays["w"], before)
