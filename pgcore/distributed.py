"""Pong rollouts on Ray workers: more emulators, on more machines, for one learner.

Each worker is a Ray actor holding a `pong.Collector` (its own `--envs` emulators on
`--threads` threads, the same compiled step as the single-process trainer). A `collect` call
brings the newest weights (one `ray.put` object per update, shared by every worker), plays
until at least one episode ends (or a second passes), and returns the finished episodes in
their compact sparse form: the nonzero pixels of each difference frame, the behaviour
logits, actions, rewards, and the update their weights came from. This process, the driver,
is the learner (`pong.Learner`), inside `session` (Ray started or joined): gradients,
updates, progress.csv and checkpoints as in a single-process run.

Policy lag. An episode's steps are played with the weights its worker had when each
`collect` call began, so an episode that ran across updates mixes weights. The learner
records, per episode, `policy_lag`: updates between the weights the episode began with and
the learner's when it learns from it. `--batch-episodes` is per worker, like `--envs`: with
K workers an update takes K times as many episodes, so the episodes in flight per update,
and with them the lag, stay what a single-process run of one worker's size has.

Faults. Workers are restarted by Ray (`max_restarts=-1`); a call to a worker that died
raises, the episodes in progress on it are lost and counted (`worker_restarts`), and the
restarted worker is called again. A cluster that cannot be reached, or that cannot place
the workers, is a RunError: an address where nothing listens within CONNECT_TIMEOUT_S, too few
CPUs at once, workers that do not start within STARTUP_TIMEOUT_S.
"""
import contextlib
import dataclasses
import os
import socket
import time

import numpy as np

from pgcore import _threads, pong, runs
from pgcore.backends import load_backend

INSTALL_HINT = pong.RAY_INSTALL_HINT
STARTUP_TIMEOUT_S = 120.0   # for the workers to start their emulators
CONNECT_TIMEOUT_S = 10.0    # for a TCP connection to the cluster's address
COLLECT_SECONDS = 1.0       # a collect call returns after this long even when no episode ended
WAIT_SECONDS = 0.5          # the driver looks at stop requests at least this often


def check_config(config):
    """Raises SettingError for a bad `ray` / `workers`, or when Ray is asked for but not installed
    (`pong.check_ray_settings`, which pong's check_config calls)."""
    pong.check_ray_settings(config)


def worker_seeds(config, index, segment):
    """(action Generator, emulator seed) of worker `index` in run segment `segment`."""
    sequence = np.random.SeedSequence(config.seed, spawn_key=(segment, index))
    return np.random.default_rng(sequence), int(sequence.generate_state(1)[0] % (2**31 - 1))


class RolloutWorker:
    """The Ray actor's class (made remote by `start_workers`): emulators and episodes in progress."""

    def __init__(self, settings, index, segment):
        config = pong.PongConfig(**settings)
        kernels = load_backend(config.backend)
        _threads.set_num_threads(1)  # as in the single-process trainer: the emulator threads use the cores
        rng, env_seed = worker_seeds(config, index, segment)
        self.collector = pong.Collector(config, kernels, rng, env_seed)
        shapes = pong.param_shapes(config)
        self.w1 = np.zeros(shapes["w1"], dtype=config.dtype)
        self.w2 = np.zeros(shapes["w2"], dtype=config.dtype)

    def pid(self):
        return os.getpid()

    def collect(self, weights, version, seconds=COLLECT_SECONDS):
        """Plays with `weights` (update `version`) until an episode ends or `seconds` pass; returns
        {"episodes": [(compact episode, start version), ...], "steps": agent steps, "frames": emulator frames}."""
        self.w1[...] = weights["w1"]
        self.w2[...] = weights["w2"]
        collector, done, steps, frames = self.collector, [], 0, 0
        deadline = time.perf_counter() + seconds
        while not done and time.perf_counter() < deadline:
            finished, new_steps, new_frames = collector.step(self.w1, self.w2, version)
            steps += new_steps
            frames += new_frames
            for env in finished:
                done.append((pong.compact(collector.episodes.episode(env)), int(collector.start_version[env])))
                collector.release(env)
        return {"episodes": done, "steps": steps, "frames": frames}


def connect(config):
    """Starts or joins Ray as config.ray says; returns True when this call connected this process
    (which must then disconnect: ray.shutdown), False when it already was. A local Ray binds to
    and advertises 127.0.0.1 only."""
    if config.ray == "local":
        # Ray on Linux otherwise listens on every interface and advertises the network address;
        # read when Ray is first imported, this keeps it on loopback (a process that imported
        # Ray before gets Ray's default).
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        # Ray starts its workers at nice 15; the emulators are the run's main work, so a local
        # Ray runs them at this process's priority.
        os.environ.setdefault("RAY_worker_niceness", "0")
    import ray

    if ray.is_initialized():
        return False
    options = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if config.ray == "local":
        # address "local": a new Ray of its own, even where another runs (RAY_ADDRESS, ray start)
        init_ray(address="local", num_cpus=max(os.cpu_count() or 1, config.workers * config.threads), **options)
    else:
        if config.ray != "auto":  # Ray itself retries an address where nothing listens for minutes
            host, port = config.ray.rsplit(":", 1)
            try:
                socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
            except OSError as error:
                raise runs.RunError(f"no Ray cluster at {config.ray}: {error.strerror or error}") from None
        try:
            init_ray(address=config.ray, **options)
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise runs.RunError(f"cannot join the Ray cluster at {config.ray}: {_line(error, 0)}") from None
    return True


def init_ray(**options):
    """ray.init(**options), so that Ray workers import the pgcore this process runs.

    Ray puts the driver's working directory first on its workers' sys.path: started inside a
    pgcore source checkout, the workers would import its uncompiled `pgcore/` instead of the
    installed package. So Ray is started from the directory that holds this pgcore (site-packages,
    or the checkout of an in-place build), and the working directory is restored after.
    """
    import ray

    here = os.getcwd()
    os.chdir(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the folder that holds pgcore/
    try:
        return ray.init(**options)
    finally:
        os.chdir(here)


def _line(error, index):
    """One line of an error's message: the first (Ray's summary) or, with -1, the last (a worker's
    own exception, after Ray's preamble and traceback)."""
    return (str(error).strip().splitlines() or [error.__class__.__name__])[index].strip()


@contextlib.contextmanager
def session(config):
    """Ray started or joined for a run, and checked to have the CPUs its workers need; shut down
    afterwards if this started it. Entered before the run directory is made, so a cluster that
    is not there leaves nothing behind."""
    import ray

    started = connect(config)
    try:
        needed = config.workers * config.threads
        cpus = ray.cluster_resources().get("CPU", 0)
        if cpus < needed:
            raise runs.RunError(f"the Ray cluster has {cpus:g} CPUs; {config.workers} workers of {config.threads} "
                                f"threads need {needed} (lower --workers or --threads, or add nodes)")
        yield
    finally:
        if started:
            ray.shutdown()


def start_workers(config, segment):
    """The K workers, each ready (emulators started); RunError when they do not start within
    STARTUP_TIMEOUT_S."""
    import ray

    remote = ray.remote(num_cpus=config.threads, max_restarts=-1, max_task_retries=0)(RolloutWorker)
    settings = dataclasses.asdict(config)
    workers = [remote.remote(settings, index, segment) for index in range(config.workers)]
    try:
        ray.get([worker.pid.remote() for worker in workers], timeout=STARTUP_TIMEOUT_S)
    except ray.exceptions.GetTimeoutError:
        stop_workers(workers)
        raise runs.RunError(f"the {config.workers} Ray workers did not start within {STARTUP_TIMEOUT_S:.0f} s "
                            "(is pgcore installed on every node?)") from None
    except ray.exceptions.RayError as error:
        stop_workers(workers)
        raise runs.RunError(f"a Ray worker failed to start: {_line(error, -1)}") from None
    return workers


def stop_workers(workers):
    import ray

    for worker in workers:
        ray.kill(worker)


def collect(config, run, learner):
    """The driver's loop: one collect call in flight per worker; each result's episodes go to the
    learner, and the next call carries the newest weights."""
    import ray

    counters = run.counters
    workers = []
    try:
        workers = start_workers(config, counters["segment"])
        weights, version = None, None
        pending = {}
        while run.running():
            if version != counters["updates"]:  # one object per update, shared by every call
                version = counters["updates"]
                weights = ray.put({"w1": learner.w1, "w2": learner.w2})
            for index in set(range(len(workers))) - set(pending.values()):
                pending[workers[index].collect.remote(weights, version)] = index
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=WAIT_SECONDS)
            for reference in ready:
                pending.pop(reference)
                try:
                    result = ray.get(reference)
                except ray.exceptions.RayActorError:
                    counters["worker_restarts"] += 1  # Ray restarts it; its episodes in progress are lost
                    continue
                counters["steps"] += result["steps"]
                counters["frames"] += result["frames"]
                for episode, start_version in result["episodes"]:
                    if not run.running():
                        break  # past a limit or asked to stop: the rest are dropped, as episodes in flight are
                    learner.learn(episode, start_version)
    finally:
        stop_workers(workers)
