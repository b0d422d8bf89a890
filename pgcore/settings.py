"""Settings, each defined once: a field of a task's config dataclass that carries its default,
its bounds, its help text and its command-line flag.

    lr: float = setting(1e-3, bounds=(0.0, 1.0, True), metavar="X", help="learning rate, in (0, 1]")

From these fields come the checks that raise SettingError (`check`), the flags of pgcore-train
and their --help text with the defaults (`argparse_keywords`, `default_text`), and the settings
tables of docs/API.md (pgcore.cli.settings_tables). `RunConfig` holds the settings every task
has; a task's config class derives from it and may give one of them another default or help
(`override`). A setting that is not a field (Pong's preset) is an `Option` made by `option`.

Metadata of a setting (all optional but `help`):

  help          what it means, one or more sentences (the --help text and API.md's meaning)
  flag          its flag ("--lr" by default, from the name; None: no flag, a setting of the API only)
  metavar       the flag's value in --help ("N", "X", ...)
  minimum       a whole number >= minimum
  bounds        (low, high, low_open): a finite real number in [low, high], or (low, high]
  choices       the values it may take (argparse refuses the others too)
  switch        a bool's flag: "on" (--sync sets True), "both" (--frame-input / --no-frame-input),
                "off" (--no-slip sets False)
  applies_to    the families or task names of its config class that take it (None: all of them)
  default_text  the default as --help and API.md write it, when the value would mislead (a
                machine's core count, an empty run directory)
  run           where or how long to train (limits, run directory, display): the CLI passes it to
                Agent.learn rather than to the Agent's settings
"""
import dataclasses
import math
from dataclasses import dataclass
from typing import NamedTuple

from pgcore import runs

MISSING = dataclasses.MISSING
SWITCHES = ("on", "both", "off")


def _metadata(help, flag="", metavar=None, minimum=None, bounds=None, choices=None, switch=None,
              applies_to=None, default_text=None, run=False):
    if switch is not None and switch not in SWITCHES:
        raise ValueError(f"switch must be one of {SWITCHES}, not {switch!r}")
    return {"help": help, "flag": flag, "metavar": metavar, "minimum": minimum, "bounds": bounds,
            "choices": None if choices is None else tuple(choices), "switch": switch,
            "applies_to": None if applies_to is None else tuple(applies_to), "default_text": default_text,
            "run": run}


def setting(default=MISSING, *, help, default_factory=MISSING, **metadata):
    """A config field (dataclasses.field) carrying its metadata (see the module's docstring)."""
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata=_metadata(help, **metadata))


def override(config_class, name, **changes):
    """The field `name` of `config_class` (a base config) with some of its default
    (`default` or `default_factory`) and metadata changed: a derived config redefines it so."""
    base = next(field for field in dataclasses.fields(config_class) if field.name == name)
    metadata = dict(base.metadata) | {key: value for key, value in changes.items()
                                      if key not in ("default", "default_factory")}
    default, factory = base.default, base.default_factory
    if "default" in changes or "default_factory" in changes:
        default, factory = changes.get("default", MISSING), changes.get("default_factory", MISSING)
    return dataclasses.field(default=default, default_factory=factory, metadata=metadata)


class Option(NamedTuple):
    """One setting as the CLI and the docs see it: a config field, or a setting that is not one."""
    name: str
    type: type
    metadata: dict

    @property
    def flag(self):
        flag = self.metadata["flag"]
        return "--" + self.name.replace("_", "-") if flag == "" else flag

    @property
    def help(self):
        return self.metadata["help"]


def option(name, type, *, help, **metadata):
    """A setting that is not a field of a config (Pong's preset)."""
    return Option(name, type, _metadata(help, **metadata))


def options_of(config_class):
    """The Options of a config class, one per field, in field order."""
    return [Option(field.name, field.type, dict(field.metadata)) for field in dataclasses.fields(config_class)]


# ---- checks ----

def check_value(name, value, kind, metadata):
    """Raises SettingError naming `name` unless `value` is within its metadata's bounds."""
    if kind is bool:
        runs.check_bool(name, value)
    elif metadata.get("choices") is not None:
        runs.check_one_of(name, value, metadata["choices"])
    elif metadata.get("minimum") is not None:
        runs.check_whole_number(name, value, metadata["minimum"])
    elif metadata.get("bounds") is not None:
        runs.check_number(name, value, *metadata["bounds"])


def check(config, names=None):
    """Checks each field of `config` named in `names` (default: every field) against its
    metadata, in field order; raises SettingError naming the first one out of bounds."""
    for field in dataclasses.fields(config):
        if names is None or field.name in names:
            check_value(field.name, getattr(config, field.name), field.type, field.metadata)


# ---- text: defaults and flags as --help and API.md write them ----

def value_text(value, kind=None):
    """A setting's value as the help writes it: on/off, 5000000, 0.001, none."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if value == "":
        return "none"
    return str(value)


def flag_text(opt, value):
    """The command-line words that set `opt` to `value`: --lr 0.0001, --frame-input, --no-slip."""
    if opt.type is bool:
        switch = opt.metadata["switch"]
        if switch == "both":
            return opt.flag if value else "--no-" + opt.flag[2:]
        if (switch == "on") == bool(value):
            return opt.flag
        return f"{opt.name}={value!r}"  # a value the flag cannot give
    return f"{opt.flag} {value_text(value)}"


def join_words(words, last="and"):
    """'a', 'a and b', 'a, b and c'."""
    words = list(words)
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} {last} {words[-1]}"


def grouped_text(texts):
    """'0.5 for cliffwalking, 0 otherwise' from {task: its text}: the texts with the tasks that
    have each, the most common one as 'otherwise' when several share it."""
    by_text = {}
    for task, text in texts.items():
        by_text.setdefault(text, []).append(task)
    if len(by_text) == 1:
        return next(iter(by_text))
    common = max(by_text, key=lambda text: len(by_text[text]))
    if len(by_text[common]) == 1:
        return ", ".join(f"{text} for {join_words(tasks)}" for text, tasks in by_text.items())
    rare = [f"{text} for {join_words(tasks)}" for text, tasks in by_text.items() if text != common]
    return f"{', '.join(rare)}, {common} otherwise"


@dataclass
class RunConfig:
    """The settings every task has. A task's config class derives from it (dataclass
    inheritance keeps these fields first) and may redefine one with `override`."""
    task: str = setting("", flag=None, help="the task (pgcore-train's first word)")
    seed: int = setting(0, minimum=0, metavar="S", help="seed of every random stream")
    max_frames: int = setting(0, minimum=0, metavar="N", run=True,
                              help="stop after N frames (0: no limit)")
    max_episodes: int = setting(0, minimum=0, metavar="N", run=True,
                                help="stop after exactly N episodes (0: no limit)")
    max_minutes: float = setting(
        0.0, bounds=(0.0, math.inf, False), metavar="M", run=True,
        help="stop after M minutes of training wall time, counted over every segment of a resumed run, so "
             "that --resume RUN --max-minutes 60 ends the run at 60 minutes in all; the run stops at its next "
             "check, learns from its batch in progress and saves (0: no limit)")
    run_dir: str = setting("", metavar="DIR", run=True, default_text="runs/TASK-YYYYmmdd-HHMMSS",
                           help="where the run's files go (config.json, progress.csv, checkpoint.npz); "
                                "it must not already hold a checkpoint")
    backend: str = setting("cython", choices=("cython", "numpy"),
                           help="the compiled kernels or their NumPy twins")
    threads: int = setting(1, minimum=1, metavar="N", help="kernel threads")
    dtype: str = setting("float64", choices=("float32", "float64"), help="parameter dtype")
    checkpoint_every: int = setting(500, minimum=0, metavar="N",
                                    help="episodes between checkpoints (0: by time only)")
    checkpoint_minutes: float = setting(
        5.0, bounds=(0.0, math.inf, False), metavar="X",
        help="minutes of training between checkpoints, whichever of the two comes first (0: by episodes only)")
    quiet: bool = setting(False, switch="on", run=True, help="no progress bar and no summary line")
    batch_episodes: int = setting(8, minimum=1, metavar="N", help="episodes per update")
    lr: float = setting(0.01, bounds=(0.0, 1.0, True), metavar="X",
                        help="learning rate, in (0, 1]; may change on --resume")
    gamma: float = setting(0.99, bounds=(0.0, 1.0, False), metavar="X", help="discount, in [0, 1]")
