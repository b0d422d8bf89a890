"""benchmarks/learning/vs_sb3.py (SB3's PPO beside pgcore): its one-line errors, checked before
torch is imported, and, where stable-baselines3 and torch are installed, a few seconds of a run."""
import csv
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "learning" / "vs_sb3.py"
COLUMNS = ["episode", "frames", "steps", "reward", "running_reward", "wall_s", "steps_per_s", "updates"]
HAVE_SB3 = all(importlib.util.find_spec(name) is not None for name in ("stable_baselines3", "torch", "cv2"))


def run_script(*args, env=None, timeout=60):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.fixture
def poisoned_imports(tmp_path):
    """An environment in which importing torch or stable_baselines3 fails loudly: a run that gets
    as far as importing them exits 2 with the 'needed' message, not the argument's error."""
    fakes = tmp_path / "fakes"
    for name in ("torch", "stable_baselines3"):
        (fakes / name).mkdir(parents=True)
        (fakes / name / "__init__.py").write_text("raise ImportError('poisoned for the test')\n")
    return dict(os.environ, PYTHONPATH=str(fakes))


@pytest.mark.parametrize("args, named", [
    (["--minutes", "0"], "--minutes"),
    (["--minutes", "-1"], "--minutes"),
    (["--minutes", "soon"], "--minutes"),
    (["--minutes", "nan"], "--minutes"),
    ([], "--minutes"),
    (["--minutes", "1", "--threads", "0"], "--threads"),
    (["--minutes", "1", "--envs", "1.5"], "--envs"),
    (["--minutes", "1", "--sticky", "1.5"], "--sticky"),
    (["--minutes", "1", "--seed", "-3"], "--seed"),
    (["--minutes", "1", "--max-frames", "-1"], "--max-frames"),
    (["--minutes", "1", "--game", "ALE/Pong-v5"], "--game"),
])
def test_bad_arguments_one_line_before_torch(args, named, poisoned_imports, tmp_path):
    result = run_script(*args, "--run-dir", str(tmp_path / "run"), env=poisoned_imports)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "error" in lines[0] and named in lines[0], result.stderr
    assert not (tmp_path / "run").exists()


def test_run_dir_with_progress_refused(poisoned_imports, tmp_path):
    (tmp_path / "progress.csv").write_text("episode\n")
    result = run_script("--minutes", "1", "--run-dir", str(tmp_path), env=poisoned_imports)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "progress.csv" in result.stderr


def test_missing_sb3_says_how_to_install(poisoned_imports, tmp_path):
    result = run_script("--minutes", "1", "--run-dir", str(tmp_path / "run"), env=poisoned_imports)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install" in lines[0] and "stable-baselines3" in lines[0], result.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(not HAVE_SB3, reason="stable-baselines3 not installed: pip install '.[sb3]'")
def test_short_run_writes_pgcore_run_dir(tmp_path):
    run_dir = tmp_path / "sb3"
    # 2 envs x 128 steps a rollout: 2048 frames are two rollouts and a PPO train() between them
    result = run_script("--minutes", "2", "--max-frames", "2048", "--envs", "2", "--threads", "1",
                        "--run-dir", str(run_dir), timeout=300)
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert "frames/s" in last and "running reward" in last
    with open(run_dir / "progress.csv", newline="") as f:
        assert next(csv.reader(f)) == COLUMNS  # rows come with finished games: none in so few frames
    config = json.loads((run_dir / "config.json").read_text())
    assert config["env_id"] == "ALE/Pong-v5"
    assert config["hyperparameters"]["n_steps"] == 128 and config["hyperparameters"]["batch_size"] == 256
    for package in ("stable_baselines3", "torch", "gymnasium", "ale_py", "cpu"):
        assert config["machine"][package]
    assert config["result"]["frames"] >= 2048 and config["result"]["updates"] == 4  # 4 epochs x 1 minibatch
