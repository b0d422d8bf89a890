"""Pong on Ray workers (`--ray`, pgcore.distributed): a simulated cluster of two nodes
(ray.cluster_utils.Cluster, loopback only) trains and writes the usual run directory; a worker
killed with SIGKILL is restarted and the run completes; a resumed Ray run continues its
progress.csv; a worker's episodes are the single-process collector's for the same weights and
seeds, so they give the same gradient; bad settings and missing clusters are one-line errors.

Skipped when Ray is not installed (`pip install 'pgcore[ray]'`; CI installs it).
"""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import pgcore
from pgcore import distributed, pong, runs

from helpers import load_run_checkpoint, read_progress_csv, run_cli, script, start_cli

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # read when Ray is imported: loopback only
ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'pgcore[ray]')")

SMALL = dict(envs=2, hidden=8, threads=1, batch_episodes=1, quiet=True)
SMALL_FLAGS = ["--envs", "2", "--hidden", "8", "--threads", "1", "--batch-episodes", "1", "--quiet"]


@pytest.fixture(scope="module")
def cluster():
    """Two simulated nodes of one CPU each on 127.0.0.1, and this process connected to them."""
    from ray.cluster_utils import Cluster

    nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    nodes.add_node(num_cpus=1)
    nodes.wait_for_nodes()
    distributed.init_ray(address=nodes.address, include_dashboard=False, log_to_driver=False)
    yield nodes
    ray.shutdown()
    nodes.shutdown()


def test_two_node_cluster_trains_and_writes_the_run_directory(cluster, tmp_path):
    alive = [node for node in ray.nodes() if node["Alive"]]
    assert len(alive) == 2 and {node["NodeManagerAddress"] for node in alive} == {"127.0.0.1"}
    agent = pgcore.Agent("pong", ray=cluster.address, workers=2, seed=4, **SMALL)
    agent.learn(max_frames=20_000, run_dir=tmp_path / "run")
    assert ray.is_initialized(), "a cluster the caller connected to stays connected"
    header, rows = read_progress_csv(tmp_path / "run")
    # (the default preset trains a value net: its loss is a column)
    assert header[-4:] == ["skipped_updates", "value_loss", "policy_lag", "worker_restarts"]
    assert [int(row[0]) for row in rows] == list(range(1, len(rows) + 1)) and len(rows) >= 2
    frames = [int(row[1]) for row in rows]
    assert frames == sorted(frames)
    assert all(int(row[header.index("policy_lag")]) >= 0 for row in rows)
    # batches are per worker: two workers, batch_episodes 1 -> a batch every 2 episodes, and the
    # default's 4 passes of 2 updates (at most one per episode) over it
    assert [int(row[header.index("updates")]) for row in rows[:4]] == [0, 8, 8, 16][:len(rows[:4])]
    arrays, meta = load_run_checkpoint(tmp_path / "run")
    assert meta["config"]["ray"] == cluster.address and meta["config"]["workers"] == 2
    assert meta["counters"]["frames"] >= max(20_000, frames[-1])  # and frames of episodes still in flight
    assert pgcore.Agent.load(tmp_path / "run").evaluate(episodes=1, seed=10_000).shape == (1,)


def test_workers_hand_over_rollouts_and_each_game_gets_its_row(cluster, tmp_path):
    """With --rollout-steps the workers return rollouts as they fill: the learner updates every
    batch of steps and logs each game, scored over its rollouts, once."""
    agent = pgcore.Agent("pong", ray=cluster.address, workers=2, seed=5, rollout_steps=50, gae_start_frames=0,
                         batch_steps=100, epochs=1, minibatches=2, **SMALL)
    agent.learn(max_frames=24_000, run_dir=tmp_path / "run")
    header, rows = read_progress_csv(tmp_path / "run")
    assert len(rows) >= 2 and all(-21 <= float(row[header.index("reward")]) <= 21 for row in rows)
    _, meta = load_run_checkpoint(tmp_path / "run")
    # batches of 2 x 100 steps from rollouts of 50: far more updates than games
    assert meta["counters"]["updates"] >= 2 * (meta["counters"]["steps"] // 200 - 4) > 2 * len(rows)


def test_a_workers_episodes_give_the_single_process_gradient(cluster):
    """Same weights, same seeds: the worker (through Ray) and a local Collector play the same
    episodes (sync emulators), and add_episode_gradient turns them into the same gradient."""
    config = pong.make_config("fast", sync=True, seed=9, envs=2, hidden=8, threads=1)
    params = pong.initial_params(config)
    remote = ray.remote(num_cpus=1)(distributed.RolloutWorker)
    worker = remote.remote(config, pong.Collector, 0, 0)
    result = {"episodes": []}
    while not result["episodes"]:
        result = ray.get(worker.collect.remote(params, 3, 30.0), timeout=300)
    ray.kill(worker)

    rng, env_seed = distributed.worker_seeds(config, 0, 0)
    collector = pong.Collector(config, pgcore.kernels, rng, env_seed)
    local = []
    try:
        while not local:
            finished, _, _ = collector.step(params["w1"], params["w2"], 3)
            local = [(pong.compact(collector.episodes.episode(env)), 3, False, float(collector.scores[env]))
                     for env in finished]
    finally:
        collector.close()

    assert len(result["episodes"]) == len(local) >= 1
    for (got, got_version, got_cut, got_score, got_game_over), (want, want_version, _, want_score) in zip(
            result["episodes"], local):
        assert got_version == want_version == 3 and not got_cut and got_game_over
        assert got_score == want_score == got[5].sum()
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)
        grads = []
        for episode in (got, want):
            state = params | {"grad_w1": np.zeros_like(params["w1"]), "grad_w2": np.zeros_like(params["w2"])}
            pong.add_episode_gradient(pgcore.kernels, episode, state, config)
            grads.append(state)
        np.testing.assert_array_equal(grads[0]["grad_w1"], grads[1]["grad_w1"])
        np.testing.assert_array_equal(grads[0]["grad_w2"], grads[1]["grad_w2"])
        assert np.abs(grads[0]["grad_w2"]).max() > 0


def _worker_pids():
    found = subprocess.run(["pgrep", "-f", "ray::RolloutWorker"], capture_output=True, text=True).stdout.split()
    return [int(pid) for pid in found]


def wait_for_progress(process, run_dir, done, what, seconds=240):
    """Waits until done(header, rows) holds for the running `process`'s run_dir/progress.csv."""
    deadline = time.monotonic() + seconds
    while not (os.path.exists(run_dir / "progress.csv") and done(*read_progress_csv(run_dir))):
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, f"no {what} in {seconds} s"
        time.sleep(0.5)


def wait_for_episodes(process, run_dir, episodes, seconds=240):
    """Waits until the running `process` has logged `episodes` rows in run_dir/progress.csv."""
    wait_for_progress(process, run_dir, lambda header, rows: len(rows) >= episodes, f"{episodes} episodes",
                      seconds)


def test_a_killed_worker_is_restarted_and_the_run_goes_on(cluster, tmp_path):
    """A worker killed with SIGKILL is restarted while the run goes on: progress.csv counts the
    restart and keeps every episode in order, and Ctrl-C then stops the run with a checkpoint.
    The test waits for the restart to show, not for a number of episodes: on a fast machine the
    other worker can finish a small run before the dead one is noticed."""
    run_dir = tmp_path / "run"
    before = set(_worker_pids())
    process = start_cli("pgcore-train", "pong", "--ray", cluster.address, "--workers", "2", *SMALL_FLAGS,
                        "--max-episodes", "5000", "--run-dir", run_dir)
    try:
        wait_for_episodes(process, run_dir, 1)
        workers = [pid for pid in _worker_pids() if pid not in before]
        assert len(workers) == 2, f"expected the run's 2 workers, found {workers}"
        os.kill(workers[0], signal.SIGKILL)
        wait_for_progress(process, run_dir, lambda header, rows: int(rows[-1][header.index("worker_restarts")]) >= 1,
                          "restart in progress.csv")
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr[-3000:]
    header, rows = read_progress_csv(run_dir)
    assert [int(row[0]) for row in rows] == list(range(1, len(rows) + 1))
    assert int(rows[-1][header.index("worker_restarts")]) >= 1
    _, meta = load_run_checkpoint(run_dir)
    assert meta["counters"]["worker_restarts"] >= 1 and meta["counters"]["episode"] == len(rows)


def test_a_resumed_ray_run_continues_its_progress(cluster, tmp_path):
    run_dir = tmp_path / "run"
    first = run_cli("pgcore-train", "pong", "--ray", cluster.address, "--workers", "2", *SMALL_FLAGS,
                    "--max-episodes", "3", "--run-dir", run_dir, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    _, rows_before = read_progress_csv(run_dir)
    resumed = run_cli("pgcore-train", "pong", "--resume", run_dir, "--max-episodes", "6", "--quiet", timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    header, rows = read_progress_csv(run_dir)
    assert rows[:len(rows_before)] == rows_before
    assert [int(row[0]) for row in rows] == list(range(1, len(rows) + 1)) and len(rows) >= 6
    _, meta = load_run_checkpoint(run_dir)
    assert meta["counters"]["segment"] == 1 and meta["counters"]["episode"] == len(rows)


def test_a_cluster_without_the_cpus_is_a_one_line_error(cluster, tmp_path):
    result = run_cli("pgcore-train", "pong", "--ray", cluster.address, "--workers", "3", *SMALL_FLAGS,
                     "--max-episodes", "1", "--run-dir", tmp_path / "run", timeout=300)
    assert result.returncode == 2
    assert "the Ray cluster has 2 CPUs; 3 workers of 1 threads need 3" in result.stderr
    assert not os.path.exists(tmp_path / "run"), "nothing is left behind"


def test_an_address_where_no_cluster_listens_is_a_quick_one_line_error(tmp_path):
    started = time.monotonic()
    result = run_cli("pgcore-train", "pong", "--ray", "127.0.0.1:9", "--max-episodes", "1",
                     "--run-dir", tmp_path / "run", timeout=60)
    assert result.returncode == 2 and "no Ray cluster at 127.0.0.1:9" in result.stderr
    assert "Traceback" not in result.stderr and time.monotonic() - started < 60
    assert not os.path.exists(tmp_path / "run")


@pytest.mark.parametrize("flags, named", [(["--ray", "somewhere"], "--ray"), (["--workers", "2"], "--workers"),
                                          (["--ray", "local", "--workers", "0"], "--workers")])
def test_bad_ray_settings_are_one_line_errors(flags, named, tmp_path):
    result = run_cli("pgcore-train", "pong", *flags, "--run-dir", tmp_path / "run", "--max-episodes", "1")
    assert result.returncode == 2 and named in result.stderr and "Traceback" not in result.stderr


def test_without_ray_the_flags_say_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(runs.SettingError, match=r"pip install 'pgcore\[ray\]'"):
        pgcore.Agent("pong", ray="local", workers=2)
    pgcore.Agent("pong")  # plain pgcore does not need it


def test_ctrl_c_in_the_terminal_stops_a_local_ray_run_with_a_checkpoint(tmp_path):
    """Ctrl-C reaches the whole foreground process group (the driver and the local Ray it
    started): the run saves a checkpoint at its last episode, shuts Ray down and exits 0."""
    run_dir = tmp_path / "run"
    process = subprocess.Popen([script("pgcore-train"), "pong", "--ray", "local",
                                "--workers", "2", *SMALL_FLAGS, "--run-dir", str(run_dir)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_for_episodes(process, run_dir, 2)
        os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, stderr[-3000:]
    _, rows = read_progress_csv(run_dir)
    _, meta = load_run_checkpoint(run_dir)
    assert meta["counters"]["episode"] == len(rows) >= 2


def test_ray_is_started_from_the_directory_of_the_running_pgcore(monkeypatch, tmp_path):
    """Ray puts the driver's working directory first on its workers' sys.path: started from a
    source checkout, workers would import its uncompiled pgcore/ instead of the installed one."""
    seen = []
    monkeypatch.setattr(ray, "init", lambda **options: seen.append((os.getcwd(), options)))
    monkeypatch.chdir(tmp_path)
    distributed.init_ray(address="local", num_cpus=1)
    assert seen == [(os.path.dirname(os.path.dirname(os.path.abspath(pgcore.__file__))),
                     {"address": "local", "num_cpus": 1})]
    assert os.getcwd() == str(tmp_path), "the working directory is restored"
