"""The command line: pgcore-play, pgcore-plot, errors (exit code 2, one line, no traceback)
and stopping a training run with Ctrl-C or SIGTERM. Console scripts run as subprocesses.
"""
import dataclasses
import json
import os
import re
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import (PROGRESS_HEADER, load_run_checkpoint, read_progress_csv, run_cli, start_cli,
                    write_run_checkpoint)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ALE_BANNER = ("A.L.E: Arcade Learning Environment", "[Powered by Stella]")


def stderr_lines(stderr):
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith(ALE_BANNER)]


def assert_user_error(result, *needles, usage_ok=False):
    """Exit code 2, no traceback, one error line naming `needles`. argparse errors
    (`usage_ok`) may print argparse's usage block before their one error line."""
    assert result.returncode == 2, f"exit code {result.returncode}, stderr:\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr, f"traceback on stderr:\n{result.stderr[-3000:]}"
    lines = stderr_lines(result.stderr)
    assert lines, "no message on stderr"
    message = lines[-1]
    if usage_ok:
        before = lines[:-1]
        assert all(line.startswith("usage:") or line.startswith(" ") for line in before), lines
    else:
        assert len(lines) == 1, f"more than one line on stderr: {lines}"
    assert "error" in message.lower(), message
    for needle in needles:
        assert needle.lower() in message.lower(), f"{needle!r} not in {message!r}"
    return message


# ---------------------------------------------------------------------------
# pgcore-play
# ---------------------------------------------------------------------------

def check_play_output(result):
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    games = re.findall(r"game 1: score ([+-]?\d+)", result.stdout)
    assert len(games) == 1, result.stdout
    assert -21 <= int(games[0]) <= 21
    assert re.search(r"mean score over 1 game\(s\): [+-]\d+\.\d\d", result.stdout), result.stdout


def test_play_from_run_dir(small_run):
    check_play_output(run_cli("pgcore-play", "pong", "--checkpoint", small_run))


def test_play_from_npz_with_gif(small_run, tmp_path):
    from PIL import Image
    gif = tmp_path / "game.gif"
    check_play_output(run_cli("pgcore-play", "pong", "--checkpoint", os.path.join(small_run, "checkpoint.npz"),
                              "--gif", gif))
    assert gif.is_file() and gif.stat().st_size > 0
    with Image.open(gif) as image:
        assert image.format == "GIF"
        assert image.n_frames > 1
        assert image.size == (160, 210)


# ---------------------------------------------------------------------------
# pgcore-plot
# ---------------------------------------------------------------------------

def assert_png(path):
    assert os.path.isfile(path), f"{path} was not written"
    with open(path, "rb") as f:
        data = f.read()
    assert len(data) > len(PNG_MAGIC) and data.startswith(PNG_MAGIC)


def test_plot_default_path(small_run_copy):
    result = run_cli("pgcore-plot", small_run_copy)
    assert result.returncode == 0, result.stderr[-3000:]
    default = os.path.join(small_run_copy, "learning_curve.png")
    assert_png(default)
    assert result.stdout.strip().endswith("learning_curve.png")


def test_plot_output_path(small_run, tmp_path):
    out = tmp_path / "curve.png"
    result = run_cli("pgcore-plot", small_run, "-o", out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_png(out)
    assert not os.path.exists(os.path.join(small_run, "learning_curve.png")), "-o must replace the default path"


# ---------------------------------------------------------------------------
# Errors: exit 2, one line, no traceback
# ---------------------------------------------------------------------------

def test_unknown_task_lists_known_tasks():
    message = assert_user_error(run_cli("pgcore-train", "tetris"), "tetris", "pong")
    assert "known" in message


@pytest.mark.parametrize("flag,value", [
    ("--envs", "0"), ("--envs", "-3"), ("--lr", "-1"), ("--lr", "0"), ("--lr", "nan"), ("--gamma", "2"),
    ("--gamma", "-0.1"), ("--hidden", "abc"), ("--hidden", "0"), ("--max-episodes", "-1"),
    ("--batch-episodes", "0"), ("--sticky", "1.5"), ("--threads", "0"), ("--backend", "fortran"),
    ("--max-minutes", "-1"), ("--max-minutes", "inf"), ("--max-minutes", "soon"),
    ("--lr-decay-frames", "-5"), ("--lr-decay-frames", "1.5"), ("--lr-decay-to", "1.5"), ("--lr-decay-to", "-0.1"),
])
def test_bad_flag_values(flag, value, tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli("pgcore-train", "pong", flag, value, "--run-dir", run_dir, "--quiet")
    assert_user_error(result, flag, usage_ok=True)
    assert not run_dir.exists(), "a refused run must not create its run directory"


def test_resume_missing_dir(tmp_path):
    missing = tmp_path / "nothing-here"
    assert_user_error(run_cli("pgcore-train", "pong", "--resume", missing, "--quiet"), str(missing))
    assert not missing.exists()


def corrupt_truncated(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def corrupt_random(path):
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())


def corrupt_empty(path):
    path.write_bytes(b"")


def corrupt_pickled(path):
    arrays, meta = load_run_checkpoint(path)
    arrays["w1"] = np.array([{"payload": "not an array"}, None], dtype=object)  # saved with pickle
    write_run_checkpoint(path, arrays, meta)


def corrupt_w1_shape(path):
    arrays, meta = load_run_checkpoint(path)
    arrays["w1"] = arrays["w1"][:100]
    write_run_checkpoint(path, arrays, meta)


def corrupt_w2_missing(path):
    arrays, meta = load_run_checkpoint(path)
    del arrays["w2"]
    write_run_checkpoint(path, arrays, meta)


def corrupt_nan(path):
    arrays, meta = load_run_checkpoint(path)
    arrays["w1"][3, 2] = np.nan
    write_run_checkpoint(path, arrays, meta)


def corrupt_no_meta(path):
    arrays, _ = load_run_checkpoint(path)
    write_run_checkpoint(path, arrays, None)


def corrupt_meta_not_json(path):
    arrays, _ = load_run_checkpoint(path)
    arrays["__meta__"] = np.frombuffer(b"{not json", dtype=np.uint8)
    write_run_checkpoint(path, arrays, None)


CORRUPTIONS = {
    "truncated": corrupt_truncated, "random-bytes": corrupt_random, "empty": corrupt_empty,
    "pickled-object-array": corrupt_pickled, "w1-wrong-shape": corrupt_w1_shape, "w2-missing": corrupt_w2_missing,
    "nan-weight": corrupt_nan, "no-metadata": corrupt_no_meta, "metadata-not-json": corrupt_meta_not_json,
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_resume_corrupt_checkpoint(small_run_copy, corruption):
    path = Path(small_run_copy) / "checkpoint.npz"
    CORRUPTIONS[corruption](path)
    before = path.read_bytes()
    result = run_cli("pgcore-train", "pong", "--resume", small_run_copy, "--max-episodes", 3, "--quiet")
    assert_user_error(result, "checkpoint")
    assert path.read_bytes() == before, "a refused resume must leave the checkpoint alone"


def corrupt_meta(mutate):
    def corrupt(path):
        arrays, meta = load_run_checkpoint(path)
        mutate(meta)
        write_run_checkpoint(path, arrays, meta)
    return corrupt


META_CORRUPTIONS = {
    "rng-state-garbage": lambda meta: meta.update(rng={"state": 1}),
    "rng-other-generator": lambda meta: meta["rng"].update(bit_generator="MT19937"),
    "counters-missing-key": lambda meta: meta["counters"].pop("segment"),
    "running-reward-string": lambda meta: meta["counters"].update(running_reward="x"),
    "config-envs-0": lambda meta: meta["config"].update(envs=0),
    "config-unknown-key": lambda meta: meta["config"].update(colour="red"),
}


@pytest.mark.parametrize("corruption", list(META_CORRUPTIONS))
def test_resume_corrupt_metadata(small_run_copy, corruption):
    """Hand-damaged JSON metadata in an otherwise valid checkpoint: a clean refusal, never a
    traceback or a crash of the emulator."""
    path = Path(small_run_copy) / "checkpoint.npz"
    corrupt_meta(META_CORRUPTIONS[corruption])(path)
    before = path.read_bytes()
    result = run_cli("pgcore-train", "pong", "--resume", small_run_copy, "--max-episodes", 3, "--quiet", timeout=60)
    assert_user_error(result, "checkpoint")
    assert path.read_bytes() == before


@pytest.mark.parametrize("corruption", ["truncated", "random-bytes", "pickled-object-array", "w1-wrong-shape",
                                        "nan-weight"])
def test_play_corrupt_checkpoint(small_run_copy, corruption):
    path = Path(small_run_copy) / "checkpoint.npz"
    CORRUPTIONS[corruption](path)
    assert_user_error(run_cli("pgcore-play", "pong", "--checkpoint", path), str(path))


def test_play_missing_checkpoint(tmp_path):
    missing = tmp_path / "nope.npz"
    assert_user_error(run_cli("pgcore-play", "pong", "--checkpoint", missing), str(missing))
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    assert_user_error(run_cli("pgcore-play", "pong", "--checkpoint", empty_dir), "checkpoint")


def test_play_bad_arguments(small_run):
    assert_user_error(run_cli("pgcore-play", "tetris", "--checkpoint", small_run), "tetris", "pong")
    assert_user_error(run_cli("pgcore-play", "pong", "--checkpoint", small_run, "--episodes", "0"),
                      "--episodes", usage_ok=True)


def test_play_without_sticky_actions(small_run):
    check_play_output(run_cli("pgcore-play", "pong", "--checkpoint", small_run, "--sticky", "0"))
    assert_user_error(run_cli("pgcore-play", "pong", "--checkpoint", small_run, "--sticky", "1.5"),
                      "--sticky", "[0, 1]")
    assert_user_error(run_cli("pgcore-play", "cartpole", "--checkpoint", small_run, "--sticky", "0"),
                      "--sticky", "pong and atari only")


def test_play_unwritable_gif(small_run, tmp_path):
    gif = tmp_path / "no-such-dir" / "game.gif"
    assert_user_error(run_cli("pgcore-play", "pong", "--checkpoint", small_run, "--gif", gif), "game.gif")


def test_plot_without_progress(tmp_path):
    assert_user_error(run_cli("pgcore-plot", tmp_path), "progress.csv")
    (tmp_path / "progress.csv").write_text(",".join(PROGRESS_HEADER) + "\n")
    assert_user_error(run_cli("pgcore-plot", tmp_path), "episodes")  # header only: nothing to plot
    assert not (tmp_path / "learning_curve.png").exists()


def test_run_dir_under_a_file(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert_user_error(run_cli("pgcore-train", "pong", "--run-dir", blocker / "run", "--quiet", "--max-episodes", 1),
                      "run")
    # a regular file where the run directory should be
    assert_user_error(run_cli("pgcore-train", "pong", "--run-dir", blocker, "--quiet", "--max-episodes", 1),
                      str(blocker))
    assert blocker.read_text() == "not a directory"


def test_refuses_to_overwrite_an_existing_run(small_run_copy):
    files = {name: open(os.path.join(small_run_copy, name), "rb").read()
             for name in ("checkpoint.npz", "config.json", "progress.csv")}
    result = run_cli("pgcore-train", "pong", "--run-dir", small_run_copy, "--quiet", "--max-episodes", 1,
                     "--envs", 1, "--hidden", 8, "--seed", 99)
    message = assert_user_error(result, small_run_copy)
    assert "--resume" in message
    for name, data in files.items():
        assert open(os.path.join(small_run_copy, name), "rb").read() == data, f"{name} was overwritten"


# ---------------------------------------------------------------------------
# Ctrl-C and SIGTERM
# ---------------------------------------------------------------------------

def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def stop_training(run_dir, sig, settle):
    """Starts an endless run, waits for progress.csv plus `settle` seconds, sends `sig`;
    returns (returncode, stdout, stderr)."""
    process = start_cli("pgcore-train", "pong", "--envs", 2, "--hidden", 8, "--quiet", "--run-dir", run_dir)
    try:
        wait_for(lambda: os.path.exists(os.path.join(run_dir, "progress.csv")) or process.poll() is not None,
                 60, "the run to start")
        assert process.poll() is None, f"the run ended early: {process.communicate()[1][-2000:]}"
        time.sleep(settle)
        process.send_signal(sig)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return process.returncode, out, err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_saves_checkpoint_and_exits_0(tmp_path, sig):
    run_dir = str(tmp_path / "run")
    code, out, err = stop_training(run_dir, sig, settle=3.0)
    assert code == 0, f"exit code {code}, stderr:\n{err[-3000:]}"
    assert "Traceback" not in err
    arrays, meta = load_run_checkpoint(run_dir)
    assert meta["counters"]["steps"] > 0, "the run was stopped before it stepped: raise `settle`"
    assert arrays["w1"].shape == (12800, 8) and np.all(np.isfinite(arrays["w1"]))  # the default sees the frame too
    _, rows = read_progress_csv(run_dir)
    assert len(rows) == meta["counters"]["episode"]
    if sig == signal.SIGINT:
        # the interrupted run resumes (a limit already reached: it just loads and saves)
        result = run_cli("pgcore-train", "pong", "--resume", run_dir, "--quiet",
                         "--max-frames", meta["counters"]["frames"])
        assert result.returncode == 0, result.stderr[-3000:]
        again, meta_again = load_run_checkpoint(run_dir)
        np.testing.assert_array_equal(again["w1"], arrays["w1"])
        assert meta_again["counters"]["episode"] == meta["counters"]["episode"]


def test_early_ctrl_c_is_clean(tmp_path):
    """Ctrl-C right after the run directory is set up (while the emulators start) is a
    Ctrl-C too: no traceback, and either a checkpoint to resume (exit 0) or a one-line
    note (exit 130)."""
    run_dir = str(tmp_path / "run")
    code, out, err = stop_training(run_dir, signal.SIGINT, settle=0.0)
    assert "Traceback" not in err, f"exit code {code}, stderr:\n{err[-1500:]}"
    if code == 0:
        load_run_checkpoint(run_dir)
    else:
        assert code == 130 and len(stderr_lines(err)) == 1, (code, err)


@pytest.mark.parametrize("flags, lr, optimizer", [([], 1e-3, "rmsprop"), (["--preset", "classic"], 1e-4, "rmsprop"),
                                                  (["--preset", "classic", "--lr", "3e-4"], 3e-4, "rmsprop"),
                                                  (["--optimizer", "adam"], 1e-3, "adam")])
def test_pong_presets_and_explicit_flags(flags, lr, optimizer, tmp_path):
    """The frame preset is the default, classic is the original recipe, an explicit flag wins."""
    from pgcore import agent, cli
    config = agent.make_config("pong", **cli.given_settings(cli.train_parser().parse_args(["pong", *flags])))
    assert (config.lr, config.optimizer, config.batch_episodes, config.hidden) == (lr, optimizer, 10, 200)
    recipe = (2, "returns", 0, False) if "classic" in flags else (3, "gae", 5_000_000, True)
    assert (config.actions, config.advantage, config.gae_start_frames, config.frame_input) == recipe


@pytest.mark.parametrize("flags, recipe", [
    ([], (3, "gae", 5_000_000, True, 0)), (["--no-frame-input"], (3, "gae", 5_000_000, False, 0)),
    (["--preset", "rollouts"], (3, "gae", 0, True, 128)),
    (["--preset", "gae"], (3, "gae", 20_000_000, False, 0)),
    (["--preset", "gae", "--gae-start-frames", "0"], (3, "gae", 0, False, 0)),
    (["--preset", "fast"], (2, "returns", 0, False, 0)),
    (["--preset", "fast", "--frame-input"], (2, "returns", 0, True, 0)),
    (["--advantage", "returns"], (3, "returns", 0, True, 0)), (["--actions", "2"], (2, "gae", 5_000_000, True, 0)),
    (["--preset", "rollouts", "--advantage", "returns"], (3, "returns", 0, True, 0))])
def test_pong_frame_rollouts_and_gae_presets(flags, recipe):
    """The frame preset (the default) is three actions, the frame input and GAE after 5 M frames over
    the fast preset, rollouts the same on rollouts of 128 steps with GAE from the start, gae without
    the frame input and switching at 20 M; a flag wins, and the returns asked for over any of them
    play whole games without a switch to GAE rather than fail."""
    from pgcore import agent, cli
    config = agent.make_config("pong", **cli.given_settings(cli.train_parser().parse_args(["pong", *flags])))
    assert (config.actions, config.advantage, config.gae_start_frames, config.frame_input,
            config.rollout_steps) == recipe
    assert (config.lr, config.epochs, config.minibatches) == (1e-3, 4, 4)


@pytest.mark.parametrize("content", [b"{\"task\": \"pong\", ", b"\xff\xfe garbage", b"[1, 2]"])
def test_resume_with_a_damaged_config_json_is_refused(small_run_copy, content):
    """config.json is the run's record: not JSON (or not an object) -> one line, exit 2, and
    nothing in the run directory is rewritten."""
    with open(os.path.join(small_run_copy, "config.json"), "wb") as f:
        f.write(content)
    files = {name: open(os.path.join(small_run_copy, name), "rb").read()
             for name in ("checkpoint.npz", "config.json", "progress.csv")}
    result = run_cli("pgcore-train", "pong", "--resume", small_run_copy, "--max-episodes", 3, "--quiet")
    assert_user_error(result, "config.json")
    for name, data in files.items():
        assert open(os.path.join(small_run_copy, name), "rb").read() == data, f"{name} was rewritten"


def test_resume_of_a_run_that_is_still_training_is_refused(small_run_copy):
    """While a trainer holds the run directory (its train.lock), a --resume of it is one line,
    exit 2, naming the holder, and rewrites nothing; once the holder lets go, it resumes."""
    from pgcore import runs

    files = {name: open(os.path.join(small_run_copy, name), "rb").read()
             for name in ("checkpoint.npz", "config.json", "progress.csv")}
    with runs.run_dir_lock(small_run_copy):
        result = run_cli("pgcore-train", "pong", "--resume", small_run_copy, "--max-episodes", 3, "--quiet")
        assert_user_error(result, "in use by another training process")
        assert f"pid {os.getpid()}" in result.stderr
        for name, data in files.items():
            assert open(os.path.join(small_run_copy, name), "rb").read() == data, f"{name} was rewritten"
    result = run_cli("pgcore-train", "pong", "--resume", small_run_copy, "--max-episodes", 3, "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]


def test_the_shipped_policy_plays_without_a_checkpoint_and_wins():
    """pgcore/data/pong.npz is installed with the package; greedy, seed 0, it beats the built-in AI."""
    result = run_cli("pgcore-play", "pong")
    assert result.returncode == 0, result.stderr[-3000:]
    score = int(re.findall(r"game 1: score ([+-]?\d+)", result.stdout)[0])
    assert score > 0, result.stdout


# ---------------------------------------------------------------------------
# --version, per-task help, --print-config, and parsing without running
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["pgcore-train", "pgcore-play", "pgcore-plot", "pgcore-bench"])
def test_every_command_prints_the_version(name):
    import pgcore

    result = run_cli(name, "--version")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == f"pgcore {pgcore.__version__}"


def _help_flags(text):
    """The long flags a --help text lists (each at the start of an option line)."""
    return set(re.findall(r"^\s{2}(?:-\w, )?(--[a-z][a-z-]*)", text, re.MULTILINE))


def _flags_of(task):
    """The flags `pgcore-train TASK` takes, from agent.SETTING_TASKS: the table the configs check."""
    from pgcore import cli
    from pgcore.agent import SETTING_TASKS
    return {flags[0] for setting, flags, _ in cli._train_flags() if setting is None or task in SETTING_TASKS[setting]}


def test_task_help_lists_only_the_flags_the_task_takes():
    from pgcore import cli
    from pgcore.agent import TASKS

    every = {flags[0] for _, flags, _ in cli._train_flags()}
    common = set.intersection(*(_flags_of(task) for task in TASKS))
    assert {"--seed", "--lr", "--max-episodes", "--run-dir", "--resume", "--print-config"} <= common
    for task in TASKS:
        shown = _help_flags(cli.train_parser(task).format_help()) - {"--help", "--version"}
        assert shown == _flags_of(task), task
    pong_refuses = every - _flags_of("pong")
    assert {"--tau", "--sigma", "--entropy-final", "--map", "--no-slip", "--baseline"} <= pong_refuses
    assert {"--game", "--bits", "--reward-clip", "--life-cut", "--noop-max"} <= pong_refuses and len(pong_refuses) == 14
    assert "--entropy" in _flags_of("pong")  # (Pong's softmax policy takes an entropy bonus too)
    # the command itself: pong's flags and the common ones, not the other tasks'
    result = run_cli("pgcore-train", "pong", "--help")
    assert result.returncode == 0, result.stderr[-2000:]
    assert _help_flags(result.stdout) - {"--help", "--version"} == _flags_of("pong")
    assert "--frame-input" in result.stdout and "--tau" not in result.stdout
    result = run_cli("pgcore-train", "--seed", "3", "cartpole", "--help")
    assert _help_flags(result.stdout) - {"--help", "--version"} == _flags_of("cartpole")
    assert "--envs" not in result.stdout and "--entropy" in result.stdout


def test_help_without_a_task_lists_the_tasks_the_common_flags_and_the_environment():
    from pgcore.agent import TASKS

    result = run_cli("pgcore-train", "--help")
    assert result.returncode == 0, result.stderr[-2000:]
    text = result.stdout
    assert _help_flags(text) - {"--help", "--version"} == set.intersection(*(_flags_of(task) for task in TASKS))
    assert "pgcore-train TASK --help" in text
    for task, description in TASKS.items():
        assert re.search(rf"^\s+{re.escape(task)}\s+{re.escape(description)}$", text, re.MULTILINE), task
    for variable in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "PGCORE_NO_OPENMP", "PGCORE_NATIVE"):
        assert variable in text
    assert variable in run_cli("pgcore-train", "pong", "--help").stdout


@pytest.mark.parametrize("args, flag", [(["pong", "--tau", "0.5"], "--tau"),
                                        (["pong", "--no-slip"], "--no-slip"), (["taxi", "--hidden", "8"], "--hidden")])
def test_a_flag_the_task_does_not_list_is_still_refused_in_one_line(args, flag, tmp_path):
    result = run_cli("pgcore-train", *args, "--run-dir", tmp_path / "run", "--max-episodes", 1)
    assert_user_error(result, flag, "does not apply")
    assert not (tmp_path / "run").exists()


def test_print_config_prints_the_settings_config_json_records_and_trains_nothing(tmp_path):
    from pgcore import agent, runs

    result = run_cli("pgcore-train", "pong", "--preset", "gae", "--print-config", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    printed = json.loads(result.stdout)
    assert os.listdir(tmp_path) == [], "--print-config made a run directory"
    expected = dataclasses.asdict(agent.make_config("pong", preset="gae"))
    assert printed.pop("run_dir").startswith(os.path.join("runs", "pong-")) and expected.pop("run_dir") == ""
    assert printed.pop("threads") >= 1 and expected.pop("threads") >= 1  # (OMP_NUM_THREADS may differ)
    assert printed == expected
    assert (printed["advantage"], printed["gae_start_frames"], printed["frame_input"]) == ("gae", 20_000_000, False)
    # what a run records: the same command line with --print-config, and without it
    flags = ["cartpole", "--max-episodes", "2", "--lr", "0.02", "--run-dir", tmp_path / "run", "--quiet"]
    result = run_cli("pgcore-train", *flags, "--print-config")
    assert result.returncode == 0 and not (tmp_path / "run").exists(), result.stderr[-2000:]
    assert run_cli("pgcore-train", *flags).returncode == 0
    rows = read_progress_csv(tmp_path / "run")[1]
    assert json.loads(result.stdout) == runs.read_json(str(tmp_path / "run" / "config.json"))["config"]
    # resuming: the run's own settings with the new limit
    result = run_cli("pgcore-train", "cartpole", "--resume", tmp_path / "run", "--max-episodes", "5", "--print-config")
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["max_episodes"] == 5 and json.loads(result.stdout)["lr"] == 0.02
    assert read_progress_csv(tmp_path / "run")[1] == rows, "--print-config trained"
    assert_user_error(run_cli("pgcore-train", "pong", "--lr", "-1", "--print-config"), "--lr")


def test_command_lines_parse_without_running():
    """The parse functions (what a docs test checks each command line of the docs with) exit as
    the commands do: 2 on a bad one, 0 for --help and --version; else they return the Namespace."""
    from pgcore import bench, cli

    args = cli.parse_train_args(["pong", "--preset", "gae", "--max-minutes", "60"])
    assert (args.task, args.preset, args.max_minutes) == ("pong", "gae", 60.0)
    assert cli.given_settings(cli.parse_train_args(["frozenlake", "--no-slip"]))["slip"] is False
    assert cli.parse_play_args(["pong", "--sticky", "0"]).sticky == 0.0
    assert cli.parse_plot_args(["a", "b", "-o", "x.png"]).run_dir == ["a", "b"]
    assert bench.parse_args(["--threads", "2", "--only", "adam"]).only == "adam"
    bad = [(cli.parse_train_args, ["frozen-lake"]), (cli.parse_train_args, ["pong", "--lr", "x"]),
           (cli.parse_train_args, ["pong", "--no-such-flag"]), (cli.parse_play_args, ["cartpole"]),
           (cli.parse_play_args, ["taxi", "--checkpoint", "r", "--gif", "g.gif"]), (cli.parse_plot_args, ["a", "b"]),
           (bench.parse_args, ["--threads", "0"])]
    for parse, argv in bad:
        with pytest.raises(SystemExit) as exit_:
            parse(argv)
        assert exit_.value.code == 2, argv
    for parse in (cli.parse_train_args, cli.parse_play_args, cli.parse_plot_args, bench.parse_args):
        for flag in ("--help", "--version"):
            with pytest.raises(SystemExit) as exit_:
                parse([flag])
            assert exit_.value.code in (0, None), (parse, flag)
