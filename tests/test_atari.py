"""Any Atari game (pgcore.atari): its settings and their checks, the background, the collector's
rewards, a short run that trains, checkpoints and resumes, and the policy that plays from a
checkpoint or a saved file. Runs are short (a few emulators, small nets)."""
import dataclasses

import numpy as np
import pytest

import pgcore
import pgcore.kernels as K
from pgcore import atari, pong, tasks

from helpers import load_run_checkpoint, read_progress_csv

SMALL = dict(envs=4, threads=1, hidden=8, value_hidden=8, rollout_steps=32)


# ---- settings ----

def test_the_game_is_ale_pys_name_and_sets_the_net():
    config = pgcore.agent.make_config("atari", game="SpaceInvaders")
    assert config.game == "space_invaders" and config.task == "atari"
    assert config.input_size() == 2 * 105 * 80 and config.logit_count() == 6
    assert pgcore.agent.make_config("atari", game="boxing").logit_count() == 18
    shapes = tasks.get("atari").policy_shapes(config)
    assert shapes == {"w1": (16800, 200), "w2": (200, 6), "background": (8400,)}
    assert atari.minimal_actions("breakout") == (0, 1, 3, 4)  # NOOP, FIRE, RIGHT, LEFT


@pytest.mark.parametrize("settings_, setting, words", [
    (dict(game="brekout"), "game", "no game 'brekout'; did you mean breakout"),
    (dict(game="nothing_like_a_game"), "game", "roms.get_all_rom_ids"),
    (dict(bits=0), "bits", "bits"), (dict(bits=9), "bits", "bits"),
    (dict(ray="local"), "ray", "ray does not apply to atari"),
    (dict(actions=2), "actions", "actions does not apply to atari"),
    (dict(rollout_steps=16, advantage="returns"), "rollout_steps", "rollout_steps needs advantage gae"),
])
def test_bad_settings_name_themselves(settings_, setting, words):
    with pytest.raises(pgcore.SettingError, match=words) as error:
        pgcore.agent.make_config("atari", **settings_)
    assert error.value.setting == setting


def test_returns_play_whole_games_and_no_reward_cuts_the_advantages():
    config = pgcore.agent.make_config("atari", advantage="returns")
    assert (config.rollout_steps, config.gae_start_frames) == (0, 0)
    rewards = np.array([0.0, 1.0, 0.0, -1.0])
    assert not pong.cuts(config, rewards).any()
    assert pong.cuts(pong.make_config(), rewards).tolist() == [False, True, False, True]  # Pong's points


def test_a_bad_game_on_the_command_line_is_one_line(capsys):
    from pgcore import cli

    assert cli.train_main(["atari", "--game", "brekout", "--max-frames", "1000"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "did you mean breakout" in err and "get_all_rom_ids" in err


# ---- the background ----

def test_background_is_each_pixels_most_frequent_level():
    frames = np.array([[[0, 255, 17]], [[0, 250, 200]], [[1, 16, 201]]], dtype=np.uint8)  # 3 frames of 3 pixels
    # levels at 4 bits: pixel 0: 0, 0, 0; pixel 1: 15, 15, 1; pixel 2: 1, 12, 12
    assert atari.background_of(frames, 4).tolist() == [0, 15, 12]
    assert atari.background_of(frames, 1).tolist() == [0, 1, 1]


def test_the_background_is_the_games_and_the_seeds():
    config = pgcore.agent.make_config("atari", game="breakout", seed=3)
    first, again = atari.estimate_background(config), atari.estimate_background(config)
    assert first.dtype == np.uint8 and first.shape == (8400,) and np.array_equal(first, again)
    assert first.max() < 16 and 0 < (first > 0).mean() < 0.5  # walls and bricks, not the whole screen


# ---- the collector ----

def test_the_learner_sees_the_rewards_sign_and_the_game_its_score():
    """Space Invaders scores 5 to 30 a hit: the episode store holds -1, 0 or +1, the score the sum."""
    config = pgcore.agent.make_config("atari", game="space_invaders", envs=2, threads=1, sync=True, hidden=8,
                                      rollout_steps=0, advantage="gae")
    params = tasks.get("atari").initial_params(config)
    collector = atari.AtariCollector(config, K, np.random.default_rng(0), env_seed=4,
                                     fixed={"background": params["background"]})
    try:
        for _ in range(1500):
            collector.step(params["w1"], params["w2"], 0)
            if collector.scores.max() > 1:
                break
        assert collector.scores.max() > 1, "no hit scored: play longer"
        env = int(collector.scores.argmax())
        rewards = collector.episodes.episode(env)[5]
        assert set(np.unique(rewards).tolist()) <= {0.0, 1.0} and rewards.sum() < collector.scores[env]
    finally:
        collector.close()


@pytest.mark.parametrize("rollout_steps", [0, 16])
def test_a_lost_life_ends_a_piece_and_the_game_plays_on(rollout_steps):
    """--life-cut: Breakout's 5 lives are 4 pieces that end at a lost life, with no score, then
    the game's end with the score of all five (rollout cuts between them with rollout_steps)."""
    config = pgcore.agent.make_config("atari", game="breakout", envs=2, threads=1, sync=True, hidden=8,
                                      rollout_steps=rollout_steps, advantage="gae", life_cut=True)
    params = tasks.get("atari").initial_params(config)
    collector = atari.AtariCollector(config, K, np.random.default_rng(0), env_seed=4,
                                     fixed={"background": params["background"]})
    games = {env: [] for env in range(2)}  # each env's kinds of piece in order: "cut", "life" or the score
    rewards = {env: 0.0 for env in range(2)}
    try:
        for _ in range(6000):
            ready, _, _ = collector.step(params["w1"], params["w2"], 0)
            for env in ready.tolist():
                episode, _, cut, score, game_over = collector.piece(env)
                assert game_over == (score is not None) and not (cut and game_over)
                rewards[env] += float(episode[5][:len(episode[5]) - cut].sum())
                games[env].append("cut" if cut else score if game_over else "life")
                if game_over:
                    assert score == rewards[env]  # the whole game's, every life's pieces
                    rewards[env] = 0.0
                collector.release(env)
            if all(any(not isinstance(kind, str) for kind in kinds) for kinds in games.values()):
                break
    finally:
        collector.close()
    for kinds in games.values():
        first_game = kinds[:[not isinstance(kind, str) for kind in kinds].index(True) + 1]
        assert first_game.count("life") == 4
        assert ("cut" in first_game) == (rollout_steps > 0)


def test_without_life_cut_a_game_is_one_piece():
    config = pgcore.agent.make_config("atari", game="breakout", envs=2, threads=1, sync=True, hidden=8,
                                      rollout_steps=0, advantage="gae", life_cut=False)
    params = tasks.get("atari").initial_params(config)
    collector = atari.AtariCollector(config, K, np.random.default_rng(0), env_seed=4,
                                     fixed={"background": params["background"]})
    try:
        for _ in range(6000):
            ready, _, _ = collector.step(params["w1"], params["w2"], 0)
            if len(ready):
                episode, _, cut, score, game_over = collector.piece(int(ready[0]))
                assert game_over and not cut and score == episode[5].sum()
                break
        else:
            pytest.fail("no game ended: play longer")
    finally:
        collector.close()


# ---- a run ----

@pytest.mark.parametrize("life_cut", [False, True])
def test_a_short_run_learns_checkpoints_and_resumes(tmp_path, life_cut):
    agent = pgcore.Agent("atari", game="breakout", seed=1, life_cut=life_cut, noop_max=5 * life_cut, **SMALL)
    background = agent.params["background"].copy()
    agent.learn(max_frames=40_000, run_dir=tmp_path / "run", quiet=True)
    header, rows = read_progress_csv(tmp_path / "run")
    assert len(rows) >= 2 and header[:5] == ["episode", "frames", "steps", "reward", "running_reward"]
    scores = [float(row[3]) for row in rows]
    assert all(score >= 0 and score == int(score) for score in scores)  # Breakout's scores, not clipped rewards
    arrays, meta = load_run_checkpoint(tmp_path / "run")
    assert meta["config"]["game"] == "breakout" and meta["counters"]["updates"] > 0
    assert arrays["background"].dtype == np.uint8 and np.array_equal(arrays["background"], background)
    assert not np.array_equal(arrays["w1"], tasks.get("atari").initial_params(agent.config)["w1"])
    frames = meta["counters"]["frames"]
    resumed = pgcore.Agent.resume(tmp_path / "run")
    resumed.learn(max_frames=frames + 20_000, quiet=True)
    arrays, meta = load_run_checkpoint(tmp_path / "run")
    assert meta["counters"]["frames"] > frames and np.array_equal(arrays["background"], background)


def test_the_policy_plays_from_a_saved_file(tmp_path):
    agent = pgcore.Agent("atari", game="breakout", seed=2, **SMALL)
    path = agent.save(tmp_path / "policy.npz")
    loaded = pgcore.Agent.load(path)
    assert loaded.params["background"].dtype == np.uint8
    assert np.array_equal(loaded.params["background"], agent.params["background"])
    frames = atari.random_frames(agent.config, steps=3, n_envs=2)  # (6, 105, 80)
    action, state = loaded.predict(frames[0])
    assert 0 <= int(action) < 4 and state.shape == (8400,) and state.dtype == np.uint8
    actions, states = loaded.predict(frames[:3], state=np.zeros((3, 8400), np.uint8))
    assert actions.shape == (3,) and states.shape == (3, 8400)
    greedy = [loaded.predict(frames[1], state)[0] for _ in range(3)]
    assert len(set(int(a) for a in greedy)) == 1  # greedy: the same each time
    with pytest.raises(ValueError, match="observation"):
        loaded.predict(np.zeros((210, 160, 3), np.uint8))
    with pytest.raises(ValueError, match="state"):
        loaded.predict(frames[0], state=np.zeros(6400, np.uint8))
    scores = loaded.evaluate(episodes=1, seed=100, deterministic=False)  # (sampled: it presses FIRE)
    assert scores.shape == (1,) and scores[0] >= 0


def test_runs_saved_before_life_cut_resume_without_it():
    saved = dataclasses.asdict(pgcore.agent.make_config("atari", game="breakout"))
    assert saved.pop("life_cut") is True and saved.pop("noop_max") == 0
    config = tasks.get("atari").config_from_saved(saved)
    assert config.life_cut is False and config.noop_max == 0


def test_atari_configs_resume_as_saved():
    config = pgcore.agent.make_config("atari", game="boxing", bits=3, reward_clip=False, life_cut=True, noop_max=30)
    assert tasks.get("atari").config_from_saved(dataclasses.asdict(config)) == config


@pytest.mark.parametrize("game, beats", [("Freeway", 20), ("Boxing", 50), ("SpaceInvaders", 300)])
def test_the_shipped_policies_win(game, beats):
    """Random play scores about 0 on Freeway and Boxing and 111 on SpaceInvaders; the shipped
    policies, greedy, on a seed no training used, far more."""
    agent = pgcore.Agent.pretrained("atari", game=game)
    assert agent.config.game == atari.rom_id(game) and agent.params["background"].dtype == np.uint8
    scores = agent.evaluate(episodes=1, seed=1000)
    assert scores[0] >= beats
