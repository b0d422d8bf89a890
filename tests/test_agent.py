"""The Python API, pgcore.Agent: each call of the README's example on a tabular, an MLP, a
Gaussian task and Pong (short budgets); the CLI and the API give the same runs; bad settings
raise ValueError naming them; Ctrl-C inside learn saves and returns; a Pong run killed in its
first seconds resumes."""
import dataclasses
import gzip
import os
import signal
import threading
import time

import numpy as np
import pytest

import pgcore
from pgcore import pong, runs
from helpers import SMALL_RUN, load_run_checkpoint, read_progress_csv, run_cli, start_cli

SMALL_PONG = dict(preset="fast", envs=2, hidden=8, batch_episodes=1, sync=True)


@pytest.fixture
def keep_threads():
    """learn() must leave the process-wide kernel thread count as it found it."""
    before = pgcore.get_num_threads()
    yield
    assert pgcore.get_num_threads() == before, "learn() did not restore the kernel thread count"


def rewards(run_dir):
    header, rows = read_progress_csv(run_dir)
    return [row[header.index("reward")] for row in rows]


# ---- the README's calls, per policy family ----

FAMILIES = {  # task: (settings, episodes of a first and a second learn(), one observation)
    "frozenlake": (dict(batch_episodes=8), 16, 24, 0),
    "cartpole": (dict(batch_episodes=8), 16, 24, np.zeros(4)),
    "inverted-pendulum": (dict(batch_episodes=4), 8, 12, np.zeros(4)),
    "pong": (SMALL_PONG, 1, 2, np.zeros((210, 160, 3), np.uint8)),
}


@pytest.mark.parametrize("task", FAMILIES)
def test_every_call_of_the_readme_example(task, tmp_path, keep_threads):
    settings, first, second, observation = FAMILIES[task]
    run_dir = str(tmp_path / "run")
    agent = pgcore.Agent(task, seed=0, **settings)
    assert agent.learn(max_episodes=first, run_dir=run_dir, quiet=True) is agent
    assert agent.counters["episode"] == first and agent.stopped_by is None
    returns = agent.evaluate(episodes=2, seed=10_000)
    assert returns.shape == (2,) and returns.dtype == np.float64
    single, state = agent.predict(observation)
    batch, states = agent.predict(np.stack([observation] * 3))
    assert len(batch) == 3 and np.shape(batch)[1:] == np.shape(single)
    if task == "pong":  # the previous frames, preprocessed
        assert state.shape == (6400,) and states.shape == (3, 6400) and states.dtype == np.uint8
    else:               # no memory
        assert state is None and states is None

    loaded = pgcore.Agent.load(run_dir)
    assert loaded.task == task and all(np.array_equal(loaded.params[k], agent.params[k]) for k in agent.params)
    np.testing.assert_array_equal(loaded.evaluate(episodes=2, seed=10_000), returns)

    resumed = pgcore.Agent.resume(run_dir)
    resumed.learn(max_episodes=second, quiet=True)
    progress = resumed.progress
    assert progress["episode"].tolist() == list(range(1, second + 1))
    assert set(progress) >= {"episode", "frames", "steps", "reward", "running_reward", "wall_s", "updates"}
    assert resumed.counters["segment"] == 1 and resumed.counters["updates"] == progress["updates"][-1]


def test_mlp_task_learn_evaluate_predict_load_resume(tmp_path, keep_threads):
    run_dir = str(tmp_path / "cp")
    agent = pgcore.Agent("cartpole", seed=0, lr=0.01, batch_episodes=8)
    assert agent.learn(max_episodes=32, run_dir=run_dir, quiet=True) is agent
    assert agent.counters["episode"] == 32 and agent.counters["updates"] == 4 and agent.stopped_by is None
    assert sorted(os.listdir(run_dir)) == ["checkpoint.npz", "config.json", "progress.csv", "train.lock"]
    assert runs.read_json(os.path.join(run_dir, "config.json"))["config"]["task"] == "cartpole"

    returns = agent.evaluate(episodes=3, seed=10_000)
    assert returns.shape == (3,) and np.all((returns >= 1) & (returns <= 500))
    observation = np.array([0.01, -0.02, 0.03, 0.0])
    action, state = agent.predict(observation)
    assert np.ndim(action) == 0 and action in (0, 1) and state is None
    batch, _ = agent.predict(np.stack([observation] * 5))
    assert batch.shape == (5,) and np.all(batch == action), "the same state, the same greedy action"

    progress = agent.progress
    assert progress["episode"].tolist() == list(range(1, 33))
    assert progress["reward"].dtype == np.float64 and len(progress["running_reward"]) == 32

    loaded = pgcore.Agent.load(run_dir)
    assert all(np.array_equal(loaded.params[k], agent.params[k]) for k in agent.params)
    np.testing.assert_array_equal(loaded.evaluate(episodes=3, seed=10_000), returns)
    with pytest.raises(ValueError, match="resume"):
        loaded.learn(max_episodes=40)

    for pong_only, takers in (({"preset": "fast"}, "pong"), ({"lr_decay_frames": 1000}, "pong, atari"),
                              ({"workers": 2}, "pong")):
        with pytest.raises(ValueError, match=rf"{next(iter(pong_only))} does not apply to cartpole \(only to {takers}\)"):
            pgcore.Agent.resume(run_dir, **pong_only)
    resumed = pgcore.Agent.resume(run_dir)
    resumed.learn(max_episodes=48, quiet=True)
    assert resumed.progress["episode"].tolist() == list(range(1, 49))
    assert not all(np.array_equal(resumed.params[k], agent.params[k]) for k in agent.params)


def test_learn_again_continues_the_run_as_one_long_run_would(tmp_path, keep_threads):
    twice = pgcore.Agent("cartpole", seed=2, batch_episodes=4)
    twice.learn(max_episodes=12, run_dir=str(tmp_path / "twice"), quiet=True)
    twice.learn(max_episodes=24)
    once = pgcore.Agent("cartpole", seed=2, batch_episodes=4)
    once.learn(max_episodes=24, run_dir=str(tmp_path / "once"), quiet=True)
    assert rewards(twice.run_dir) == rewards(once.run_dir) and len(rewards(once.run_dir)) == 24
    assert all(np.array_equal(twice.params[k], once.params[k]) for k in once.params)


def test_tabular_task_predict_save_load(tmp_path, keep_threads):
    agent = pgcore.Agent("frozenlake", seed=1, batch_episodes=16, max_episodes=64)
    agent.learn(run_dir=str(tmp_path / "fl"), quiet=True)
    assert agent.counters["episode"] == 64
    action, _ = agent.predict(0)
    assert np.ndim(action) == 0 and 0 <= action < 4
    actions, _ = agent.predict(np.arange(16))
    assert actions.shape == (16,) and np.all((actions >= 0) & (actions < 4))
    for bad in (16, -1, 0.5, [[0, 1]], "state"):
        with pytest.raises(ValueError, match="observation"):
            agent.predict(bad)
    path = agent.save(tmp_path / "policy.npz")
    copy = pgcore.Agent.load(path)
    assert copy.task == "frozenlake" and np.array_equal(copy.params["w"], agent.params["w"])
    np.testing.assert_array_equal(copy.evaluate(episodes=20, seed=10_000), agent.evaluate(episodes=20, seed=10_000))
    assert copy.progress == {}, "a saved file is in no run"
    result = run_cli("pgcore-play", "frozenlake", "--checkpoint", path, "--episodes", 20, "--seed", 10_000)
    assert result.returncode == 0, result.stderr[-2000:]
    mean = agent.evaluate(episodes=20, seed=10_000).mean()
    assert f"return over 20 episode(s): {mean:+.2f}" in result.stdout


def test_gaussian_task_predicts_actions_in_the_action_space(tmp_path, keep_threads):
    agent = pgcore.Agent("inverted-pendulum", seed=0, batch_episodes=4)
    agent.learn(max_episodes=8, run_dir=str(tmp_path / "ip"), quiet=True)
    returns = agent.evaluate(episodes=2, seed=10_000)
    assert returns.shape == (2,) and np.all(returns >= 1)
    far = np.array([[0.0, 0.0, 0.0, 0.0], [100.0, -100.0, 100.0, -100.0]])
    actions, _ = agent.predict(far)
    assert actions.shape == (2, 1) and np.all(np.abs(actions) <= 3.0), "clipped to the action space"
    sampled, _ = agent.predict(far[0], deterministic=False)
    assert sampled.shape == (1,)
    with pytest.raises(ValueError, match="observation"):
        agent.predict(np.zeros(3))
    with pytest.raises(ValueError, match="non-finite"):
        agent.predict(np.array([np.nan, 0, 0, 0]))


def test_pong_learn_evaluate_and_predict_from_raw_frames(tmp_path, keep_threads):
    agent = pgcore.Agent("pong", seed=3, **SMALL_PONG)
    agent.learn(max_episodes=2, run_dir=str(tmp_path / "pong"), quiet=True)
    assert agent.counters["episode"] == 2 and agent.counters["updates"] == 8   # 4 passes over each 1-episode batch
    assert agent.params["w1"].shape == (6400, 8)
    scores = agent.evaluate(episodes=1, seed=10_000)
    assert scores.shape == (1,) and -21 <= scores[0] <= 21
    assert agent.progress["episode"].tolist() == [1, 2]
    plain = tmp_path / "pong" / "progress.csv"
    with gzip.open(tmp_path / "pong" / "progress.csv.gz", "wb") as published:  # as published runs keep it
        published.write(plain.read_bytes())
    plain.unlink()
    assert agent.progress["episode"].tolist() == [1, 2], "a run's gzipped progress.csv is its progress too"


def pong_frames_played(steps):
    """Raw frames of a Pong game whose paddle goes up and down in turn."""
    import ale_py
    import gymnasium

    gymnasium.register_envs(ale_py)
    env = gymnasium.make("ALE/Pong-v5", frameskip=4, repeat_action_probability=0.0)
    frames = []
    frame, _ = env.reset(seed=5)
    for step in range(steps):
        frames.append(frame)
        frame = env.step(2 + step % 2)[0]
    env.close()
    return frames


def assert_predicts_from_the_dense_input(agent, frames):
    """Each action is that of the largest logit of the dense input: preprocess(this frame) -
    preprocess(previous frame), followed by preprocess(this frame) with a frame input (one
    logit: up where it is positive; three: down, up, stay). The previous frame is the state
    predict returns, passed back with the next frame."""
    from pgcore import kernels

    w1, w2 = agent.params["w1"], agent.params["w2"]
    previous, state = None, None
    for index, frame in enumerate(frames):
        got, state = agent.predict(frame, state, episode_start=index == 0)
        current = kernels.pong_preprocess(frame)
        assert state.shape == (6400,) and np.array_equal(state, current), "the state is the preprocessed frame"
        x = np.zeros_like(current) if previous is None else current - previous
        if len(w1) == 2 * len(current):
            x = np.concatenate((x, current))
        previous = current
        logits = np.maximum(x @ w1, 0) @ w2
        if w2.ndim == 1:
            logits = np.array([0.0, float(logits)])  # down, up: up where the logit is positive
        ranked = np.sort(logits)
        if ranked[-1] - ranked[-2] > 1e-3:  # far from a tie: the sparse and dense products agree
            assert got == pong.ACTIONS[int(np.argmax(logits))], f"frame {index}: logits {logits}"


def test_pong_predict_sees_the_difference_of_consecutive_frames():
    """predict keeps each game's previous frame, as pgcore-play and the trainer see it."""
    agent = pgcore.Agent.pretrained("pong")
    frames = pong_frames_played(120)
    assert_predicts_from_the_dense_input(agent, frames)
    both, state = agent.predict(np.stack([frames[0], frames[0]]), episode_start=True)
    assert both.shape == (2,) and state.shape == (2, 6400)
    with pytest.raises(ValueError, match="observation"):
        agent.predict(np.zeros((80, 80), np.uint8))


@pytest.mark.parametrize("setting, value, changed", [("frame_input", True, False), ("actions", 3, 2)],
                         ids=["frame-input", "three-actions"])
def test_pong_net_variants_learn_save_and_predict(tmp_path, keep_threads, setting, value, changed):
    """The frame input (w1 of 12800 rows) and three actions (w2 (H, 3), a softmax) train, save,
    load, predict from the dense input and resume; neither may change on resume."""
    agent = pgcore.Agent("pong", seed=3, **{setting: value}, **SMALL_PONG)
    agent.learn(max_episodes=1, run_dir=str(tmp_path / "pong"), quiet=True)
    shapes = {"frame_input": ((12800, 8), (8,)), "actions": ((6400, 8), (8, 3))}[setting]
    assert (agent.params["w1"].shape, agent.params["w2"].shape) == shapes
    learned = pong.initial_params(agent.config)
    assert np.any(agent.params["w1"][6400:] != learned["w1"][6400:]) if setting == "frame_input" else \
        np.all(np.any(agent.params["w2"] != learned["w2"], axis=0)), "the new weights learned nothing"
    frames = pong_frames_played(60)
    for player in (agent, pgcore.Agent.load(agent.run_dir), pgcore.Agent.load(agent.save(tmp_path / "p.npz"))):
        assert_predicts_from_the_dense_input(player, frames)
    if setting == "actions":
        sampled = {int(agent.predict(frame, deterministic=False)[0]) for frame in frames}
        assert sampled <= set(pong.ACTIONS) and len(sampled) >= 2
    resumed = pgcore.Agent.resume(agent.run_dir).learn(max_episodes=2)
    assert resumed.counters["episode"] == 2 and getattr(resumed.config, setting) == value
    with pytest.raises(ValueError, match=f"{setting} cannot change"):
        pgcore.Agent.resume(agent.run_dir, **{setting: changed})


def test_the_shipped_pong_policy_wins_through_the_api():
    scores = pgcore.Agent.pretrained().evaluate(episodes=1, seed=0)
    assert scores[0] > 0
    with pytest.raises(ValueError, match="cartpole"):
        pgcore.Agent.pretrained("cartpole")


def test_pong_plays_without_sticky_actions_when_asked():
    """sticky=0 is deterministic Pong: every seed plays the same greedy game; the run's 0.25 does not."""
    agent = pgcore.Agent.pretrained()
    assert agent.play_config().sticky == 0.25 and agent.play_config(0.0).sticky == 0.0
    assert dataclasses.replace(agent.play_config(0.0), sticky=0.25) == agent.config

    def first_frames(sticky, seed):
        frames = []
        pong.evaluate(agent.play_config(sticky), agent.params, 1, seed, frames=frames)
        return np.stack(frames[:400])

    np.testing.assert_array_equal(first_frames(0.0, 0), first_frames(0.0, 1))
    assert not np.array_equal(first_frames(0.25, 0), first_frames(0.25, 1))
    for sticky in (-0.1, 1.5, float("nan"), "0"):
        with pytest.raises(ValueError, match="sticky must be a number in"):
            agent.evaluate(episodes=1, sticky=sticky)
    cartpole = pgcore.Agent("cartpole", seed=0)
    with pytest.raises(ValueError, match="sticky does not apply to cartpole"):
        cartpole.evaluate(episodes=1, sticky=0.0)


# ---- Stable-Baselines3's conventions: predict's state, deterministic, save / resume, callback ----

def test_pong_predict_keeps_no_game_state_so_callers_may_interleave_games():
    """The state is each game's previous frame, passed back by the caller: one agent plays two games
    interleaved (or as a batch of two) exactly as it plays each alone, and leaves the state it was
    given as it was."""
    agent = pgcore.Agent.pretrained("pong")
    frames = pong_frames_played(80)
    games = frames[:40], frames[40:]

    def alone(game):
        state, actions = None, []
        for frame in game:
            action, state = agent.predict(frame, state)
            actions.append(int(action))
        return actions

    expected = [alone(game) for game in games]
    states, interleaved = [None, None], [[], []]
    for step in range(40):
        for index, game in enumerate(games):
            given = states[index]
            before = None if given is None else given.copy()
            action, states[index] = agent.predict(game[step], given)
            assert given is None or (np.array_equal(given, before) and not np.shares_memory(given, states[index]))
            interleaved[index].append(int(action))
    assert interleaved == expected
    state, batched = None, []
    for step in range(40):
        actions, state = agent.predict(np.stack([games[0][step], games[1][step]]), state)
        batched.append(actions.tolist())
    assert [list(pair) for pair in zip(*expected)] == batched
    # episode_start starts the games it marks: as if their state were None
    _, after_a = agent.predict(games[0][0])
    restarted, _ = agent.predict(games[1][0], after_a, episode_start=True)
    assert int(restarted) == expected[1][0]
    both, _ = agent.predict(np.stack([games[0][1], games[1][0]]), np.stack([after_a, after_a]),
                            episode_start=np.array([False, True]))
    assert both.tolist() == [expected[0][1], expected[1][0]]


def test_predict_refuses_a_bad_state_or_episode_start():
    agent = pgcore.Agent.pretrained("pong")
    frame = np.zeros((210, 160, 3), np.uint8)
    _, state = agent.predict(frame)
    for bad in (np.zeros((2, 6400), np.uint8), state.astype(np.float32), np.full(6400, 2, np.uint8),
                np.zeros(100, np.uint8), "frames", False):
        with pytest.raises(ValueError, match="state"):
            agent.predict(frame, bad)
    with pytest.raises(ValueError, match="state must be None or the state predict returned for 3 frames"):
        agent.predict(np.stack([frame] * 3), np.stack([state] * 2))
    with pytest.raises(ValueError, match="episode_start"):
        agent.predict(np.stack([frame] * 3), episode_start=[True, False])
    with pytest.raises(ValueError, match="deterministic"):
        agent.predict(frame, deterministic="yes")
    cartpole = pgcore.Agent("cartpole", seed=0)
    for bad in (np.zeros(3), False):
        with pytest.raises(ValueError, match="state must be None"):
            cartpole.predict(np.zeros(4), bad)
    with pytest.raises(ValueError, match="episode_start"):
        cartpole.predict(np.zeros((2, 4)), episode_start=np.ones(3, bool))
    assert cartpole.predict(np.zeros((2, 4)), None, np.array([True, False]))[1] is None


def test_evaluate_says_deterministic_not_sample(tmp_path):
    agent = pgcore.Agent("frozenlake", seed=0)
    greedy = agent.evaluate(episodes=20, seed=0)
    np.testing.assert_array_equal(agent.evaluate(episodes=20, seed=0, deterministic=True), greedy)
    sampled = agent.evaluate(episodes=20, seed=0, deterministic=False)
    assert sampled.shape == (20,)
    with pytest.raises(TypeError, match="deterministic=False"):
        agent.evaluate(episodes=20, sample=True)
    with pytest.raises(TypeError):
        agent.evaluate(20, 0, False)  # keyword-only: an old positional `sample` cannot flip its meaning
    with pytest.raises(TypeError, match="unexpected keyword argument 'greedy'"):
        agent.evaluate(greedy=True)
    with pytest.raises(ValueError, match="deterministic"):
        agent.evaluate(episodes=2, deterministic=0)


STOP_AT = 50.0  # the stop_at_475, with a bound that a cartpole run reaches in ~200 episodes


def test_the_stable_baselines3_style_snippet_runs(tmp_path, monkeypatch, keep_threads):
    """model = pgcore.Agent("cartpole"); model.learn(max_episodes=500, callback=stop_at_475);
    action, state = model.predict(obs): the callback sees every finished episode's progress row and
    its False stops the run (after the batch in progress, with a checkpoint)."""
    monkeypatch.chdir(tmp_path)
    rows = []

    def stop_at_475(row):
        rows.append(row)
        if row["running_reward"] >= STOP_AT:
            return False

    model = pgcore.Agent("cartpole")
    model.learn(max_episodes=500, callback=stop_at_475)
    obs = np.array([0.01, -0.02, 0.03, 0.0])
    action, state = model.predict(obs)
    assert action in (0, 1) and state is None

    assert model.stopped_by == "callback"
    assert rows[-1]["running_reward"] >= STOP_AT > max(row["running_reward"] for row in rows[:-1]), \
        "it stopped at the first row that met the condition, and was not called after it"
    batch = model.config.batch_episodes  # the stop takes effect when the batch of that row ends
    assert model.counters["episode"] % batch == 0 and 0 <= model.counters["episode"] - rows[-1]["episode"] < batch
    assert model.counters["episode"] < 500
    assert [row["episode"] for row in rows] == list(range(1, len(rows) + 1))
    progress = model.progress
    assert set(rows[0]) == set(progress) and list(rows[0]) == list(progress)
    assert progress["episode"][-1] == model.counters["episode"]
    for name in progress:
        assert [row[name] for row in rows] == pytest.approx(progress[name][:len(rows)].tolist()), name
    _, meta = load_run_checkpoint(model.run_dir)
    assert meta["counters"] == model.counters


def test_an_exception_in_the_callback_propagates_after_the_checkpoint(tmp_path, keep_threads):
    calls = []

    def broken(row):
        calls.append(row["episode"])
        if row["episode"] == 5:
            raise RuntimeError("the callback broke")

    agent = pgcore.Agent("cartpole", seed=2, batch_episodes=8)
    with pytest.raises(RuntimeError, match="the callback broke"):
        agent.learn(max_episodes=32, run_dir=str(tmp_path / "run"), quiet=True, callback=broken)
    assert calls == [1, 2, 3, 4, 5], "not called again after it raised"
    assert agent.stopped_by == "callback" and agent.run_dir == str(tmp_path / "run")
    _, meta = load_run_checkpoint(agent.run_dir)
    assert meta["counters"]["episode"] == 8 == agent.counters["episode"], "its batch finished and was saved"
    assert agent.progress["episode"].tolist() == list(range(1, 9))
    agent.learn(max_episodes=24)  # nothing lost: it goes on as one run
    once = pgcore.Agent("cartpole", seed=2, batch_episodes=8).learn(max_episodes=24, run_dir=str(tmp_path / "once"),
                                                                   quiet=True)
    assert rewards(agent.run_dir) == rewards(once.run_dir)
    assert all(np.array_equal(agent.params[k], once.params[k]) for k in once.params)
    with pytest.raises(ValueError, match="callback must be callable"):
        agent.learn(max_episodes=32, callback="stop")


def test_a_callback_stops_pong_after_that_game(tmp_path, keep_threads):
    rows = []
    agent = pgcore.Agent("pong", seed=3, **SMALL_PONG)
    agent.learn(max_episodes=3, run_dir=str(tmp_path / "pong"), quiet=True,
                callback=lambda row: rows.append(row) or False)
    assert agent.stopped_by == "callback" and agent.counters["episode"] == 1 and len(rows) == 1
    assert rows[0]["episode"] == 1 and -21 <= rows[0]["reward"] <= 21 and "skipped_updates" in rows[0]
    assert agent.progress["episode"].tolist() == [1]
    agent.learn(callback=lambda row: None)  # None is not False: it goes on to the limit
    assert agent.counters["episode"] == 3 and agent.stopped_by is None


def test_max_episodes_is_exact_for_the_other_tasks(tmp_path, keep_threads):
    """A batch of 16 finishes 16 episodes at once: the run's last batch plays only those left."""
    agent = pgcore.Agent("cartpole", seed=0, batch_episodes=16)
    agent.learn(max_episodes=40, run_dir=str(tmp_path / "run"), quiet=True)
    progress = agent.progress
    assert agent.counters["episode"] == 40 and progress["episode"].tolist() == list(range(1, 41))
    assert progress["updates"].tolist() == [1] * 16 + [2] * 16 + [3] * 8, "the last batch: 8 episodes, one update"
    assert agent.counters["steps"] == progress["steps"][-1] == int(progress["reward"].sum())
    agent.learn(max_episodes=56)
    assert agent.counters["episode"] == 56 and agent.progress["updates"][-16:].tolist() == [4] * 16


def test_save_load_resume_round_trip(tmp_path, keep_threads):
    """Agent.save writes the whole training state (the run's checkpoint): Agent.load plays it,
    Agent.resume continues from its counters in a new run directory that learn must name, as the
    run itself continues."""
    agent = pgcore.Agent("cartpole", seed=5, batch_episodes=8)
    agent.learn(max_episodes=16, run_dir=str(tmp_path / "run"), quiet=True)
    path = agent.save(tmp_path / "saved.npz")
    arrays, meta = runs.load_checkpoint(path)
    run_arrays, run_meta = load_run_checkpoint(agent.run_dir)
    assert arrays.keys() == run_arrays.keys() >= {"w1", "w2", "m_w1", "v_w1", "m_w2", "v_w2", "baseline"}
    assert all(np.array_equal(arrays[k], run_arrays[k]) for k in arrays)
    assert {k: meta[k] for k in ("counters", "rng", "format", "config")} == \
        {k: run_meta[k] for k in ("counters", "rng", "format", "config")}

    loaded = pgcore.Agent.load(path)
    assert all(np.array_equal(loaded.params[k], agent.params[k]) for k in agent.params)
    np.testing.assert_array_equal(loaded.evaluate(episodes=3, seed=10_000), agent.evaluate(episodes=3, seed=10_000))
    assert loaded.counters == agent.counters and loaded.progress == {} and loaded.run_dir is None
    with pytest.raises(ValueError, match="resume"):
        loaded.learn(max_episodes=32)

    resumed = pgcore.Agent.resume(path)
    assert resumed.counters == agent.counters and resumed.run_dir is None
    with pytest.raises(pgcore.SettingError, match="saved.npz is not in a run directory") as error:
        resumed.learn(max_episodes=32)
    assert error.value.setting == "run_dir"
    with pytest.raises(pgcore.RunError, match="already holds a run"):
        resumed.learn(max_episodes=32, run_dir=agent.run_dir)
    resumed.learn(max_episodes=32, run_dir=str(tmp_path / "more"), quiet=True)
    assert resumed.run_dir == str(tmp_path / "more") and resumed.counters["segment"] == 1
    assert resumed.counters["episode"] == 32 and resumed.counters["updates"] == 4
    assert resumed.progress["episode"].tolist() == list(range(17, 33)), "the new run's rows go on from the file's"
    assert load_run_checkpoint(agent.run_dir)[1]["counters"]["episode"] == 16, "the saved run is untouched"
    assert os.path.isfile(path) and runs.load_checkpoint(path)[1]["counters"]["episode"] == 16

    in_place = pgcore.Agent.resume(agent.run_dir).learn(max_episodes=32, quiet=True)  # the run itself, continued
    assert rewards(in_place.run_dir)[16:] == rewards(resumed.run_dir)
    assert all(np.array_equal(in_place.params[k], resumed.params[k]) for k in in_place.params)
    resumed.learn(max_episodes=40)  # later calls continue the new run
    assert resumed.progress["episode"].tolist() == list(range(17, 41))

    result = run_cli("pgcore-train", "cartpole", "--resume", path, "--max-episodes", 24, "--quiet")
    assert result.returncode == 2 and "--run-dir" in result.stderr and "Traceback" not in result.stderr
    result = run_cli("pgcore-train", "cartpole", "--resume", path, "--max-episodes", 24, "--run-dir",
                     tmp_path / "cli", "--quiet")
    assert result.returncode == 0, result.stderr[-2000:]
    assert load_run_checkpoint(tmp_path / "cli")[1]["counters"]["episode"] == 24


def test_an_agent_that_never_learned_saves_a_new_runs_state(tmp_path, keep_threads):
    """Fresh optimizer state and counters at 0: resuming it is the new run itself, bit for bit."""
    agent = pgcore.Agent("cartpole", seed=7, batch_episodes=8)
    path = agent.save(tmp_path / "new.npz")
    arrays, meta = runs.load_checkpoint(path)
    assert meta["counters"]["episode"] == 0 and meta["counters"]["running_reward"] is None
    assert all(np.array_equal(arrays[k], agent.params[k]) for k in agent.params)
    assert not any(arrays[k].any() for k in ("m_w1", "v_w1", "m_w2", "v_w2")) and arrays["baseline"].shape == (0,)
    resumed = pgcore.Agent.resume(path).learn(max_episodes=16, run_dir=str(tmp_path / "resumed"), quiet=True)
    new = pgcore.Agent("cartpole", seed=7, batch_episodes=8).learn(max_episodes=16, run_dir=str(tmp_path / "new"),
                                                                  quiet=True)
    assert rewards(resumed.run_dir) == rewards(new.run_dir)
    assert all(np.array_equal(resumed.params[k], new.params[k]) for k in new.params)


def test_policy_files_play_but_do_not_resume(tmp_path):
    """A file of the parameters alone (Agent.save's format before it saved the whole state, or the
    shipped Pong policy) plays; resuming it is a RunError that says why; an agent loaded from it
    saves a file that resumes from its parameters with fresh optimizer state."""
    agent = pgcore.Agent("frozenlake", seed=0)
    agent._params = {"w": np.random.default_rng(0).normal(size=(16, 4))}
    old = str(tmp_path / "old.npz")
    runs.save_checkpoint(old, agent.params, {"config": dataclasses.asdict(agent.config),
                                             "format": pgcore.agent.POLICY_FORMAT})
    loaded = pgcore.Agent.load(old)
    assert np.array_equal(loaded.params["w"], agent.params["w"]) and loaded.counters is None
    np.testing.assert_array_equal(loaded.evaluate(episodes=10, seed=0), agent.evaluate(episodes=10, seed=0))
    for policy_file in (old, pgcore.tasks.get("pong").packaged_policy):
        with pytest.raises(pgcore.RunError, match="holds the parameters only, no optimizer state"):
            pgcore.Agent.resume(policy_file)
    again = pgcore.Agent.resume(loaded.save(tmp_path / "again.npz"))
    assert np.array_equal(again.params["w"], agent.params["w"]) and again.counters["episode"] == 0

    shipped = pgcore.Agent.pretrained("pong")
    fine_tune = pgcore.Agent.resume(shipped.save(tmp_path / "pong.npz"))
    assert fine_tune.counters["episode"] == 0 and fine_tune.config.task == "pong"
    assert all(np.array_equal(fine_tune.params[k], shipped.params[k]) for k in ("w1", "w2"))


# ---- the CLI and the API are the same runs ----

def test_cli_and_api_give_the_same_cartpole_run(tmp_path, keep_threads):
    settings = ["--seed", 4, "--batch-episodes", 8, "--lr", 0.02, "--hidden", 16]
    result = run_cli("pgcore-train", "cartpole", *settings, "--max-episodes", 32, "--run-dir", tmp_path / "cli",
                     "--quiet")
    assert result.returncode == 0, result.stderr[-2000:]
    agent = pgcore.Agent("cartpole", seed=4, batch_episodes=8, lr=0.02, hidden=16)
    agent.learn(max_episodes=32, run_dir=str(tmp_path / "api"), quiet=True)
    assert rewards(tmp_path / "cli") == rewards(agent.run_dir) and len(rewards(agent.run_dir)) == 32
    cli_config = runs.read_json(str(tmp_path / "cli" / "config.json"))["config"]
    api_config = runs.read_json(os.path.join(agent.run_dir, "config.json"))["config"]
    assert {k: v for k, v in cli_config.items() if k != "run_dir"} == {k: v for k, v in api_config.items()
                                                                      if k != "run_dir"}


def test_cli_and_api_give_the_same_pong_run(small_run, tmp_path, keep_threads):
    """small_run is `pgcore-train pong SMALL_RUN --seed 3 --max-episodes 2` (a --sync run)."""
    assert "--sync" in SMALL_RUN and "--epochs" in SMALL_RUN
    agent = pgcore.Agent("pong", seed=3, **SMALL_PONG, epochs=1, minibatches=1)   # SMALL_RUN's one update a batch
    agent.learn(max_episodes=2, run_dir=str(tmp_path / "api"), quiet=True)
    assert rewards(small_run) == rewards(agent.run_dir)
    cli, _ = load_run_checkpoint(small_run)
    assert all(np.array_equal(cli[k], agent.params[k]) for k in ("w1", "w2"))


# ---- settings: one check, the CLI's bounds ----

@pytest.mark.parametrize("task, settings, name", [
    ("cartpole", {"lr": 0}, "lr"), ("cartpole", {"lr": 1.5}, "lr"), ("pong", {"lr": float("nan")}, "lr"),
    ("pong", {"envs": 0}, "envs"), ("pong", {"gamma": 2}, "gamma"), ("pong", {"sticky": -0.1}, "sticky"),
    ("pong", {"hidden": 2.5}, "hidden"), ("cartpole", {"hidden": 0}, "hidden"), ("taxi", {"tau": 0}, "tau"),
    ("pong", {"threads": 0}, "threads"), ("cartpole", {"backend": "fortran"}, "backend"),
    ("pong", {"max_episodes": -1}, "max_episodes"), ("pong", {"checkpoint_minutes": -1}, "checkpoint_minutes"),
    ("cartpole", {"max_minutes": -1}, "max_minutes"), ("pong", {"max_minutes": float("nan")}, "max_minutes"),
    ("pong", {"tau": 1.0}, "tau"), ("cartpole", {"envs": 4}, "envs"), ("cartpole", {"bogus": 1}, "bogus"),
    ("pong", {"preset": "slow"}, "preset"), ("tetris", {}, "tetris"), ("pong", {"batch_episodes": True}, "batch"),
])
def test_a_bad_setting_raises_value_error_naming_it(task, settings, name):
    with pytest.raises(ValueError, match=name):
        pgcore.Agent(task, **settings)


def test_too_big_a_network_is_a_setting_error_not_a_memory_error():
    with pytest.raises(ValueError, match="hidden=100000000 needs about .* GiB"):
        pgcore.Agent("pong", hidden=100_000_000)
    result = run_cli("pgcore-train", "pong", "--hidden", 100_000_000, "--quiet")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--hidden" in result.stderr and "GiB" in result.stderr


def test_max_minutes_limits_the_training_time_over_every_segment(tmp_path, keep_threads):
    limit = 0.02                                  # minutes: 1.2 s of cartpole, many episodes
    agent = pgcore.Agent("cartpole", seed=1).learn(max_episodes=0, max_minutes=limit, run_dir=str(tmp_path / "run"),
                                                    quiet=True)
    first = dict(agent.counters)
    assert first["episode"] > 0 and 60 * limit <= first["wall_s"] < 60 * limit + 30
    # a resumed run counts the wall time of its earlier segments: a new limit is a total
    total = first["wall_s"] / 60 + limit          # the first segment overran its limit by its last batch
    again = pgcore.Agent.resume(agent.run_dir, max_minutes=total).learn()
    assert again.counters["episode"] > first["episode"]
    assert 60 * total <= again.counters["wall_s"] < 60 * total + 30
    # the limit is saved with the run: resuming without a new one trains no further
    done = pgcore.Agent.resume(agent.run_dir).learn()
    assert done.counters["episode"] == again.counters["episode"]


def test_resume_refuses_to_change_the_runs_own_settings(small_run_copy):
    with pytest.raises(ValueError, match="hidden cannot change"):
        pgcore.Agent.resume(small_run_copy, hidden=16)
    result = run_cli("pgcore-train", "pong", "--resume", small_run_copy, "--hidden", "16", "--quiet")
    assert result.returncode == 2 and "--hidden" in result.stderr and "Traceback" not in result.stderr
    with pytest.raises(ValueError, match="lr must be a number"):
        pgcore.Agent.resume(small_run_copy, lr=-1.0)
    with pytest.raises(ValueError, match="threads"):
        pgcore.Agent.resume(small_run_copy, threads=0)


def test_a_preset_on_resume_must_describe_the_run(small_run_copy):
    """small_run is a `--preset fast` run (two actions, returns, one update a batch)."""
    assert pgcore.Agent.resume(small_run_copy, preset="fast", epochs=1, minibatches=1).config.actions == 2
    with pytest.raises(ValueError, match="preset 'gae' does not describe this run: it sets actions 3"):
        pgcore.Agent.resume(small_run_copy, preset="gae", epochs=1, minibatches=1)
    with pytest.raises(ValueError, match="preset 'fast' does not describe this run: it sets epochs 4"):
        pgcore.Agent.resume(small_run_copy, preset="fast")
    with pytest.raises(ValueError, match="preset must be one of"):
        pgcore.Agent.resume(small_run_copy, preset="fastest")
    result = run_cli("pgcore-train", "pong", "--resume", small_run_copy, "--preset", "gae", "--quiet")
    assert result.returncode == 2 and "--preset" in result.stderr and "Traceback" not in result.stderr


def test_one_function_opens_every_kind_of_checkpoint(small_run, tmp_path):
    from pgcore.agent import open_checkpoint

    assert open_checkpoint(small_run).config.task == "pong"
    assert open_checkpoint(os.path.join(small_run, "checkpoint.npz"), for_training=True).run_dir == small_run
    shipped = open_checkpoint(pgcore.tasks.get("pong").packaged_policy)
    assert shipped.config.task == "pong" and shipped.arrays["w1"].dtype == np.float16 and shipped.run_dir == ""
    with pytest.raises(runs.RunError, match="corrupt|optimizer|missing"):
        open_checkpoint(pgcore.tasks.get("pong").packaged_policy, for_training=True)
    with pytest.raises(runs.RunError, match="not found"):
        open_checkpoint(tmp_path / "nothing")


# ---- stopping and resuming ----

def test_ctrl_c_inside_learn_saves_and_returns(tmp_path, keep_threads):
    agent = pgcore.Agent("pong", seed=1, envs=2, hidden=8)
    handler = signal.getsignal(signal.SIGINT)
    timer = threading.Timer(4.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        agent.learn(run_dir=str(tmp_path / "run"), quiet=True)  # no limit: only the Ctrl-C ends it
    finally:
        timer.cancel()
    assert agent.stopped_by == "Ctrl-C"
    arrays, meta = load_run_checkpoint(agent.run_dir)
    assert meta["counters"]["steps"] == agent.counters["steps"] > 0
    np.testing.assert_array_equal(arrays["w1"], agent.params["w1"])
    assert signal.getsignal(signal.SIGINT) is handler, "learn() left its signal handler in place"


def _wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _saved_episodes(run_dir):
    try:
        return load_run_checkpoint(run_dir)[1]["counters"]["episode"]
    except (OSError, ValueError, KeyError, EOFError):
        return -1  # not written yet, or being replaced


@pytest.mark.parametrize("when", ["before any episode ends", "after checkpoints by time"])
def test_a_pong_run_killed_in_its_first_seconds_resumes(tmp_path, when):
    """SIGKILL (nothing saved at the kill) early in a run: a new run saves a checkpoint as it starts,
    and one every --checkpoint-minutes (here 0.6 s, with --checkpoint-every far away), so there is
    always a run to resume, and the resumed progress.csv has every episode once."""
    run_dir = str(tmp_path / "run")
    process = start_cli("pgcore-train", "pong", "--envs", 2, "--hidden", 8, "--quiet", "--run-dir", run_dir,
                        "--checkpoint-every", 1000, "--checkpoint-minutes", 0.01)
    try:
        if when == "before any episode ends":
            _wait_for(lambda: _saved_episodes(run_dir) == 0 or process.poll() is not None, 60, "the first checkpoint")
        else:
            _wait_for(lambda: _saved_episodes(run_dir) >= 2 or process.poll() is not None, 90, "checkpoints by time")
        assert process.poll() is None, process.communicate()[1][-2000:]
        process.kill()
        process.communicate()
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    saved = _saved_episodes(run_dir)
    assert saved >= (0 if when == "before any episode ends" else 2)
    result = run_cli("pgcore-train", "pong", "--resume", run_dir, "--max-episodes", saved + 2, "--quiet")
    assert result.returncode == 0, result.stderr[-2000:]
    _, meta = load_run_checkpoint(run_dir)
    assert meta["counters"]["episode"] == saved + 2 and meta["counters"]["segment"] == 1
    header, rows = read_progress_csv(run_dir)
    assert [int(row[0]) for row in rows] == list(range(1, saved + 3))


def test_the_errors_are_exported_from_pgcore(tmp_path):
    """A bad setting raises pgcore.SettingError (a ValueError naming the setting); a run directory
    or checkpoint that cannot be used, pgcore.RunError."""
    assert {"SettingError", "RunError"} <= set(pgcore.__all__)
    assert pgcore.SettingError is runs.SettingError and pgcore.RunError is runs.RunError
    assert issubclass(pgcore.SettingError, ValueError)
    with pytest.raises(pgcore.SettingError, match="lr") as error:
        pgcore.Agent("cartpole", lr=-1)
    assert error.value.setting == "lr"
    with pytest.raises(pgcore.RunError, match="not found"):
        pgcore.Agent.load(tmp_path / "no-such-run")


def test_progress_csv_has_one_reader(tmp_path):
    """runs.read_progress, which Agent.progress and pgcore-plot call: whole-number columns as
    int64, the others float64, a torn last line (no newline yet) left out, progress.csv.gz read
    as progress.csv, damage a RunError."""
    from pgcore import plot

    header = ",".join(runs.PROGRESS_COLUMNS + ["updates", "value_loss"])
    path = tmp_path / "progress.csv"
    path.write_text(header + "\n1,3400,850,-21.0,-21.0,1.5,566.7,0,0.5\n2,6900,1730,-20.0,-20.99,3.25,532.3,1,nan\n"
                    "3,10300,25")
    columns = runs.read_progress(tmp_path)
    assert list(columns) == header.split(",")
    assert columns["episode"].tolist() == [1, 2] and columns["episode"].dtype == np.int64
    assert columns["frames"].dtype == np.int64 and columns["updates"].tolist() == [0, 1]
    assert columns["reward"].dtype == np.float64 and columns["running_reward"].tolist() == [-21.0, -20.99]
    assert np.isnan(columns["value_loss"][1])
    assert plot.read_progress(tmp_path).keys() == columns.keys()
    with gzip.open(tmp_path / "progress.csv.gz", "wt") as published:  # a published run's, gzipped
        published.write(path.read_text())
    path.unlink()
    gzipped = runs.read_progress(tmp_path)
    assert gzipped.keys() == columns.keys() and all(np.array_equal(gzipped[name], columns[name], equal_nan=True)
                                                   for name in columns)
    (tmp_path / "progress.csv.gz").unlink()
    path.write_text(header + "\n")
    assert all(len(values) == 0 for values in runs.read_progress(tmp_path).values())
    with pytest.raises(runs.RunError, match="no finished episodes"):
        plot.read_progress(tmp_path)
    path.write_text(header + "\n1,3400,850\n2,6900,1730,-20.0,-20.99,3.25,532.3,1,0.1\n")
    with pytest.raises(runs.RunError, match="malformed row"):
        runs.read_progress(tmp_path)
    path.write_text("episode,frames\n1,2\n")
    with pytest.raises(runs.RunError, match="lacks the columns"):
        runs.read_progress(tmp_path)
    with pytest.raises(runs.RunError, match="no progress.csv"):
        runs.read_progress(tmp_path / "elsewhere")
