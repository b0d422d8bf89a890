"""Command line: pgcore-train, pgcore-play, pgcore-plot: argparse over `pgcore.Agent`.

Errors a user can fix (bad flag values, a missing or corrupt checkpoint, an
unwritable run directory) print one line and exit with code 2. Flags parse text
into numbers here; their bounds are the settings' own, checked by the task's config.
pgcore-train's flags, their --help text (with each task's defaults) and the settings tables of
docs/API.md (`settings_tables`; `python -m pgcore.cli --api-tables docs/API.md` rewrites them)
are made from the settings' fields (pgcore.settings) of the registered tasks (pgcore.tasks).
`parse_train_args`, `parse_play_args` and `parse_plot_args` (and `pgcore.bench.parse_args`)
parse a command line without running it, exiting on a bad one as the command does.
"""
import argparse
import dataclasses
import json
import re
import sys
import textwrap

from pgcore import settings, tasks
from pgcore._version import __version__


def _fail(message):
    print(f"error: {message}", file=sys.stderr)
    return 2


def _whole_number(text):
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def _number(text):
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


# ---- pgcore-train's flags, from the settings of the registered tasks ----

# Flags that are not settings: what to do with the run (they carry no default)
_ACTIONS = {
    "resume": settings.option("resume", str, metavar="RUN_DIR", help=(
        "continue the run in RUN_DIR from its checkpoint, with new limits, threads, backend, checkpoint cadence or "
        "learning rate; its other settings are its own (see Resuming). A file written by Agent.save continues in "
        "a new run directory, named by --run-dir")),
    "print_config": settings.option("print_config", bool, switch="on", help=(
        "print the run's resolved settings (JSON: what config.json records) and exit, without training")),
    "list_presets": settings.option("list_presets", bool, switch="on", help=(
        "print each preset and the flags it sets over the defaults, and exit")),
}
_AFTER = {"run_dir": "resume", "quiet": "print_config", "preset": "list_presets"}  # where --help lists them
_OWNER = {"list_presets": "preset"}  # the setting whose tasks take the flag (none: every task)


def _task_options():
    """(option, owner) of every pgcore-train flag after the task, in --help's order: each setting
    of every registered task once (the first task's that takes it), the flags that are not
    settings after the settings they go with. owner: the setting whose tasks take the flag, or
    None for a flag of every task (a run flag that is not a setting)."""
    seen, found = set(), []
    for task in tasks.REGISTRY.values():
        for opt in task.options():
            if opt.name in seen or opt.metadata["flag"] is None:
                continue
            seen.add(opt.name)
            found.append((opt, None if opt.name == "run_dir" else opt.name))
            if opt.name in _AFTER:
                action = _AFTER[opt.name]
                found.append((_ACTIONS[action], _OWNER.get(action)))
    return found


def _takers(owner):
    """The names of the tasks that take the flags of setting `owner` (None: every task)."""
    return tasks.names() if owner is None else tasks.setting_tasks()[owner]


def _keywords(opt):
    """add_argument's keywords for a setting's flag (every flag parses to None when not given,
    except the run's display, quiet)."""
    meta, kind = opt.metadata, opt.type
    keywords = {"dest": opt.name, "default": None}
    if kind is bool:
        switch = meta["switch"]
        if switch == "on":
            keywords.update(action="store_true", default=False if meta["run"] or opt.name in _ACTIONS else None)
        elif switch == "both":
            keywords.update(action=argparse.BooleanOptionalAction)
        else:
            keywords.update(action="store_const", const=False)
        return keywords
    if meta["choices"] is not None:
        keywords.update(choices=list(meta["choices"]), type=int if kind is int else None)
    else:
        keywords.update(type={int: _whole_number, float: _number}.get(kind), metavar=meta["metavar"])
    return {key: value for key, value in keywords.items() if value is not None or key == "default"}


def _default_text(name, takers, preset=None):
    """The default of setting `name` over the tasks `takers` (Task objects): '0.99', '0.5 for
    cliffwalking, 0 otherwise', or per docs group where they differ."""
    by_group = {}
    for task in takers:
        by_group.setdefault(task.docs_label or task.name, {})[task.name] = task.default_text(name, preset)
    texts = {label: settings.grouped_text(defaults) for label, defaults in by_group.items()}
    if len(set(texts.values())) == 1:
        return next(iter(texts.values()))
    return "; ".join(f"{label}: {text}" for label, text in texts.items())


def _task_defaults(name):
    """'0.3 for frozenlake, 0.05 otherwise': the default of setting `name` over the tasks that take it."""
    return _default_text(name, [tasks.get(task) for task in _takers(name)])


def _help(opt, owner, takers=None, preset=None):
    """A flag's --help text with its default over `takers` (Task objects; default: every task that
    takes it), each group of tasks that means another thing by it apart; with `preset`, that
    preset's value (pgcore-train pong --preset gae --help)."""
    if opt.name in _ACTIONS:
        return opt.help
    takers = [tasks.get(name) for name in _takers(owner)] if takers is None else takers
    options = [taker.option(opt.name) for taker in takers]
    if opt.type is bool and opt.metadata["switch"] != "both":  # --sync, --no-slip: the default is without it
        return options[0].help
    if len({option.help for option in options}) > 1:  # the tasks mean different things by it
        by_label = {}
        for taker, option in zip(takers, options):
            by_label.setdefault(taker.docs_label or taker.name, (option, []))[1].append(taker)
        return "; ".join(f"{label}: {_with_default(option.help, _default_text(opt.name, group, preset))}"
                         for label, (option, group) in by_label.items())
    return _with_default(options[0].help, _default_text(opt.name, takers, preset))


def _with_default(text, default):
    """'discount, in [0, 1] (default 0.99)'; after a full stop, 'Default: 0.99.'"""
    return f"{text} Default: {default}." if text.endswith(".") else f"{text} (default {default})"


def _train_flags(task=None, preset=None):
    """(the setting a flag sets, or None for a flag every task takes; its names; add_argument's
    keywords, the help for `task` (a name; with `preset`, that preset's defaults) or for every
    task) of every pgcore-train flag after the task, in the order --help lists them."""
    spec = tasks.REGISTRY.get(task)
    flags = []
    for opt, owner in _task_options():
        mine = spec is not None and spec.name in _takers(owner)
        text = _help(opt, owner, [spec], preset) if mine else _help(opt, owner)
        flags.append((owner, [opt.flag], _keywords(opt) | {"help": text.replace("%", "%%")}))
    return flags


# The environment variables pgcore reads (or sets for the libraries it loads), for the epilogs.
ENVIRONMENT = (
    ("OMP_NUM_THREADS", "the default thread count (its first number): of the emulator threads and of "
                        "pgcore.set_num_threads (default: every core this process may use)"),
    ("OMP_WAIT_POLICY", "read by OpenMP when the kernels load; pgcore sets PASSIVE unless it is set, so that "
                        "idle kernel threads do not spin on the emulators' cores"),
    ("RAY_worker_niceness", "--ray local: the workers' niceness (pgcore sets 0 unless it is set; Ray's own is 15)"),
    ("PGCORE_NO_OPENMP=1", "at build time (pip install): build the kernels serial, without OpenMP"),
    ("PGCORE_NATIVE=1", "at build time: compile the kernels with -march=native (faster here, not portable)"),
)


def _epilog(task):
    width = max(len(name) for name, _ in ENVIRONMENT)
    lines = []
    if task is None:
        lines += ["tasks:"] + [f"  {name:<18} {text}" for name, text in tasks.descriptions().items()]
        lines += ["", "pgcore-train TASK --help lists the flags TASK takes: those above, and its own.", ""]
    lines.append("environment variables:")
    for name, text in ENVIRONMENT:
        lines += textwrap.wrap(text, 78, initial_indent=f"  {name:<{width}}  ", subsequent_indent=" " * (width + 4))
    return "\n".join(lines)


class _TaskHelp(argparse.Action):
    """-h/--help: the flags of the task named before it (pgcore-train pong --help), else the tasks
    and the flags every task takes."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        task = getattr(namespace, "task", None)
        preset = getattr(namespace, "preset", None)  # given before --help: its defaults
        (train_parser(task, preset) if task in tasks.REGISTRY else parser).print_help()
        parser.exit()


def train_parser(task=None, preset=None):
    """pgcore-train's parser. Every flag parses whatever the task (a flag of another task is
    refused by the task's config, naming it); --help lists the flags `task` takes, with its
    defaults (`preset`'s, for a task with presets), or with no task the tasks and the flags every
    task takes."""
    parser = argparse.ArgumentParser(
        prog="pgcore-train", usage=f"%(prog)s {task or 'TASK'} [options]", add_help=False,
        description="Train a policy-gradient agent (the Python API: pgcore.Agent)."
                    + ("" if task else "\npgcore-train TASK --help lists the flags of TASK."),
        epilog=_epilog(task), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-h", "--help", action=_TaskHelp, help="show this help (after a task: that task's flags) and exit")
    parser.add_argument("--version", action="version", version=f"pgcore {__version__}")
    parser.add_argument("task", help=f"what to train: {', '.join(tasks.names())}")
    common = parser.add_argument_group("every task")
    spec = tasks.REGISTRY.get(task)
    own = parser.add_argument_group(task + (f" ({spec.help_note})" if spec.help_note else "")) if spec else None
    for setting, flags, keywords in _train_flags(task, preset):
        takes = _takers(setting)
        if set(takes) >= set(tasks.names()):
            common.add_argument(*flags, **keywords)
        elif task in takes:
            own.add_argument(*flags, **keywords)
        else:  # parsed all the same: the task's config refuses it with a clear message
            common.add_argument(*flags, **keywords | {"help": argparse.SUPPRESS})
    return parser


def parse_train_args(argv=None):
    """A pgcore-train command line (the words after `pgcore-train`) as argparse's Namespace,
    without running it: exits (SystemExit, code 2, a message on stderr) as pgcore-train does on a
    bad flag value or an unknown task; --help and --version print and exit 0. The settings
    themselves are checked by `agent.make_config(args.task, **given_settings(args))`."""
    parser = train_parser()
    args = parser.parse_args(argv)
    if args.task not in tasks.REGISTRY:
        parser.exit(2, f"pgcore-train: error: unknown task {args.task!r}; known tasks: {', '.join(tasks.names())}\n")
    return args


def _flag(setting):
    """The flag of a setting (as an error names it): its field's, else --NAME."""
    for opt, _ in _task_options():
        if opt.name == setting:
            return opt.flag
    return "--" + setting.replace("_", "-")


def _run_flags():
    """The flags that are not the Agent's settings: the task, where and how long to train, the
    display (passed to learn), and what to do (resume, print the config or the presets)."""
    return {"task", *_ACTIONS} | {opt.name for opt, _ in _task_options() if opt.metadata["run"]}


def given_settings(args):
    """The run settings given as flags (setting name -> value); the rest keep their defaults."""
    run_flags = _run_flags()
    return {name: value for name, value in vars(args).items() if value is not None and name not in run_flags}


def presets_text(task):
    """pgcore-train TASK --list-presets: each preset of the task (a Task), its note, and the flags
    it sets over the defaults."""
    default = task.default_text("preset") if task.takes("preset") else None
    lines = []
    for name in task.presets:
        note = task.preset_notes.get(name, "")
        lines.append(f"{name}{' (the default)' if name == default else ''}{': ' + note if note else ''}")
        lines.append("    " + (" ".join(task.preset_flags(name)) or "(the defaults)"))
    return "\n".join(lines)


def train_main(argv=None):
    args = parse_train_args(argv)
    from pgcore import runs
    from pgcore.agent import Agent

    settings_ = given_settings(args)
    if args.list_presets:
        task = tasks.get(args.task)
        if not task.presets:
            return _fail(f"argument --list-presets: {args.task} has no presets")
        print(presets_text(task))
        return 0
    try:
        if args.resume:
            agent = Agent.resume(args.resume, **settings_)
            if agent.task != args.task:
                raise runs.RunError(f"{args.resume} holds a {agent.task} run, not {args.task}")
        else:
            agent = Agent(args.task, **settings_)
        limits = dict(max_frames=args.max_frames, max_episodes=args.max_episodes, max_minutes=args.max_minutes,
                      run_dir=args.run_dir, quiet=args.quiet)
        if args.print_config:
            print(json.dumps(dataclasses.asdict(agent.learning_config(**limits)), indent=2, sort_keys=True))
            return 0
        agent.learn(**limits)
    except KeyboardInterrupt:
        print("error: interrupted (before training began, or a second time): the last checkpoint is kept", file=sys.stderr)
        return 130
    except runs.SettingError as error:
        return _fail(f"argument {_flag(error.setting)}: {error}")
    except (runs.RunError, ValueError) as error:
        return _fail(str(error))
    except OSError as error:
        return _fail(f"{error.strerror or error} ({error.filename or args.run_dir or args.resume})")
    if not agent.config.quiet:
        why = f"stopped by {agent.stopped_by}; " if agent.stopped_by else ""
        counters = agent.counters
        running = counters["running_reward"]
        print(f"{why}{counters['episode']} episodes, {counters['frames']:,} frames, running reward "
              f"{'n/a' if running is None else f'{running:.2f}'}; checkpoint in {agent.run_dir}")
    return 0


# ---- pgcore-play ----

def _play_option_takers(flag):
    return [name for name, task in tasks.REGISTRY.items() if flag in task.play_options]


def play_parser():
    shipping = tasks.shipping()
    parser = argparse.ArgumentParser(prog="pgcore-play", description="Play with a trained policy and print the score.")
    parser.add_argument("--version", action="version", version=f"pgcore {__version__}")
    parser.add_argument("task", help=f"one of {', '.join(tasks.names())}")
    parser.add_argument("--checkpoint", default=None, help="checkpoint.npz of a run, or a run directory"
                        + (f" ({', '.join(task.name for task in shipping)}: default the policy shipped with pgcore)"
                           if shipping else ""))
    episodes = settings.grouped_text({name: str(task.play_episodes) for name, task in tasks.REGISTRY.items()})
    parser.add_argument("--episodes", type=_whole_number, default=None,
                        help=f"episodes (games) to play (default {episodes})")
    parser.add_argument("--seed", type=_whole_number, default=0, help="seed of the first game or episode (default 0)")
    parser.add_argument("--sample", action="store_true", help="sample actions instead of playing greedily")
    options = {}
    for task in tasks.REGISTRY.values():
        for name, text in task.play_options.items():  # a setting's type (sticky: a number), else text
            kind = next((opt.type for opt in task.options() if opt.name == name), str)
            options.setdefault(name, (kind, f"{', '.join(_play_option_takers(name))}: {text}"))
    for name, (kind, text) in options.items():
        parser.add_argument("--" + name, type={int: _whole_number, float: _number}.get(kind), default=None, help=text)
    return parser


def parse_play_args(argv=None):
    """A pgcore-play command line (the words after `pgcore-play`) as a Namespace, without playing:
    exits (SystemExit, code 2) as pgcore-play does on a bad flag, an unknown task, a flag of
    another task (Pong's --gif, --sticky), or a task that ships no policy without --checkpoint."""
    parser = play_parser()
    args = parser.parse_args(argv)
    if args.task not in tasks.REGISTRY:
        parser.exit(2, f"pgcore-play: error: unknown task {args.task!r}; known tasks: {', '.join(tasks.names())}\n")
    task = tasks.get(args.task)
    for flag in {name for other in tasks.REGISTRY.values() for name in other.play_options}:
        if flag not in task.play_options and getattr(args, flag) is not None:
            parser.exit(2, f"pgcore-play: error: --{flag} is for {' and '.join(_play_option_takers(flag))} only\n")
    game = getattr(args, "game", None)
    if args.checkpoint is not None and game is not None:
        parser.exit(2, "pgcore-play: error: --game picks a policy shipped with pgcore; a --checkpoint plays its "
                       "own game\n")
    if args.checkpoint is None:
        try:
            task.shipped_policy(game)
        except ValueError as error:
            shipped = " or ".join(other.title or other.name for other in tasks.shipping())
            parser.exit(2, f"pgcore-play: error: {args.task} needs --checkpoint: {error} (pgcore ships {shipped} "
                           "policies)\n")
    return args


def play_main(argv=None):
    args = parse_play_args(argv)
    from pgcore import play, runs
    task = tasks.get(args.task)
    try:
        episodes = task.play_episodes if args.episodes is None else args.episodes
        scores = play.play(args.task, args.checkpoint, episodes, args.seed, args.sample,
                           getattr(args, "gif", None), getattr(args, "sticky", None), getattr(args, "game", None))
    except runs.SettingError as error:
        return _fail(f"argument {_flag(error.setting)}: {error}")
    except (runs.RunError, ValueError) as error:
        return _fail(str(error))
    except OSError as error:
        return _fail(f"{error.strerror or error}: {error.filename}")
    mean = sum(scores) / len(scores)
    print(f"mean {task.score_word} over {len(scores)} {task.episode_word}(s): {mean:+.2f}")
    return 0


def plot_parser():
    parser = argparse.ArgumentParser(prog="pgcore-plot", description="Learning curves of runs as a PNG.")
    parser.add_argument("--version", action="version", version=f"pgcore {__version__}")
    parser.add_argument("run_dir", nargs="+", help="one run (its episodes and running reward), or several to compare")
    parser.add_argument("-o", "--output", default=None, help="PNG path (default RUN_DIR/learning_curve.png; "
                        "required with several runs)")
    return parser


def parse_plot_args(argv=None):
    """A pgcore-plot command line as a Namespace, without plotting: exits (SystemExit, code 2) as
    pgcore-plot does on a bad flag, or several runs without -o/--output."""
    parser = plot_parser()
    args = parser.parse_args(argv)
    if len(args.run_dir) > 1 and args.output is None:
        parser.exit(2, "pgcore-plot: error: comparing several runs needs -o/--output\n")
    return args


def plot_main(argv=None):
    args = parse_plot_args(argv)
    from pgcore import plot, runs
    try:
        if len(args.run_dir) == 1:
            out = plot.plot_run(args.run_dir[0], args.output)
        else:
            out = plot.plot_runs(args.run_dir, args.output)
    except runs.RunError as error:
        return _fail(str(error))
    except OSError as error:
        return _fail(f"{error.strerror or error}: {error.filename}")
    print(out)
    return 0


# ---- the settings tables of docs/API.md ----

API_BEGIN = "<!-- settings:begin: made by `python -m pgcore.cli --api-tables docs/API.md` from the settings' fields -->"
API_END = "<!-- settings:end -->"


def _flag_cell(opt):
    meta = opt.metadata
    if opt.type is bool:
        flags = [opt.flag] + (["--no-" + opt.flag[2:]] if meta["switch"] == "both" else [])
        return ", ".join(f"`{flag}`" for flag in flags)
    if meta["choices"] is not None:
        return f"`{opt.flag} {{{','.join(map(str, meta['choices']))}}}`"
    return f"`{opt.flag} {meta['metavar'] or opt.name.upper()}`"


def _markdown(text):
    """Help text as a Markdown table cell: flags in backticks (with their value: `--epochs 1`),
    pipes escaped."""
    options = {opt.flag: opt for opt, _ in _task_options()}

    def quoted(match):
        flag, value = match.group(1), match.group(2)
        opt = options.get(flag)
        takes_value = opt is not None and opt.type is not bool
        choices = opt.metadata["choices"] if opt is not None else None
        if value and takes_value and (re.fullmatch(r"-?\d[\d.e+-]*|[A-Z_]+", value)
                                      or (choices and value in map(str, choices))):
            return f"`{flag} {value}`"
        return f"`{flag}`" + (f" {value}" if value else "")

    text = re.sub(r"(?<![\w`-])(--[a-z][a-z0-9-]*)(?: (?!--)([\w:+-]+(?:\.\d+)?))?", quoted, text)
    return text.replace("|", "\\|")


def settings_tables():
    """The flags tables of docs/API.md (between API_BEGIN and API_END), as Markdown: the flags
    every task takes, then one table per docs group of tasks (Pong's, the other tasks'), each
    flag's meaning and default from its setting's field."""
    lines = ["Flags of every task:", "", "| flag | meaning (default) |", "| --- | --- |"]
    everyone = set(tasks.names())
    rows = [(opt, owner) for opt, owner in _task_options() if opt.name != "list_presets"]
    for opt, owner in rows:
        if set(_takers(owner)) >= everyone:
            lines.append(f"| {_flag_cell(opt)} | {_markdown(_help(opt, owner))} |")
    for group in tasks.groups().values():
        names = [task.name for task in group]
        own = [(opt, owner) for opt, owner in _task_options()
               if not set(_takers(owner)) >= everyone and set(_takers(owner)) & set(names)]
        if not own:
            continue
        lines += ["", _markdown(group[0].docs_heading or f"{group[0].name}'s flags:"), ""]
        several = len(group) > 1
        lines += (["| flag | tasks | meaning (default) |", "| --- | --- | --- |"] if several
                  else ["| flag | meaning (default) |", "| --- | --- |"])
        for opt, owner in own:
            takers = [task for task in group if task.name in _takers(owner)]
            meaning = _markdown(_help(opt, owner, takers))
            if several:
                which = "all" if len(takers) == len(group) else ", ".join(task.name for task in takers)
                lines.append(f"| {_flag_cell(opt)} | {which} | {meaning} |")
            else:
                lines.append(f"| {_flag_cell(opt)} | {meaning} |")
    return "\n".join(lines) + "\n"


def api_doc_with_tables(text):
    """`text` (docs/API.md) with the part between API_BEGIN and API_END made anew."""
    begin, end = text.index(API_BEGIN), text.index(API_END)
    return text[:begin] + API_BEGIN + "\n" + settings_tables() + text[end:]


def main(argv=None):
    """python -m pgcore.cli --api-tables [API.md]: prints the settings tables, or rewrites them in
    the file given."""
    parser = argparse.ArgumentParser(prog="python -m pgcore.cli", description=main.__doc__)
    parser.add_argument("--api-tables", nargs="?", const="-", metavar="API.md", required=True)
    args = parser.parse_args(argv)
    if args.api_tables == "-":
        print(settings_tables(), end="")
        return 0
    with open(args.api_tables) as f:
        text = f.read()
    with open(args.api_tables, "w") as f:
        f.write(api_doc_with_tables(text))
    print(f"rewrote the settings tables of {args.api_tables}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
