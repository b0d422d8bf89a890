"""pgcore's Python API: one `Agent` for every task, in the spirit of Stable-Baselines3.

    import pgcore
    agent = pgcore.Agent(task, seed=0, lr=0.01)           # a task of pgcore.TASKS; keywords: the CLI's settings
    agent.learn(max_episodes=1500, run_dir="runs/cp")     # blocks; Ctrl-C saves and returns
    returns = agent.evaluate(episodes=100, seed=10_000)   # greedy episode returns
    action = agent.predict(observation)                   # one observation or a batch
    agent = pgcore.Agent.resume("runs/cp"); agent.learn(max_episodes=3000)

The command line (`pgcore.cli`) is argparse over these calls. Every task is reached through the
registry (`pgcore.tasks`) and its `pgcore.task.Task` interface: settings are checked once, by the
task (`Task.check_config`, from the bounds its config's fields carry): a bad one raises
`pgcore.SettingError` (runs.SettingError), a ValueError naming it. `open_checkpoint` opens any run
directory or checkpoint file (a run's, `Agent.save`'s, a shipped policy) for the CLI, `play` and
`Agent`. `session` and `train` run a task's trainer (`Task.run_context`, `Task.train`: Pong picks Ray
workers or this process's emulators).
"""
import dataclasses
import os
import time
from typing import NamedTuple

import numpy as np

from pgcore import runs, settings, tasks
from pgcore.backends import load_backend

TASKS = tasks.descriptions()  # the tasks registered when pgcore was imported: name -> one line
PACKAGED_POLICIES = {name: task.packaged_policy for name, task in tasks.REGISTRY.items() if task.packaged_policy}
POLICY_FORMAT = "pgcore-policy-1"
# Settings a resumed run may change; the others are the run's own, saved in its checkpoint.
RESUME_SETTINGS = ("threads", "quiet", "max_frames", "max_episodes", "max_minutes", "checkpoint_every",
                   "checkpoint_minutes", "backend", "ray", "workers", "lr", "lr_decay_frames",
                   "lr_decay_to")  # the learning rates: lowered once learning flattens
SETTING_TASKS = tasks.setting_tasks()  # setting name -> the tasks that take it (as imported; tasks.setting_tasks())


def _check_applies(name, task, why=""):
    """Raises SettingError unless `task` takes the setting `name` (one of tasks.setting_tasks())."""
    takers = tasks.setting_tasks()[name]
    if task not in takers:
        raise runs.SettingError(name, f"{name} does not apply to {task} (only to {', '.join(takers)}){why}")


def make_config(task, **settings_):
    """The checked config of a new run of `task`: its defaults (Pong: a preset's), then `settings_`.
    Raises SettingError (a ValueError) naming an unknown task, or an unknown, inapplicable or
    out-of-range setting."""
    spec, known = tasks.get(task), tasks.setting_tasks()
    for name in settings_:
        if name not in known:
            raise runs.SettingError(name, f"unknown setting {name!r}; {task} takes "
                                          f"{', '.join(n for n, takers in known.items() if task in takers)}")
        _check_applies(name, task)
    config = spec.make_config(**settings_)
    spec.check_config(config)
    return config


def session(config):
    """What a run needs around it (its task's `run_context`: Ray, started or joined, for a Pong run on
    Ray workers; nothing otherwise)."""
    return tasks.of(config).run_context(config)


def train(config, kernels, resume_meta=None, resume_arrays=None):
    """Runs the task's trainer (inside `session(config)`). Returns (counters, the signal that
    stopped it or None)."""
    return tasks.of(config).train(config, kernels, resume_meta, resume_arrays)


class Checkpoint(NamedTuple):
    config: object
    arrays: dict
    meta: dict
    path: str       # the checkpoint file
    run_dir: str    # its run directory ("" when it is not in one)


def open_checkpoint(path, for_training=False):
    """Opens a run directory or a checkpoint file (a run's, an `Agent.save` file, a shipped policy).

    Checks the recorded config, and the arrays: the parameters for playing, or with
    `for_training` every array, counter and RNG state a resumed run needs (and that the run's
    config.json is readable). Raises RunError with a one-line message naming the file.
    """
    path = str(path)
    file = os.path.join(path, runs.CHECKPOINT_NAME) if os.path.isdir(path) else path
    _, meta = runs.load_checkpoint(file)
    saved = meta.get("config")
    task = tasks.name_in_checkpoint(meta)
    if not isinstance(task, str) or task not in tasks.REGISTRY:
        raise runs.RunError(f"corrupt checkpoint {file}: it records no known task ({task!r})")
    trainer = tasks.get(task)
    run_dir = os.path.dirname(file) if os.path.exists(os.path.join(os.path.dirname(file), "progress.csv")) else ""
    if for_training and os.path.exists(os.path.join(run_dir, "config.json")):
        runs.read_json(os.path.join(run_dir, "config.json"))  # a damaged record of the run is reported
    try:
        config = trainer.config_from_saved(saved)
        trainer.check_config(config)
        if for_training:
            runs.check_resume_meta(meta, trainer.counter_types, trainer.running_reward_bounds,
                                   trainer.counters_added_later)
            expected = trainer.checkpoint_arrays(config)
        else:
            expected = {name: (shape, None) for name, shape in trainer.policy_shapes(config).items()}
    except (KeyError, TypeError, ValueError) as error:
        raise runs.RunError(f"corrupt checkpoint {file}: bad metadata ({error.__class__.__name__}: {error})") from None
    arrays, meta = runs.load_checkpoint(file, expected)
    return Checkpoint(config, arrays, meta, file, run_dir)


def default_run_dir(task):
    return os.path.join("runs", f"{task}-{time.strftime('%Y%m%d-%H%M%S')}")


class Agent:
    """A policy-gradient agent for one task: train it (`learn`), use it (`predict`, `evaluate`),
    keep it (`save`, `load`, `resume`).

    `Agent(task, **settings)` takes the settings of `pgcore-train TASK` as keywords (`lr=1e-3`,
    `batch_episodes=8`, ...; Pong also `preset="classic"`), each checked as the CLI checks it.
    Training writes a run directory: config.json, progress.csv and checkpoint.npz.
    """

    def __init__(self, task, **settings_):
        self._setup(make_config(task, **settings_))

    def _setup(self, config):
        self.config = config
        self.run_dir = None      # the run that learn() writes and continues
        self.counters = None     # after learn(): episode, frames, steps, updates, running_reward, ...
        self.stopped_by = None   # after learn(): None, or the signal that stopped it ("Ctrl-C", "SIGTERM")
        self._params = None
        self._trainable = True
        self._policy = None      # what predict() keeps between calls
        self._rng = np.random.default_rng(runs.seed_streams(config.seed)[1])

    def __repr__(self):
        return f"Agent({self.task!r}, run_dir={self.run_dir!r})"

    @property
    def task(self):
        return self.config.task

    @property
    def params(self):
        """The policy's parameters (name -> array): the newest checkpoint's after learn(), the
        seeded initial ones before."""
        if self._params is None:
            self._params = tasks.get(self.task).initial_params(self.config)
        return self._params

    # ---- training ----

    def learn(self, max_frames=None, max_episodes=None, run_dir=None, quiet=None, max_minutes=None):
        """Trains until the run has `max_frames` frames (environment steps for the other tasks),
        `max_episodes` episodes or `max_minutes` minutes of training in all (totals for the run,
        not for this call; None keeps the current limit, 0 means none), or until Ctrl-C / SIGTERM,
        which saves a checkpoint and returns. The first call starts a run in `run_dir` (default
        runs/TASK-TIMESTAMP); later calls, and an agent from `Agent.resume`, continue it. Returns the agent."""
        limits = self._limits(max_frames, max_episodes, quiet, max_minutes)
        trainer = tasks.get(self.task)
        config, opened = self._learning_config(trainer, run_dir, limits)
        with session(config):
            kernels = load_backend(config.backend)
            runs.prepare_run_dir(config.run_dir, resume=opened is not None)
            with runs.run_dir_lock(config.run_dir):
                if opened is not None:  # what it holds now, not what it held before the lock
                    config, opened = self._learning_config(trainer, run_dir, limits)
                resume_meta, resume_arrays = (opened.meta, opened.arrays) if opened else (None, None)
                runs.write_json(os.path.join(config.run_dir, "config.json"), {
                    "task": self.task, "config": dataclasses.asdict(config), "machine": runs.machine_info()})
                try:
                    self.counters, self.stopped_by = train(config, kernels, resume_meta, resume_arrays)
                except MemoryError as error:
                    raise ValueError(f"out of memory training {self.task} ({error}); the run's last checkpoint "
                                     f"is in {config.run_dir}") from None
        self.config, self.run_dir = config, config.run_dir
        self._params = self._policy = None
        self._params = self._loaded_params(open_checkpoint(self.run_dir))
        return self

    def learning_config(self, max_frames=None, max_episodes=None, run_dir=None, quiet=None, max_minutes=None):
        """The checked config that `learn` with these arguments would train with (and record in
        the run's config.json), without training or writing anything (`pgcore-train --print-config`)."""
        limits = self._limits(max_frames, max_episodes, quiet, max_minutes)
        return self._learning_config(tasks.get(self.task), run_dir, limits)[0]

    def _limits(self, max_frames, max_episodes, quiet, max_minutes):
        if not self._trainable:
            raise ValueError("this agent was loaded to play; Agent.resume(RUN_DIR) continues a run's training")
        return {name: value for name, value in
                (("max_frames", max_frames), ("max_episodes", max_episodes), ("max_minutes", max_minutes),
                 ("quiet", quiet)) if value is not None}

    def _learning_config(self, trainer, run_dir, limits):
        """(the checked config of the run `learn` starts or continues, its opened checkpoint or None)."""
        opened = None
        if self.run_dir is None:
            config = dataclasses.replace(self.config, run_dir=str(run_dir or default_run_dir(self.task)), **limits)
        else:
            if run_dir is not None and os.path.abspath(run_dir) != os.path.abspath(self.run_dir):
                raise runs.SettingError("run_dir", f"this agent's run is in {self.run_dir}, not {run_dir}; "
                                                   "Agent(...) starts a new one")
            opened = open_checkpoint(self.run_dir, for_training=True)
            kept = {name: getattr(self.config, name) for name in RESUME_SETTINGS if hasattr(self.config, name)}
            config = dataclasses.replace(opened.config, run_dir=self.run_dir, **kept | limits)
        trainer.check_config(config)
        return config, opened

    # ---- using the policy ----

    def evaluate(self, episodes=100, seed=10_000, sample=False, sticky=None):
        """Returns (episodes,) episode returns (Pong: game scores) of the policy on fresh
        environments seeded seed, seed + 1, ...: greedy, or sampling its actions with `sample`.
        Use seeds that training never used (training seeds its environments from `seed`'s stream).
        Pong's `sticky` plays with that repeat_action_probability instead of the run's (0 is the
        deterministic Pong of the v4 environments other systems report on)."""
        runs.check_whole_number("episodes", episodes, 1)
        runs.check_whole_number("seed", seed, 0)
        return tasks.get(self.task).evaluate(self.play_config(sticky), self.params, episodes, seed,
                                             greedy=not sample, kernels=load_backend(self.config.backend))

    def play_config(self, sticky=None):
        """The config the policy plays with: the run's, or with Pong's `sticky` in its place (checked
        as a run's sticky is)."""
        if sticky is None:
            return self.config
        _check_applies("sticky", self.task)
        opt = tasks.get(self.task).option("sticky")
        settings.check_value("sticky", sticky, opt.type, opt.metadata)
        return dataclasses.replace(self.config, sticky=sticky)

    def predict(self, observation, deterministic=True, episode_start=None):
        """The action for one observation, or an array of actions for a batch (first axis).

        deterministic: the most probable action (the mean for inverted-pendulum), else sampled.
        Pong takes raw frames, (210, 160, 3) or (N, 210, 160, 3) uint8, and returns ALE actions
        (2: up, 3: down, and 0: stay for a net trained with `actions=3`). The policy sees each
        frame minus the previous one, so the agent keeps
        the previous frame of each of the N games: pass `episode_start=True` (or an (N,) bool
        array) with a game's first frame; a new batch size starts every game afresh.
        """
        if self._policy is None:  # the task's player (Task.player), kept between calls
            self._policy = tasks.get(self.task).player(self.config, self.params, load_backend(self.config.backend),
                                                       self._rng)
        return self._policy.predict(observation, deterministic, episode_start)

    @property
    def progress(self):
        """The run's progress.csv as columns: name -> array (one entry per finished episode);
        {} before there is a run."""
        if not self.run_dir or not os.path.exists(os.path.join(self.run_dir, "progress.csv")):
            return {}
        return runs.read_progress(self.run_dir)

    # ---- files ----

    def save(self, path):
        """Writes the policy (parameters and config, no optimizer state) to `path`, an .npz file
        that `Agent.load` and `pgcore-play --checkpoint` open. Returns the path."""
        runs.save_checkpoint(str(path), self.params,
                             {"config": dataclasses.asdict(self.config), "format": POLICY_FORMAT})
        return str(path)

    @classmethod
    def load(cls, path):
        """An agent to play (predict, evaluate) from a run directory or a checkpoint file."""
        opened = open_checkpoint(path)
        agent = cls._from(opened.config)
        agent._params = agent._loaded_params(opened)
        agent._trainable = False
        agent.run_dir = opened.run_dir or None  # for .progress
        return agent

    @classmethod
    def resume(cls, run_dir, **settings_):
        """An agent that continues the run in `run_dir` when `learn` is called. `settings` may
        change only what does not change the run's model: threads, quiet, backend, max_frames,
        max_episodes, max_minutes, checkpoint_every, checkpoint_minutes, Pong's ray and workers,
        and the learning rate: lr, and Pong's lr_decay_frames and lr_decay_to (to lower it once
        learning flattens; the optimizer's state carries over). Others may be given with the
        run's own values, as when a command line is repeated with --resume (Pong's `preset` too,
        when it describes the run); a setting the run's task does not take is a SettingError."""
        opened = open_checkpoint(run_dir, for_training=True)
        task = opened.config.task
        for name in settings_.keys() & tasks.setting_tasks().keys():
            _check_applies(name, task, f": {run_dir} holds a {task} run")
        settings_ = tasks.get(task).resume_settings(opened.config, settings_)  # Pong's preset, checked
        for name, value in settings_.items():
            if name not in RESUME_SETTINGS and getattr(opened.config, name, None) != value:
                raise runs.SettingError(name, f"{name} cannot change when resuming a run (it is saved in its "
                                              f"checkpoint); resuming may change {', '.join(RESUME_SETTINGS)}")
        settings_ = {name: value for name, value in settings_.items() if name in RESUME_SETTINGS}
        config = dataclasses.replace(opened.config, **settings_)
        tasks.get(task).check_config(config)
        agent = cls._from(config)
        agent.run_dir = opened.run_dir or os.path.dirname(opened.path)
        agent._params = agent._loaded_params(opened)
        return agent

    @classmethod
    def pretrained(cls, task=None):
        """The policy that ships with pgcore for `task` (default: the first task that ships one;
        only Pong's does: `pgcore-play pong` plays it)."""
        task = next(iter(PACKAGED_POLICIES), None) if task is None else task
        if task not in PACKAGED_POLICIES:
            raise ValueError(f"no trained policy ships for {task!r}; pgcore ships: {', '.join(PACKAGED_POLICIES)}")
        if not os.path.isfile(PACKAGED_POLICIES[task]):
            raise runs.RunError(f"this install of pgcore ships no trained {task} policy")
        agent = cls.load(PACKAGED_POLICIES[task])
        agent.run_dir = None
        return agent

    @classmethod
    def _from(cls, config):
        agent = cls.__new__(cls)
        agent._setup(config)
        return agent

    def _loaded_params(self, opened):
        names = tasks.get(self.task).policy_shapes(opened.config)   # a value net trains, it does not play
        # float16 is a storage format only (the shipped policy): compute in the run's dtype
        return {name: opened.arrays[name].astype(self.config.dtype) for name in names}

