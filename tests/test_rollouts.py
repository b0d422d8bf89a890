"""Learning from rollout segments (--rollout-steps): the collector cuts each emulator's stream
into segments without losing or changing a step, GAE bootstraps at a cut from the value net,
and a run updates every batch of steps however long its games are.

The streams are played for real (sync emulators, so two collectors with one seed play the same
games); runs are short (2 emulators, hidden 8).
"""
import numpy as np
import pytest

import pgcore
import pgcore.kernels as K
from pgcore import pong, runs

from helpers import load_run_checkpoint, read_progress_csv, run_cli, train_run

SEGMENT = 37  # agent steps: a few segments a game, cut at no particular moment


def played_pieces(rollout_steps, calls=1200, seed=5):
    """Every piece a sync collector of 2 emulators hands over in `calls` steps, as
    (env, compact piece, cut, score), playing one fixed small net."""
    config = pong.make_config(envs=2, threads=1, sync=True, hidden=8, rollout_steps=rollout_steps)
    params = pong.initial_params(config)
    collector = pong.Collector(config, K, np.random.default_rng(seed), env_seed=11)
    pieces = []
    try:
        for _ in range(calls):
            ready, _, _ = collector.step(params["w1"], params["w2"], 0)
            for env in ready:
                episode, _, cut, score, _ = collector.piece(env)
                pieces.append((int(env), pong.compact(episode), cut, score))
                collector.release(env)
    finally:
        collector.close()
    return pieces


def steps_of(piece):
    """Each step of a compact piece as (its pixels, signs, logits, action, reward)."""
    starts, indices, signs, logits, actions, rewards = piece
    return [(indices[starts[t]:starts[t + 1]].tolist(), signs[starts[t]:starts[t + 1]].tolist(),
             logits[t].tolist(), int(actions[t]), float(rewards[t])) for t in range(len(actions))]


@pytest.fixture(scope="module")
def streams():
    return played_pieces(0), played_pieces(SEGMENT)


def test_segments_are_the_games_cut_without_a_step_lost_or_changed(streams):
    games, segments = streams
    assert any(not cut for _, _, cut, _ in segments), "no game ended: play longer"
    assert sum(cut for _, _, cut, _ in segments) >= 20
    for env in (0, 1):
        whole = [step for e, piece, _, _ in games if e == env for step in steps_of(piece)]
        cut_stream, carried = [], None
        for e, piece, cut, score in segments:
            if e != env:
                continue
            steps = steps_of(piece)
            if carried is not None:  # a segment begins with the step its predecessor bootstrapped from
                assert steps[0] == carried
            if cut:
                assert len(steps) == SEGMENT + 1 and score is None
                carried = steps[-1]
                steps = steps[:-1]
            else:
                assert len(steps) <= SEGMENT + 1
                carried = None
            cut_stream += steps
        # as far as both have handed over, the two streams are one, step for step
        shared = min(len(cut_stream), len(whole))
        assert shared > 500
        assert cut_stream[:shared] == whole[:shared]


def test_an_ended_game_is_scored_over_all_its_segments(streams):
    games, segments = streams
    game_scores = [(e, score) for e, _, _, score in games]
    segment_scores = [(e, score) for e, _, cut, score in segments if not cut]
    assert segment_scores and segment_scores == game_scores[:len(segment_scores)]
    for _, piece, _, score in games:
        assert score == piece[5].sum()


def value_net_state(config, rng):
    params = pong.initial_params(config)
    params["value_w2"] = rng.standard_normal(config.value_hidden).astype(params["value_w2"].dtype)
    params["value_b"][:] = 0.3
    return params


@pytest.mark.parametrize("lam", [0.0, 0.95])
def test_a_cut_segment_bootstraps_from_the_value_of_its_last_step(streams, lam):
    """Its targets are those of its steps alone, with V of the carried step after them: at lambda
    0 exactly the whole game's one-step TD errors."""
    _, segments = streams
    config = pong.make_config(envs=2, hidden=8, value_hidden=8, rollout_steps=SEGMENT, gae_start_frames=0,
                              gae_lambda=lam)
    state = value_net_state(config, np.random.default_rng(0))
    env, piece, cut, _ = next(item for item in segments if item[2])
    learned, (advantages, returns, value_loss) = pong.rollout_targets(K, piece, state, config, cut=True)
    assert len(learned[4]) == SEGMENT and learned[0][-1] == len(learned[1]) == piece[0][SEGMENT]
    values = pong._values(K, piece, state, config)  # every step's, the carried one's last
    rewards = piece[5][:SEGMENT]
    points = rewards != 0
    if lam == 0.0:
        next_values = np.where(points, 0, np.append(values[1:SEGMENT], values[SEGMENT]))
        np.testing.assert_allclose(advantages, rewards + config.gamma * next_values - values[:SEGMENT], rtol=1e-5,
                                   atol=1e-6)
    np.testing.assert_allclose(returns, advantages + values[:SEGMENT], rtol=1e-6)
    assert value_loss == pytest.approx(0.5 * float(np.sum(advantages.astype(np.float64) ** 2)), rel=1e-4)
    # without the cut, the last step is learned from and nothing comes after it
    learned, (ended, _, _) = pong.rollout_targets(K, piece, state, config, cut=False)
    assert len(learned[4]) == SEGMENT + 1
    assert ended[-1] == pytest.approx(piece[5][-1] - values[-1], rel=1e-5)


def test_segments_need_a_value_net():
    with pytest.raises(runs.SettingError, match="rollout_steps needs advantage gae"):
        pong.check_config(pong.make_config(rollout_steps=128, advantage="returns"))
    with pytest.raises(ValueError, match="rollout_steps"):
        pgcore.Agent("pong", rollout_steps=-1)


@pytest.fixture(scope="module")
def segment_run(tmp_path_factory):
    """3 games of 2 emulators in segments of 50 steps, a batch of 200 steps, 2 passes of 2 updates."""
    return train_run(tmp_path_factory.mktemp("segments") / "run", "--preset", "frame", "--rollout-steps", 50,
                     "--batch-steps", 200, "--epochs", 2, "--minibatches", 2, "--gae-start-frames", 0, episodes=3)


def test_a_segment_run_updates_every_batch_of_steps(segment_run):
    header, rows = read_progress_csv(segment_run)
    steps = [int(row[header.index("steps")]) for row in rows]
    updates = [int(row[header.index("updates")]) for row in rows]
    _, meta = load_run_checkpoint(segment_run)
    assert meta["config"]["rollout_steps"] == 50
    # a game of 2 emulators covers about 2 x its length in steps: far more than one batch of 200
    assert steps[0] > 1000 and updates[0] >= 4 * ((steps[0] - 2 * 50) // 200 - 1)
    assert meta["counters"]["updates"] % 4 == 0 and meta["counters"]["updates"] >= updates[-1]
    assert all(np.isfinite(float(row[header.index("value_loss")])) for row in rows)


def test_a_segment_run_resumes_and_an_old_run_keeps_whole_games(segment_run, tmp_path):
    import shutil
    run_dir = tmp_path / "run"
    shutil.copytree(segment_run, run_dir)
    result = run_cli("pgcore-train", "pong", "--resume", run_dir, "--max-episodes", 4, "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(read_progress_csv(run_dir)[1]) == 4
    saved = dict(load_run_checkpoint(run_dir)[1]["config"])
    saved.pop("rollout_steps")  # a run saved before segments existed learned from whole games
    assert pong.config_from_saved(saved).rollout_steps == 0


def test_row_steps_of_rmsprop_are_the_dense_steps(streams, tmp_path, monkeypatch):
    """With rollouts, RMSProp steps only the first layers' rows each minibatch saw: a learner fed
    the same rollouts with dense steps everywhere ends at the same parameters and optimizer state."""
    _, segments = streams
    ended = {}
    for dense in (False, True):
        with monkeypatch.context() as patch:
            if dense:
                original = pong.Learner.__init__

                def dense_learner(self, *args, **kwargs):
                    original(self, *args, **kwargs)
                    assert set(self.row_ages) == {"w1", "value_w1"}
                    self.row_ages = {}
                patch.setattr(pong.Learner, "__init__", dense_learner)
            config = pong.make_config(envs=2, hidden=8, value_hidden=8, rollout_steps=SEGMENT, batch_steps=4 * SEGMENT,
                                      gae_start_frames=0, quiet=True, checkpoint_every=0,
                                      run_dir=str(tmp_path / f"dense{dense}"))

            def recorded(config, run, learner):
                for _, piece, cut, score in segments:
                    learner.learn(piece, 0, cut, score)
            runs.prepare_run_dir(config.run_dir, resume=False)
            pong.train(config, K, collect=recorded)
            ended[dense] = load_run_checkpoint(config.run_dir)
    (rows, meta), (dense, dense_meta) = ended[False], ended[True]
    assert meta["counters"]["updates"] == dense_meta["counters"]["updates"] >= 40
    assert rows.keys() == dense.keys()
    differences = {name: float(np.abs(rows[name] - dense[name]).max()) for name in rows}
    assert max(differences.values()) < 1e-5, differences
    assert np.abs(rows["w1"] - pong.initial_params(config)["w1"]).max() > 1e-3
