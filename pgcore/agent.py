"""pgcore's Python API: one `Agent` for every task, in Stable-Baselines3's conventions.

    import pgcore
    agent = pgcore.Agent(task, seed=0, lr=0.01)           # a task of pgcore.TASKS; keywords: the CLI's settings
    agent.learn(max_episodes=1500, run_dir="runs/cp")     # blocks; Ctrl-C saves and returns
    returns = agent.evaluate(episodes=100, seed=10_000)   # greedy episode returns
    action, state = agent.predict(observation)            # one observation or a batch; Pong's state: previous frames
    agent.save("cp.npz")                                  # the whole training state: weights, optimizer, counters, RNG
    agent = pgcore.Agent.resume("cp.npz"); agent.learn(max_episodes=3000, run_dir="runs/cp2")

The command line (`pgcore.cli`) is argparse over these calls. Every task is reached through the
registry (`pgcore.tasks`) and its `pgcore.task.Task` interface: settings are checked once, by the
task (`Task.check_config`, from the bounds its config's fields carry): a bad one raises
`pgcore.SettingError` (runs.SettingError), a ValueError naming it. `open_checkpoint` opens any run
directory or checkpoint file (a run's, `Agent.save`'s, a policy file, a shipped policy) for the CLI,
`play` and `Agent`. `session` and `train` run a task's trainer (`Task.run_context`, `Task.train`: Pong
picks Ray workers or this process's emulators).
"""
import dataclasses
import os
import time
from typing import NamedTuple

import numpy as np

from pgcore import runs, settings, tasks
from pgcore.backends import load_backend

TASKS = tasks.descriptions()  # the tasks registered when pgcore was imported: name -> one line
POLICY_FORMAT = "pgcore-policy-1"  # the parameters alone: what Agent.save wrote before it saved the whole state
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
    """Runs the task's trainer (inside `session(config)`). Returns (counters, what stopped it: None,
    the signal or "callback")."""
    return tasks.of(config).train(config, kernels, resume_meta, resume_arrays)


def is_policy_file(meta, trainer):
    """Whether a file's metadata is a policy file's (the parameters alone, no state to train on):
    an `Agent.save` file of format pgcore-policy-1, or a policy that ships (the task's policy_formats)."""
    return meta.get("format") in (POLICY_FORMAT, *trainer.policy_formats)


class Checkpoint(NamedTuple):
    config: object
    arrays: dict
    meta: dict
    path: str       # the checkpoint file
    run_dir: str    # its run directory ("" when it is not a run's checkpoint)


def open_checkpoint(path, for_training=False):
    """Opens a run directory or a checkpoint file (a run's, an `Agent.save` file, a policy file, a
    shipped policy).

    Checks the recorded config, and the arrays: the parameters for playing, or with
    `for_training` every array, counter and RNG state a resumed run needs (and that the run's
    config.json is readable). Raises RunError with a one-line message naming the file (for
    training, a policy file's says that it holds no optimizer state). Its `run_dir` is the run
    directory when `path` is one, or a run's checkpoint.npz (progress.csv or config.json beside
    it); "" for any other file, which is in no run.
    """
    path = str(path)
    file = os.path.join(path, runs.CHECKPOINT_NAME) if os.path.isdir(path) else path
    _, meta = runs.load_checkpoint(file)
    saved = meta.get("config")
    task = tasks.name_in_checkpoint(meta)
    if not isinstance(task, str) or task not in tasks.REGISTRY:
        raise runs.RunError(f"corrupt checkpoint {file}: it records no known task ({task!r})")
    trainer = tasks.get(task)
    beside = os.path.dirname(file)
    in_run = os.path.isdir(path) or (os.path.basename(file) == runs.CHECKPOINT_NAME and any(
        os.path.exists(os.path.join(beside, name)) for name in ("progress.csv", "config.json")))
    run_dir = beside if in_run else ""
    if for_training and is_policy_file(meta, trainer):
        raise runs.RunError(f"{file} is a policy file (format {meta.get('format')}): it holds the parameters only, "
                            "no optimizer state, counters or RNG state to resume training from; Agent.load plays it, "
                            "and Agent.load(PATH).save(NEW_PATH) writes a file that resumes from its parameters "
                            "with fresh optimizer state")
    if for_training and run_dir and os.path.exists(os.path.join(run_dir, "config.json")):
        runs.read_json(os.path.join(run_dir, "config.json"))  # a damaged record of the run is reported
    try:
        config = trainer.config_from_saved(saved)
        trainer.check_config(config)
        if for_training:
            runs.check_resume_meta(meta, trainer.counter_types, trainer.running_reward_bounds,
                                   trainer.counters_added_later)
            expected = trainer.checkpoint_arrays(config)
        else:
            # parameters of any float dtype (a policy file may store float16), fixed arrays of their own
            fixed = trainer.fixed_arrays(config)
            expected = {name: (shape, fixed[name][1] if name in fixed else None)
                        for name, shape in trainer.policy_shapes(config).items()}
    except (KeyError, TypeError, ValueError) as error:
        raise runs.RunError(f"corrupt checkpoint {file}: bad metadata ({error.__class__.__name__}: {error})") from None
    arrays, meta = runs.load_checkpoint(file, expected)
    return Checkpoint(config, arrays, meta, file, run_dir)


def default_run_dir(task):
    return os.path.join("runs", f"{task}-{time.strftime('%Y%m%d-%H%M%S')}")


class Agent:
    """A policy-gradient agent for one task: train it (`learn`), use it (`predict`, `evaluate`),
    keep it (`save`, `load`, `resume`), in Stable-Baselines3's conventions.

    `Agent(task, **settings)` takes the settings of `pgcore-train TASK` as keywords (`lr=1e-3`,
    `batch_episodes=8`, ...; Pong also `preset="classic"`), each checked as the CLI checks it.
    Training writes a run directory: config.json, progress.csv and checkpoint.npz.
    """

    def __init__(self, task, **settings_):
        self._setup(make_config(task, **settings_))

    def _setup(self, config):
        self.config = config
        self.run_dir = None      # the run that learn() writes and continues
        self.counters = None     # after learn() (or from a checkpoint): episode, frames, steps, updates, ...
        self.stopped_by = None   # after learn(): None, or what stopped it ("Ctrl-C", "SIGTERM", "callback")
        self._params = None
        self._trainable = True
        self._source = None      # the file of this agent's training state when it is no run's checkpoint
        self._player = None      # the task's player: the parameters and a random generator, no game's state
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

    def learn(self, max_frames=None, max_episodes=None, run_dir=None, quiet=None, max_minutes=None, callback=None):
        """Trains until the run has `max_frames` frames (environment steps for the other tasks),
        `max_episodes` episodes (exactly) or `max_minutes` minutes of training in all (totals for
        the run, not for this call; None keeps the current limit, 0 means none), until Ctrl-C /
        SIGTERM, or until `callback` returns False; each saves a checkpoint and returns. Returns the agent.

        The first call starts a run in `run_dir` (default runs/TASK-TIMESTAMP; it must hold no run);
        later calls, and an agent from `Agent.resume` of a run, continue it. An agent from
        `Agent.resume` of a saved file continues in a new run directory, which `run_dir` must name.

        `callback(row)` is called after each finished episode with its progress row (a dict of
        progress.csv's columns: episode, frames, steps, reward, running_reward, ...). Returning
        False (exactly False) stops the run as Ctrl-C does (`stopped_by` "callback"): Pong stops
        after that episode, the other tasks after the batch it belongs to (its other rows are
        written, the callback is not called again). An exception in it stops the run the same way
        and propagates once the checkpoint is saved."""
        if callback is not None and not callable(callback):
            raise runs.SettingError("callback", f"callback must be callable (called with each episode's progress "
                                                f"row), not {callback!r}")
        limits = self._limits(max_frames, max_episodes, quiet, max_minutes)
        trainer = tasks.get(self.task)
        config, opened = self._learning_config(trainer, run_dir, limits)
        continuing = self.run_dir is not None
        raised = []

        def call_back(row):
            try:
                return callback(row)
            except Exception:
                raised.append(True)
                raise

        with session(config):
            kernels = load_backend(config.backend)
            runs.prepare_run_dir(config.run_dir, resume=continuing)
            with runs.run_dir_lock(config.run_dir):
                if opened is not None:  # what it holds now, not what it held before the lock
                    config, opened = self._learning_config(trainer, run_dir, limits)
                resume_meta, resume_arrays = (opened.meta, opened.arrays) if opened else (None, None)
                runs.write_json(os.path.join(config.run_dir, "config.json"), {
                    "task": self.task, "config": dataclasses.asdict(config), "machine": runs.machine_info()})
                try:
                    with runs.episode_callback(None if callback is None else call_back):
                        self.counters, self.stopped_by = train(config, kernels, resume_meta, resume_arrays)
                except MemoryError as error:
                    self._trained(config, failed=True)
                    raise ValueError(f"out of memory training {self.task} ({error}); the run's last checkpoint "
                                     f"is in {config.run_dir}") from None
                except BaseException:
                    self._trained(config, failed=True, stopped_by="callback" if raised else None)
                    raise
        self._trained(config)
        return self

    def _trained(self, config, failed=False, stopped_by=None):
        """After a run in config.run_dir: the agent's run is it, and its parameters the checkpoint's
        (after an exception, only when the run saved one, and as far as it can be read)."""
        if failed:
            if not os.path.isfile(os.path.join(config.run_dir, runs.CHECKPOINT_NAME)):
                return  # it never started: the agent is as it was
            self.stopped_by = stopped_by
        self.config, self.run_dir, self._source = config, config.run_dir, None
        self._params = self._player = None
        try:
            opened = open_checkpoint(self.run_dir)
        except runs.RunError:
            if not failed:
                raise
            return
        self._params = self._loaded_params(opened)
        if failed:
            self.counters = opened.meta.get("counters")

    def learning_config(self, max_frames=None, max_episodes=None, run_dir=None, quiet=None, max_minutes=None):
        """The checked config that `learn` with these arguments would train with (and record in
        the run's config.json), without training or writing anything (`pgcore-train --print-config`)."""
        limits = self._limits(max_frames, max_episodes, quiet, max_minutes)
        return self._learning_config(tasks.get(self.task), run_dir, limits)[0]

    def _limits(self, max_frames, max_episodes, quiet, max_minutes):
        if not self._trainable:
            raise ValueError("this agent was loaded to play; Agent.resume(PATH) continues training from a run or a "
                             "saved file")
        return {name: value for name, value in
                (("max_frames", max_frames), ("max_episodes", max_episodes), ("max_minutes", max_minutes),
                 ("quiet", quiet)) if value is not None}

    def _learning_config(self, trainer, run_dir, limits):
        """(the checked config of the run `learn` starts or continues, its opened checkpoint or None):
        a new run; the agent's run, continued in place; or a saved file's, continued in the new
        run directory `run_dir`."""
        opened = None
        if self.run_dir is None and self._source is None:
            config = dataclasses.replace(self.config, run_dir=str(run_dir or default_run_dir(self.task)), **limits)
        else:
            if self.run_dir is not None:
                if run_dir is not None and os.path.abspath(run_dir) != os.path.abspath(self.run_dir):
                    raise runs.SettingError("run_dir", f"this agent's run is in {self.run_dir}, not {run_dir}; "
                                                       "Agent(...) starts a new one, and agent.save(FILE) then "
                                                       "Agent.resume(FILE) continues this one elsewhere")
                source, target = self.run_dir, self.run_dir
            elif not run_dir:
                raise runs.SettingError("run_dir", f"{self._source} is not in a run directory: name the new run "
                                                   "directory that continues it (learn(run_dir=DIR), pgcore-train "
                                                   "--run-dir DIR); it must not hold a run")
            else:
                source, target = self._source, str(run_dir)
            opened = open_checkpoint(source, for_training=True)
            kept = {name: getattr(self.config, name) for name in RESUME_SETTINGS if hasattr(self.config, name)}
            config = dataclasses.replace(opened.config, run_dir=target, **kept | limits)
        trainer.check_config(config)
        return config, opened

    # ---- using the policy ----

    def evaluate(self, episodes=100, seed=10_000, *, deterministic=True, sticky=None, **removed):
        """Returns (episodes,) episode returns (Pong: game scores) of the policy on fresh
        environments seeded seed, seed + 1, ...: greedy, or sampling its actions with
        `deterministic=False`. Use seeds that training never used (training seeds its environments
        from `seed`'s stream). Pong's `sticky` plays with that repeat_action_probability instead of
        the run's (0 is the deterministic Pong of the v4 environments other systems report on)."""
        if removed:
            name = next(iter(removed))
            if name == "sample":
                raise TypeError("evaluate() takes deterministic=, not sample=: deterministic=False samples the "
                                "actions (sample=True), deterministic=True plays greedily (sample=False)")
            raise TypeError(f"evaluate() got an unexpected keyword argument {name!r}")
        runs.check_whole_number("episodes", episodes, 1)
        runs.check_whole_number("seed", seed, 0)
        _check_deterministic(deterministic)
        return tasks.get(self.task).evaluate(self.play_config(sticky), self.params, episodes, seed,
                                             deterministic=bool(deterministic),
                                             kernels=load_backend(self.config.backend))

    def play_config(self, sticky=None):
        """The config the policy plays with: the run's, or with Pong's `sticky` in its place (checked
        as a run's sticky is)."""
        if sticky is None:
            return self.config
        _check_applies("sticky", self.task)
        opt = tasks.get(self.task).option("sticky")
        settings.check_value("sticky", sticky, opt.type, opt.metadata)
        return dataclasses.replace(self.config, sticky=sticky)

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        """(action, state): the action for one observation, or an array of actions for a batch
        (first axis), and the state to pass back with the next observation, as Stable-Baselines3's
        `predict`.

        deterministic: the most probable action (the mean for inverted-pendulum), else sampled.
        Pong takes raw frames, (210, 160, 3) or (N, 210, 160, 3) uint8, and returns ALE actions
        (2: up, 3: down, and 0: stay for a net trained with `actions=3`). Its policy sees each frame
        minus the game's previous one: the state is the previous frames, preprocessed ((6400,) or
        (N, 6400) uint8). `state=None` starts every game with this frame; `episode_start` True (or
        an (N,) bool array) starts the games it marks. The agent keeps no game's state, so callers
        may interleave games. The other tasks' policies have no memory: their state is None.
        """
        _check_deterministic(deterministic)
        if self._player is None:  # the task's player (Task.player): parameters and a generator, no state
            self._player = tasks.get(self.task).player(self.config, self.params, load_backend(self.config.backend),
                                                       self._rng)
        return self._player.predict(observation, state, episode_start, bool(deterministic))

    @property
    def progress(self):
        """The run's progress.csv as columns: name -> array (one entry per finished episode);
        {} before there is a run."""
        if not self.run_dir or runs.progress_path(self.run_dir) is None:
            return {}
        return runs.read_progress(self.run_dir)

    # ---- files ----

    def save(self, path):
        """Writes the agent's whole training state to `path`, an .npz checkpoint (arrays and JSON, no
        pickle, written atomically) that `Agent.load` plays, `pgcore-play --checkpoint` opens and
        `Agent.resume` continues training from: the parameters, the optimizer's state, the counters,
        the RNG state and the config. After `learn` (or from a run), its run's newest checkpoint;
        an agent that holds parameters only (a new one, `Agent.pretrained`, a policy file's) saves
        a new run's state over them: fresh optimizer state, counters at 0. Returns the path."""
        arrays, meta = self._training_state()
        runs.save_checkpoint(str(path), arrays, meta)
        return str(path)

    def _training_state(self):
        """(arrays, meta) of the agent's checkpoint (see save), its parameters the agent's."""
        trainer = tasks.get(self.task)
        source = self.run_dir or self._source
        if source:
            opened = open_checkpoint(source, for_training=True)
            arrays, meta = dict(opened.arrays), dict(opened.meta)
        else:
            arrays = trainer.new_state(self.config)
            meta = runs.new_meta(self.config, trainer.counter_types, trainer.checkpoint_format)
        fixed = trainer.fixed_arrays(self.config)  # (kept in their own dtype)
        arrays |= {name: value if name in fixed else np.asarray(value, dtype=self.config.dtype)
                   for name, value in self.params.items()}
        return arrays, meta | {"config": dataclasses.asdict(self.config), "format": trainer.checkpoint_format}

    @classmethod
    def load(cls, path):
        """An agent to play (predict, evaluate) from a run directory or a checkpoint file (a run's,
        an `Agent.save` file, a policy file)."""
        opened = open_checkpoint(path)
        agent = cls._from(opened.config)
        agent._params = agent._loaded_params(opened)
        agent._trainable = False
        agent.run_dir = opened.run_dir or None  # for .progress
        parameters_only = is_policy_file(opened.meta, tasks.get(agent.task))
        agent._source = None if parameters_only or opened.run_dir else opened.path
        counters = opened.meta.get("counters")
        agent.counters = None if parameters_only or not isinstance(counters, dict) else dict(counters)
        return agent

    @classmethod
    def resume(cls, path, **settings_):
        """An agent that continues training from `path` when `learn` is called: a run directory (or
        its checkpoint.npz), continued in place, or a file written by `Agent.save`, continued in a
        new run directory that `learn(run_dir=...)` must name (one that holds no run). A policy
        file (parameters only) raises RunError: it holds no optimizer state.

        `settings` may change only what does not change the run's model: threads, quiet, backend,
        max_frames, max_episodes, max_minutes, checkpoint_every, checkpoint_minutes, Pong's ray and
        workers, and the learning rate: lr, and Pong's lr_decay_frames and lr_decay_to (to lower it
        once learning flattens; the optimizer's state carries over). Others may be given with the
        run's own values, as when a command line is repeated with --resume (Pong's `preset` too,
        when it describes the run); a setting the run's task does not take is a SettingError."""
        opened = open_checkpoint(path, for_training=True)
        task = opened.config.task
        for name in settings_.keys() & tasks.setting_tasks().keys():
            _check_applies(name, task, f": {path} holds a {task} run")
        settings_ = tasks.get(task).resume_settings(opened.config, settings_)  # Pong's preset, checked
        for name, value in settings_.items():
            if name not in RESUME_SETTINGS and getattr(opened.config, name, None) != value:
                raise runs.SettingError(name, f"{name} cannot change when resuming a run (it is saved in its "
                                              f"checkpoint); resuming may change {', '.join(RESUME_SETTINGS)}")
        settings_ = {name: value for name, value in settings_.items() if name in RESUME_SETTINGS}
        config = dataclasses.replace(opened.config, **settings_)
        tasks.get(task).check_config(config)
        agent = cls._from(config)
        agent.run_dir = opened.run_dir or None
        agent._source = None if opened.run_dir else opened.path
        agent.counters = dict(opened.meta["counters"])
        agent._params = agent._loaded_params(opened)
        return agent

    @classmethod
    def pretrained(cls, task=None, game=None):
        """A policy that ships with pgcore: `task`'s (default: the first task that ships one, Pong),
        for Atari the `game`'s (`pgcore-play pong`, `pgcore-play atari --game G` play them)."""
        shipping = [trainer.name for trainer in tasks.shipping()]
        if task is None and not shipping:
            raise ValueError("this install of pgcore ships no trained policy")
        task = shipping[0] if task is None else task
        if task not in tasks.REGISTRY:
            raise ValueError(f"unknown task {task!r}; known tasks: {', '.join(tasks.names())}")
        try:
            path = tasks.get(task).shipped_policy(game)
        except ValueError as error:
            raise ValueError(f"{error}; pgcore ships policies for: {', '.join(shipping) or 'none'}") from None
        agent = cls.load(path)
        agent.run_dir = None
        return agent

    @classmethod
    def _from(cls, config):
        agent = cls.__new__(cls)
        agent._setup(config)
        return agent

    def _loaded_params(self, opened):
        trainer = tasks.get(self.task)
        names = trainer.policy_shapes(opened.config)   # a value net trains, it does not play
        fixed = trainer.fixed_arrays(opened.config)   # (an Atari game's background: its own dtype)
        # float16 is a storage format only (the shipped policy): compute in the run's dtype
        return {name: opened.arrays[name] if name in fixed else opened.arrays[name].astype(self.config.dtype)
                for name in names}


def _check_deterministic(deterministic):
    if not isinstance(deterministic, (bool, np.bool_)):
        raise ValueError(f"deterministic must be True or False, not {deterministic!r}")
