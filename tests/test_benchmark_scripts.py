"""The benchmark scripts still run: each with tiny settings (seconds, not the minutes of a real
measurement), in a subprocess, exit 0 and print their table's rows. What they measure is not
checked here, only that the API they call has not drifted from under them.

benchmarks/ is not in the wheel: the scripts are found beside tests/ (CI runs pytest from the
repository root), and these tests are skipped when they are not there.
"""
import dataclasses
import gzip
import importlib.util
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import pgcore

BENCHMARKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "benchmarks")
pytestmark = pytest.mark.skipif(not os.path.isdir(BENCHMARKS),
                                reason=f"no benchmarks/ beside tests/ ({os.path.abspath(BENCHMARKS)}): "
                                       "run the tests from a source checkout")


def run_script(path, *args, cwd, timeout=120):
    """Runs benchmarks/PATH with this Python; returns its stdout (fails with its stderr unless exit 0)."""
    result = subprocess.run([sys.executable, os.path.join(BENCHMARKS, path), *map(str, args)], cwd=cwd,
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{path} exited {result.returncode}:\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray is not installed (pip install 'pgcore[ray]')")
def test_bench_ray(tmp_path):
    """The single process against one Ray worker, then the learner's capacity (pong.Learner fed
    real episodes: its counters are runs.Run's)."""
    out = run_script("speed/bench_ray.py", "--seconds", 2, "--repeats", 1, "--envs", 2, "--threads", 1,
                     "--workers", 1, "--capacity-batches", 1, "--batch-episodes", 1, cwd=tmp_path)
    assert re.search(r"^\| single \| 1 x \(2, 1\) \| [\d,]+ \| 1\.00 \|$", out, re.MULTILINE), out
    assert re.search(r"^\| ray1 \| 1 x \(2, 1\) \| [\d,]+ \| \d+\.\d\d \|$", out, re.MULTILINE), out
    assert re.search(r"^learner: \d+\.\d ms per episode .* absorbs [\d,]+ frames/s", out, re.MULTILINE), out


def test_bench_train(tmp_path):
    out = run_script("speed/bench_train.py", "--seconds", 2, "--repeats", 1, "--envs", 2, "--threads", 1,
                     "--kinds", "cython", cwd=tmp_path)
    assert re.search(r"^round 1: cython +[\d,]+ frames/s", out, re.MULTILINE), out
    assert re.search(r"^\| cython \| [\d,]+ \| - \| - \| [\d,]+ \| - \|$", out, re.MULTILINE), out


def test_bench_train_on_a_game(tmp_path):
    out = run_script("speed/bench_train.py", "--seconds", 3, "--repeats", 1, "--envs", 4, "--threads", 1,
                     "--game", "breakout", cwd=tmp_path)
    assert re.search(r"^\| emulator \| [\d,]+ \| 1\.00 \| ", out, re.MULTILINE), out
    assert re.search(r"^\| atari \| [\d,]+ \| \d\.\d\d \| - \| [\d,]+ \| -?\d+\.\d \|$", out, re.MULTILINE), out


def test_atari_scores(tmp_path):
    """Two marks of a made-up run: its settings off the defaults, the mean of its last games by each
    mark, "-" past its end, its frames a second; random play. Rows come grouped by game."""
    run = tmp_path / "run"
    run.mkdir()
    config = pgcore.agent.make_config("atari", game="breakout", seed=3, lr=1e-3, entropy=0.01, max_minutes=20)
    (run / "config.json").write_text(json.dumps({"config": dataclasses.asdict(config)}))
    rows = ["episode,frames,steps,reward,running_reward,wall_s,steps_per_s"] + [
        f"{i + 1},{(i + 1) * 1000},{(i + 1) * 250},{i % 4},0,{(i + 1) * 6},42" for i in range(200)]  # 20 minutes
    (run / "progress.csv").write_text("\n".join(rows) + "\n")
    sb3 = tmp_path / "sb3"  # vs_sb3.py's run directory: its config.json's settings and env
    sb3.mkdir()
    (sb3 / "config.json").write_text(json.dumps({"settings": {"game": "Breakout", "seed": 0, "sticky": 0.25},
                                                 "env": {"frameskip": 4},
                                                 "result": {"wall_s": 1800.0, "frames": 200_000}}))
    with gzip.open(sb3 / "progress.csv.gz", "wt") as published:  # as published runs keep it
        published.write("\n".join(rows) + "\n")
    pong_run = tmp_path / "pong_run"  # (another game: its row comes after both of Breakout's)
    pong_run.mkdir()
    (pong_run / "config.json").write_text(json.dumps({"config": dataclasses.asdict(
        pgcore.agent.make_config("atari", game="pong"))}))
    (pong_run / "progress.csv").write_text("\n".join(rows) + "\n")
    out = run_script("learning/atari_scores.py", run, pong_run, sb3, "--minutes", "10,30", "--last", 4, "--random", 2,
                     "--plot", tmp_path / "curves.png", cwd=tmp_path)
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", out
    # by 10 minutes games 1..100 ended: the last 4 scored 0, 1, 2, 3 (1.5), at 100,000 frames; 1,000 frames in 6 s
    table = [line for line in out.splitlines() if line.startswith("| ")]
    assert re.fullmatch(rf"\| {re.escape(str(run))} \| pgcore \| breakout \| --lr 0\.001 --entropy 0\.01 \| 3 \| "
                        r"1\.5 \(0\.1 M\) \| - \| 167 \| \d+\.\d \|", table[2]), out
    # SB3's run ended at 30 minutes, though its last game did at 20: by 30 minutes, games 1..200 had
    assert re.fullmatch(rf"\| {re.escape(str(sb3))} \| SB3 PPO \| breakout \| RL Zoo's \| 0 \| 1\.5 \(0\.1 M\) \| "
                        r"1\.5 \(0\.2 M\) \| 167 \| \d+\.\d \|", table[3]), out
    assert re.fullmatch(rf"\| {re.escape(str(pong_run))} \| pgcore \| pong \| defaults \| 0 \| .*", table[4]), out
    # by 50,000 frames games 1..50 ended: the last 4 scored 2, 3, 0, 1 (1.5); 300,000 is past the run's end
    out = run_script("learning/atari_scores.py", run, "--frames", "50000,300000", "--last", 4, cwd=tmp_path)
    assert "| 0.05 M frames | 0.3 M frames |" in out, out
    assert re.search(rf"^\| {re.escape(str(run))} \| pgcore \| breakout \| .* \| 3 \| 1\.5 \| - \| 167 \| - \|$", out,
                     re.MULTILINE), out


def test_atari_scores_curve_is_the_tables_mean():
    """The mean the table's cells and the curve --plot draws both take: at each game, that of the
    last games ended by it."""
    spec = importlib.util.spec_from_file_location("atari_scores", os.path.join(BENCHMARKS, "learning/atari_scores.py"))
    atari_scores = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(atari_scores)
    rewards = np.random.default_rng(0).normal(size=37)
    expected = [rewards[max(0, i + 1 - 5):i + 1].mean() for i in range(37)]
    np.testing.assert_allclose(atari_scores.last_mean(rewards, 5), expected)


def test_control_targets(tmp_path):
    """Two tasks on a budget of 64 episodes (--max-episodes: far from their targets)."""
    out = run_script("learning/control_targets.py", "--tasks", "cartpole,frozenlake", "--backends", "cython",
                     "--max-episodes", 64, "--out", tmp_path / "table.md", cwd=tmp_path)
    for task in ("cartpole", "frozenlake"):
        assert re.search(rf"^\| {task} \| 0 \| cython \| 64 \| [\d,]+ \| ", out, re.MULTILINE), out
    table = (tmp_path / "table.md").read_text().splitlines()
    assert table[0].startswith("| task | seed | backend |") and len(table) == 4


def test_pong_milestones(tmp_path):
    """It reads any run's progress.csv: a 32-episode cartpole run stands in for a Pong run."""
    run_dir = tmp_path / "run"
    pgcore.Agent("cartpole", seed=0).learn(max_episodes=32, run_dir=run_dir, quiet=True)
    out = run_script("learning/pong_milestones.py", run_dir, "--thresholds", "0,1000", cwd=tmp_path)
    assert re.search(r"^\| 0 \| 1 \| 0\.0 M \| 0 min \|$", out, re.MULTILINE), out
    assert re.search(r"^\| 1000 \| not yet \| \| \|$", out, re.MULTILINE), out
    assert re.search(r"^last row: episode 32, ", out, re.MULTILINE), out
    out = run_script("learning/pong_milestones.py", run_dir, run_dir, "--at-frames", "0.000001", cwd=tmp_path)
    assert len(re.findall(rf"^\| {re.escape(str(run_dir))} \| -?\d+\.\d \| ", out, re.MULTILINE)) == 2, out


def test_input_sparsity(tmp_path):
    out = run_script("atari/input_sparsity.py", "--games", "Pong", "--steps", 8, "--envs", 2, "--threads", 1,
                     cwd=tmp_path)
    assert re.search(r"^\| Pong \| 6 \| \d+\.\d\d% \| \d+\.\d\d% \| [\d,]+, [\d,]+ \| \d+\.\d\d% \|$", out,
                     re.MULTILINE), out


def test_ship_policy_ships_an_atari_game(tmp_path, monkeypatch):
    """A run's policy written where Atari's shipped policies are found: Agent.pretrained and
    pgcore-play's checks find it by its game, in float16 with the background as it was."""
    from pgcore import atari, cli, play, tasks

    agent = pgcore.Agent("atari", game="breakout", seed=2, envs=2, threads=1, hidden=8, value_hidden=8,
                         rollout_steps=16)
    agent.learn(max_frames=2_000, run_dir=tmp_path / "run", quiet=True)
    monkeypatch.setattr(atari, "SHIPPED_DIR", str(tmp_path / "shipped"))
    with pytest.raises(ValueError, match="Atari policies ship for: none"):
        pgcore.Agent.pretrained("atari", game="Breakout")
    run_script("learning/ship_policy.py", tmp_path / "run", "--note", "a test", "--out",
               tmp_path / "shipped" / "breakout.npz", cwd=tmp_path)
    assert list(tasks.get("atari").shipped_policies()) == ["breakout"]
    shipped = pgcore.Agent.pretrained("atari", game="Breakout")
    assert shipped.config.game == "breakout" and shipped.run_dir is None
    assert np.array_equal(shipped.params["background"], agent.params["background"])
    assert np.array_equal(shipped.params["w1"], agent.params["w1"].astype(np.float16))
    with pytest.raises(ValueError, match="name the game"):
        pgcore.Agent.pretrained("atari")
    with pytest.raises(ValueError, match="no trained policy ships for the game 'pong'.*ship for: breakout"):
        pgcore.Agent.pretrained("atari", game="pong")
    assert cli.parse_play_args(["atari", "--game", "Breakout"]).game == "Breakout"
    with pytest.raises(SystemExit):
        cli.parse_play_args(["atari", "--game", "pong"])
    scores = play.play("atari", None, 1, 100, sample=True, game="breakout")
    assert scores.shape == (1,) and scores[0] >= 0
