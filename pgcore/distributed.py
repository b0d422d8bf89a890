"""Pong rollouts on Ray workers: more emulators, on more machines, for one learner.

Each worker is a Ray actor holding a collector, `pong.Collector` (its own `--envs` emulators on
`--threads` threads, the same compiled step as the single-process trainer), which the task
hands in (`make_collector`): this module imports no task, and pgcore.pong picks it for a run
with `ray` set. A `collect` call
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
import importlib.util
import os
import re
import socket
import time

import numpy as np

from pgcore import _threads, runs
from pgcore.backends import load_backend

INSTALL_HINT = "pip install 'pgcore[ray]'"
STARTUP_TIMEOUT_S = 120.0   # for the workers to start their emulators
CONNECT_TIMEOUT_S = 10.0    # for a TCP connection to the cluster's address
COLLECT_SECONDS = 1.0       # a collect call returns after this long even when no episode ended
WAIT_SECONDS = 0.5          # the driver looks at stop requests at least this often


_ADDRESS = re.compile(r"^[A-Za-z0-9_.-]+:[0-9]{1,5}$")


def check_config(config):
    """Raises SettingError for a bad `ray` / `workers`, or when Ray is asked for but not installed
    (Ray itself is not imported here: `connect` does that, for a run on Ray workers). Pong's
    check_config calls it."""
    runs.check_whole_number("workers", config.workers, 1)
    if not isinstance(config.ray, str) or not (config.ray in ("", "local", "auto") or _ADDRESS.match(config.ray)):
        raise runs.SettingError("ray", f"ray must be local, auto or HOST:PORT, not {config.ray!r}")
    if not config.ray:
        if config.workers != 1:
            raise runs.SettingError("workers", f"workers={config.workers} needs ray (local, auto or HOST:PORT)")
        return
    if importlib.util.find_spec("ray") is None:
        raise runs.SettingError("ray", f"ray={config.ray!r} needs Ray, which is not installed: {INSTALL_HINT}")


def worker_seeds(config, index, segment):
    """(action Generator, emulator seed) of worker `index` in run segment `segment`."""
    sequence = np.random.SeedSequence(config.seed, spawn_key=(segment, index))
    return np.random.default_rng(sequence), int(sequence.generate_state(1)[0] % (2**31 - 1))


class RolloutWorker:
    """The Ray actor's class (made remote by `start_workers`): a collector (emulators and episodes
    in progress), made by `make_collector(config, kernels, rng, env_seed)`."""

    def __init__(self, config, make_collector, index, segment):
        kernels = load_backend(config.backend)
        _threads.set_num_threads(1)  # as in the single-process trainer: the emulator threads use the cores
        rng, env_seed = worker_seeds(config, index, segment)
        self.collector = make_collector(config, kernels, rng, env_seed)
        self.weights = None  # the newest weights, copied into arrays of this worker's own

    def pid(self):
        return os.getpid()

    def collect(self, weights, version, seconds=COLLECT_SECONDS):
        """Plays with `weights` (update `version`: name -> array, the collector's step's keywords)
        until an episode ends (or a segment fills) or `seconds` pass; returns {"episodes": [the
        collector's `take` of each, ...], "steps": agent steps, "frames": emulator frames}."""
        if self.weights is None:
            self.weights = {name: np.empty_like(array) for name, array in weights.items()}
        for name, array in weights.items():
            self.weights[name][...] = array
        collector, done, steps, frames = self.collector, [], 0, 0
        deadline = time.perf_counter() + seconds
        while not done and time.perf_counter() < deadline:
            finished, new_steps, new_frames = collector.step(**self.weights, version=version)
            steps += new_steps
            frames += new_frames
            done += [collector.take(env) for env in finished]
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


def start_workers(config, segment, make_collector):
    """The K workers, each ready (its collector started); RunError when they do not start within
    STARTUP_TIMEOUT_S."""
    import ray

    remote = ray.remote(num_cpus=config.threads, max_restarts=-1, max_task_retries=0)(RolloutWorker)
    workers = [remote.remote(config, make_collector, index, segment) for index in range(config.workers)]
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


def collect(config, run, learner, make_collector):
    """The driver's loop: one collect call in flight per worker (each a `make_collector` collector);
    each result's episodes go to the learner, and the next call carries the newest weights
    (`learner.weights`)."""
    import ray

    counters = run.counters
    workers = []
    try:
        workers = start_workers(config, counters["segment"], make_collector)
        weights, version = None, None
        pending = {}
        while run.running():
            if version != counters["updates"]:  # one object per update, shared by every call
                version = counters["updates"]
                weights = ray.put(learner.weights)
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
                for piece in result["episodes"]:
                    if not run.running():
                        break  # past a limit or asked to stop: the rest are dropped, as episodes in flight are
                    learner.learn(*piece)
    finally:
        stop_workers(workers)
