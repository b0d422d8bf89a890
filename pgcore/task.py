"""The interface every task implements: `Task`.

A task is one module holding its config class (a dataclass of settings deriving from
`settings.RunConfig`, whose defaults are the task's default recipe), its trainer (a loop inside
a `runs.Run`), its player, and a `Task` subclass that ties them together. One line in
`pgcore.tasks` registers an instance; `pgcore.Agent`, pgcore-train, pgcore-play and the settings
tables of docs/API.md reach every task through that registry and this interface only.

    class CoinTask(Task):
        name, description = "coin", "guess a coin's side: a softmax over two actions"
        config_class = CoinConfig                  # settings.RunConfig plus the task's own settings
        checkpoint_format = "pgcore-coin-1"
        def param_shapes(self, config): ...        # name -> shape of every trained array
        def checkpoint_arrays(self, config): ...   # name -> (shape, dtype) of every saved array
        def initial_params(self, config): ...      # a new run's parameters, seeded by config.seed
        def train(self, config, kernels, resume_meta=None, resume_arrays=None): ...  # (counters, stopped_by)
        def player(self, config, params, kernels, rng): ...   # .predict(observation, state, episode_start,
                                                              #          deterministic) -> (action, state)
        def evaluate(self, config, params, episodes, seed, deterministic=True, kernels=None, on_episode=None,
                     frames=None): ...                          # (episodes,) returns

docs/DESIGN.md ("Adding a task") has a whole one.
"""
import abc
import contextlib
import dataclasses
import math
import os

import numpy as np

from pgcore import runs, settings


class Task(abc.ABC):
    """One task of pgcore-train and pgcore-play (an instance; several may share a class)."""

    # ---- what it is ----
    name = ""              # pgcore-train's first word
    description = ""       # one line: pgcore.TASKS, pgcore-train --help
    title = ""             # its name in a sentence ("Pong"); default: name
    config_class = None    # a dataclass deriving from settings.RunConfig: its fields are the settings
    family = ""            # a name that a setting's `applies_to` may give instead of task names
    help_note = ""         # after the task's name, over its own flags in --help
    docs_group = ""        # the tasks of one group share a flags table in docs/API.md (default: name) ...
    docs_heading = ""      # ... under this line (pgcore.cli.settings_tables) ...
    docs_label = ""        # ... and are called this where the table of every task's flags tells them apart
    presets = {}           # recipes: name -> settings over the defaults (Pong's --preset) ...
    preset_notes = {}      # ... and one line on each

    # ---- what its checkpoints hold ----
    checkpoint_format = ""              # __meta__["format"] of its run checkpoints
    policy_formats = ()                 # formats of other files of its policy (one that ships)
    counter_types = runs.COUNTER_TYPES  # counter -> type, checked on resume
    counters_added_later = {}           # counters older checkpoints lack -> their start value
    running_reward_bounds = (-math.inf, math.inf)

    # ---- how pgcore-play talks about it ----
    packaged_policy = None   # the path of the one policy that ships with pgcore for it (Pong's)
    episode_word = "episode"
    score_word = "return"
    play_episodes = 100      # pgcore-play's default --episodes
    print_each_episode = False
    play_options = {}        # pgcore-play flags that only some tasks take: name -> help

    def shipped_policies(self):
        """The policies that ship with pgcore for this task and are installed: choice -> path, the
        choice None for a task's one policy (`packaged_policy`), a game's name for Atari's."""
        return {None: self.packaged_policy} if self.packaged_policy and os.path.isfile(self.packaged_policy) else {}

    def shipped_path(self, config):
        """Where the policy of a run with `config` ships (benchmarks/learning/ship_policy.py writes it)."""
        return self.packaged_policy

    def shipped_policy(self, game=None):
        """The path of the shipped policy `game` picks (None for a task with one); ValueError
        naming what ships when there is none."""
        policies = self.shipped_policies()
        if game is not None:
            raise ValueError(f"{self.name} ships no policy per game: it takes no game")
        if None not in policies:
            raise ValueError(f"no trained policy ships for {self.name!r}")
        return policies[None]

    # ---- settings ----

    def defaults(self):
        """The task's recipe over its config class's defaults (settings name -> value): {} when
        the class's defaults are the task's (several tasks of one class differ here)."""
        return {}

    def extra_options(self):
        """Settings that are not fields of the config (settings.Option): Pong's preset."""
        return []

    def options(self):
        """Every setting the task takes (settings.Option), in --help's order: the settings of every
        task first, then `extra_options`, then the config's own fields that apply to this task."""
        common = {field.name for field in dataclasses.fields(settings.RunConfig)}
        fields = [opt for opt in settings.options_of(self.config_class) if self._applies(opt)]
        return ([opt for opt in fields if opt.name in common] + list(self.extra_options())
                + [opt for opt in fields if opt.name not in common])

    def _applies(self, opt):
        scope = opt.metadata.get("applies_to")
        return scope is None or self.name in scope or self.family in scope

    def option(self, name):
        """The settings.Option `name` of this task (KeyError if it takes none of that name)."""
        for opt in self.options():
            if opt.name == name:
                return opt
        raise KeyError(name)

    def takes(self, name):
        return any(opt.name == name for opt in self.options())

    def make_config(self, **settings_):
        """The config of a new run: the class's defaults, then `defaults()`, then `settings_`
        (unchecked: `check_config` checks it)."""
        return self.config_class(**self.defaults() | settings_)

    def default_config(self):
        return self.make_config()

    def check_config(self, config):
        """Raises SettingError (a ValueError) naming the first setting out of its bounds: the
        fields' own bounds (the fields that apply to the task), then `check_more`."""
        runs.check_one_of("task", config.task, (self.name,))
        settings.check(config, {opt.name for opt in self.options()} - {"task"})
        self.check_more(config)

    def check_more(self, config):
        """Checks that span settings (a setting that needs another), after each one's bounds."""

    def config_from_saved(self, saved):
        """The config a checkpoint recorded (a dict); fields added since keep what runs before
        them ran with."""
        return self.config_class(**saved)

    def resume_settings(self, config, given):
        """Checks the settings given to resume a run of `config` that are not fields (Pong's
        preset: it must describe the run), and returns the others."""
        return given

    def preset_flags(self, preset):
        """The flags that `preset` amounts to over the defaults (--actions 2 --no-frame-input ...)."""
        return self.changed_flags(self.make_config(), self.make_config(preset=preset))

    def changed_flags(self, base, chosen):
        """The flags that turn config `base` into `chosen`: one for each setting where they differ."""
        return [settings.flag_text(opt, getattr(chosen, opt.name)) for opt in settings.options_of(self.config_class)
                if getattr(chosen, opt.name) != getattr(base, opt.name)]

    def default_text(self, name, preset=None):
        """The default of setting `name` as --help and API.md write it (with `preset`: that
        preset's value)."""
        opt = self.option(name)
        text = opt.metadata.get("default_text")
        if name == "preset" and preset is not None:
            return preset
        if text is not None:
            return text
        config = self.default_config() if preset is None else self.make_config(preset=preset)
        return settings.value_text(getattr(config, name, None))

    # ---- parameters and checkpoints ----

    @abc.abstractmethod
    def param_shapes(self, config):
        """name -> shape of every parameter a run trains, from the config alone (no environment)."""

    def policy_shapes(self, config):
        """name -> shape of the arrays that play: parameters (a value net trains, it does not play)
        and `fixed_arrays`."""
        return self.param_shapes(config)

    def fixed_arrays(self, config):
        """name -> (shape, dtype) of the arrays that play beside the parameters and never train
        (an Atari game's background); `initial_params` makes them too."""
        return {}

    @abc.abstractmethod
    def checkpoint_arrays(self, config):
        """name -> (shape, dtype) of every array a run's checkpoint holds (shape None: any 1-d length)."""

    @abc.abstractmethod
    def initial_params(self, config):
        """The parameters a new run starts from (seeded by config.seed), and its `fixed_arrays`."""

    def new_state(self, config):
        """Every array of a new run's first checkpoint: `initial_params`, and zeros for the rest of
        `checkpoint_arrays` (optimizer state, gradients; an array of any length: empty). What
        `Agent.save` writes for an agent that has not trained."""
        params = self.initial_params(config)
        return params | {name: np.zeros((0,) if shape is None else shape, dtype)
                         for name, (shape, dtype) in self.checkpoint_arrays(config).items() if name not in params}

    # ---- training ----

    def run_context(self, config):
        """A context manager around a run (Pong's Ray, started or joined); entered before the run
        directory is made."""
        return contextlib.nullcontext()

    @abc.abstractmethod
    def train(self, config, kernels, resume_meta=None, resume_arrays=None):
        """Trains inside a runs.Run until a limit or Ctrl-C / SIGTERM; returns (counters, the signal
        that stopped it or None)."""

    # ---- playing ----

    @abc.abstractmethod
    def player(self, config, params, kernels, rng):
        """An object whose predict(observation, state=None, episode_start=None, deterministic=True)
        returns (the action for one observation or an array of actions for a batch, the state):
        Agent.predict. The state is what the policy needs of the observations before (Pong: each
        game's previous frame), None for a policy without memory; the player keeps none of it."""

    @abc.abstractmethod
    def evaluate(self, config, params, episodes, seed, deterministic=True, kernels=None, on_episode=None,
                 frames=None):
        """(episodes,) returns of the policy on fresh environments seeded seed, seed + 1, ...,
        greedy unless not `deterministic`; on_episode(index, score) after each; `frames`, a list,
        collects the first episode's frames (only where 'gif' is among play_options)."""


def episode_starts(episode_start, n):
    """A player's `episode_start` for n observations, checked: a new (n,) bool array (None: all
    False; one bool: all of them). Raises ValueError naming it otherwise."""
    if episode_start is None:
        return np.zeros(n, dtype=bool)
    starts = np.asarray(episode_start)
    if starts.dtype.kind not in "biu" or starts.shape not in ((), (n,)):
        raise ValueError(f"episode_start must be None, True or False, or {n} of them (bools, one per observation), "
                         f"not {episode_start!r}")
    return np.array(np.broadcast_to(starts != 0, (n,)))


def no_state(state):
    """A memoryless player's state, checked: it must be None (the state predict returned)."""
    if state is not None:
        raise ValueError(f"state must be None: this policy has no memory (predict returns None as its state; "
                         f"predict's arguments are observation, state, episode_start, deterministic), not {state!r}")
    return None
