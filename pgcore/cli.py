"""Command line: pgcore-train, pgcore-play, pgcore-plot: argparse over `pgcore.Agent`.

Errors a user can fix (bad flag values, a missing or corrupt checkpoint, an
unwritable run directory) print one line and exit with code 2. Flags parse text
into numbers here; their bounds are the settings' own, checked by the task's config.
`parse_train_args`, `parse_play_args` and `parse_plot_args` (and `pgcore.bench.parse_args`)
parse a command line without running it, exiting on a bad one as the command does.
"""
import argparse
import dataclasses
import json
import sys
import textwrap

from pgcore._version import __version__
from pgcore.agent import SETTING_TASKS, TASKS
from pgcore.control import TASKS as CONTROL_TASKS
from pgcore.pong import ADVANTAGES, PRESETS


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


def _task_defaults(field):
    """'0.3 for frozenlake, 0.05 otherwise': a TaskSpec field's default over the tasks its flag applies to."""
    by_value = {}
    for task in SETTING_TASKS[field]:
        value = getattr(CONTROL_TASKS[task], field)
        by_value.setdefault(("on" if value else "off") if isinstance(value, bool) else f"{value:g}", []).append(task)
    common = max(by_value, key=lambda value: len(by_value[value]))
    if len(by_value) == 1:
        return common
    rare = [f"{value} for {' and '.join(tasks)}" for value, tasks in by_value.items() if value != common]
    return f"{', '.join(rare)}, {common} otherwise"


# Flags that are not settings of the run's config: where and how long to train, and the display.
_RUN_FLAGS = ("task", "run_dir", "resume", "max_frames", "max_episodes", "max_minutes", "quiet", "no_slip",
              "print_config")

# The environment variables pgcore reads (or sets for the libraries it loads), for the epilogs.
ENVIRONMENT = (
    ("OMP_NUM_THREADS", "the default thread count (its first number): pong's emulator threads and "
                        "pgcore.set_num_threads (default: every core this process may use)"),
    ("OMP_WAIT_POLICY", "read by OpenMP when the kernels load; pgcore sets PASSIVE unless it is set, so that "
                        "idle kernel threads do not spin on the emulators' cores"),
    ("RAY_worker_niceness", "--ray local: the workers' niceness (pgcore sets 0 unless it is set; Ray's own is 15)"),
    ("PGCORE_NO_OPENMP=1", "at build time (pip install): build the kernels serial, without OpenMP"),
    ("PGCORE_NATIVE=1", "at build time: compile the kernels with -march=native (faster here, not portable)"),
)
OTHER_TASKS_NOTE = "Adam; each update plays --batch-episodes episodes in parallel"


def _epilog(task):
    width = max(len(name) for name, _ in ENVIRONMENT)
    lines = []
    if task is None:
        lines += ["tasks:"] + [f"  {name:<18} {text}" for name, text in TASKS.items()]
        lines += ["", "pgcore-train TASK --help lists the flags TASK takes: those above, and its own.", ""]
    lines.append("environment variables:")
    for name, text in ENVIRONMENT:
        lines += textwrap.wrap(text, 78, initial_indent=f"  {name:<{width}}  ", subsequent_indent=" " * (width + 4))
    return "\n".join(lines)


def _train_flags():
    """(the setting a flag sets, or None for a flag every task takes; its names; add_argument's
    keywords) of every pgcore-train flag after the task, in the order --help lists them."""
    return [
        ("seed", ["--seed"], dict(type=_whole_number, default=None, help="seed of every random stream (default 0)")),
        ("max_frames", ["--max-frames"], dict(type=_whole_number, default=None,
         help="stop after this many emulator frames (environment steps for the other tasks; 0: no limit)")),
        ("max_episodes", ["--max-episodes"], dict(type=_whole_number, default=None,
         help="stop after this many episodes (0: no limit; default: none for pong, a budget per task otherwise)")),
        ("max_minutes", ["--max-minutes"], dict(type=_number, default=None,
         help="stop after this many minutes of training, counted over every resumed segment (0: no limit)")),
        (None, ["--run-dir"], dict(default=None,
         help="where to write config.json, progress.csv, checkpoint.npz (default runs/TASK-TIMESTAMP)")),
        (None, ["--resume"], dict(metavar="RUN_DIR", default=None,
         help="continue the run in RUN_DIR from its last checkpoint (with new limits, threads, "
              "backend or checkpoint cadence; its other settings are its own)")),
        ("backend", ["--backend"], dict(choices=["cython", "numpy"], default=None,
         help="compiled kernels or their NumPy twins (default cython)")),
        ("threads", ["--threads"], dict(type=_whole_number, default=None,
         help="pong: emulator threads (default: all cores); other tasks: kernel threads (default 1)")),
        ("dtype", ["--dtype"], dict(choices=["float32", "float64"], default=None,
         help="parameter dtype (default float32 for pong, float64 otherwise)")),
        ("checkpoint_every", ["--checkpoint-every"], dict(type=_whole_number, default=None,
         help="episodes between checkpoints (default 50 for pong, 500 otherwise; 0: by time only)")),
        ("checkpoint_minutes", ["--checkpoint-minutes"], dict(type=_number, default=None,
         help="minutes of training between checkpoints, whichever comes first (default 5; 0: by episodes only)")),
        ("quiet", ["--quiet"], dict(action="store_true", help="no progress bar")),
        (None, ["--print-config"], dict(action="store_true",
         help="print the run's resolved settings (JSON: what config.json records) and exit, without training")),
        ("batch_episodes", ["--batch-episodes"], dict(type=_whole_number, default=None,
         help="episodes per update (default 10 for pong; per task otherwise)")),
        ("lr", ["--lr"], dict(type=_number, default=None,
         help="learning rate, in (0, 1] (default: the preset's for pong, per task otherwise; may change on --resume)")),
        ("gamma", ["--gamma"], dict(type=_number, default=None, help="discount, in [0, 1] (default 0.99)")),
        ("hidden", ["--hidden"], dict(type=_whole_number, default=None,
         help="hidden units: pong (default 200), cartpole and acrobot (default 32)")),
        # pong
        ("preset", ["--preset"], dict(choices=list(PRESETS), default=None,
         help="frame (default): fast with --actions 3 --advantage gae --gae-start-frames 5000000 "
              "--frame-input; gae: the same without the frame input, switching at 20000000; fast: "
              "RMSProp lr 1e-3, 4 clipped passes over each batch of returns, two actions; reinforce: one "
              "update a batch at lr 1e-3; classic: the original, one update a batch at lr 1e-4")),
        ("batch_steps", ["--batch-steps"], dict(type=_whole_number, default=None,
         help="a batch ends at the episode that brings it to this many agent steps, instead of "
              "after --batch-episodes episodes (default 0: count episodes)")),
        ("envs", ["--envs"], dict(type=_whole_number, default=None, help="parallel emulators (default 16)")),
        ("optimizer", ["--optimizer"], dict(choices=["rmsprop", "adam"], default=None, help="(default rmsprop)")),
        ("frameskip", ["--frameskip"], dict(type=_whole_number, default=None,
         help="emulator frames per agent step (default 4)")),
        ("sticky", ["--sticky"], dict(type=_number, default=None,
         help="probability of repeating the last action (default 0.25)")),
        ("sync", ["--sync"], dict(action="store_true", default=None,
         help="step all emulators together: slower, bitwise reproducible")),
        ("frame_input", ["--frame-input"], dict(action=argparse.BooleanOptionalAction, default=None,
         help="the policy and value net see each frame as well as its difference from the previous "
              "one (12800 inputs, not 6400): a difference hides a paddle that did not move "
              "(default: the preset's, yes for frame)")),
        ("actions", ["--actions"], dict(type=int, choices=[2, 3], default=None,
         help="2: up or down, one logit through a sigmoid; 3: down, up or stay (NOOP), "
              "a softmax over three logits (default: the preset's, 3)")),
        ("advantage", ["--advantage"], dict(choices=list(ADVANTAGES), default=None,
         help="returns: the discounted returns; gae: generalized advantage estimation over a "
              "learned value net (both cut at every point; see --standardize; default: the preset's, gae)")),
        ("standardize", ["--standardize"], dict(action=argparse.BooleanOptionalAction, default=None,
         help="standardize the advantages per episode (default: yes)")),
        ("gae_lambda", ["--gae-lambda"], dict(type=_number, default=None,
         help="GAE's lambda, in [0, 1] (default 0.95)")),
        ("gae_start_frames", ["--gae-start-frames"], dict(type=_whole_number, default=None, metavar="N",
         help="--advantage gae: the policy learns from the returns until the run has played N "
              "emulator frames, while the value net learns from the start (default: the preset's, 5000000)")),
        ("lr_decay_frames", ["--lr-decay-frames"], dict(type=_whole_number, default=None, metavar="N",
         help="the learning rates (--lr, --value-lr) fall linearly from the first frame to "
              "--lr-decay-to of theirs at N emulator frames, then stay (default 0: constant; may change on --resume)")),
        ("lr_decay_to", ["--lr-decay-to"], dict(type=_number, default=None, metavar="SHARE",
         help="the learning rates' share left at --lr-decay-frames, in [0, 1] (default 0.1; may change on --resume)")),
        ("value_hidden", ["--value-hidden"], dict(type=_whole_number, default=None,
         help="the value net's hidden units (default 64)")),
        ("value_lr", ["--value-lr"], dict(type=_number, default=None,
         help="the value net's learning rate, in (0, 1] (default 1e-3)")),
        ("epochs", ["--epochs"], dict(type=_whole_number, default=None,
         help="passes over each batch: PPO's clipped surrogate, the logits recomputed each pass "
              "(default 4; --epochs 1 --minibatches 1: one REINFORCE update a batch)")),
        ("minibatches", ["--minibatches"], dict(type=_whole_number, default=None,
         help="updates per pass over a batch, each on a share of its episodes, at most one per episode (default 4)")),
        ("clip", ["--clip"], dict(type=_number, default=None,
         help="PPO's clip on the probability ratio, in (0, 10] (default 0.2)")),
        ("ray", ["--ray"], dict(metavar="{local,auto,HOST:PORT}", default=None,
         help="play on Ray workers: local starts Ray on this machine; auto or HOST:PORT joins a "
              "running cluster (needs pip install 'pgcore[ray]' on every node)")),
        ("workers", ["--workers"], dict(type=_whole_number, default=None,
         help="Ray workers (default 1); --envs, --threads, --batch-episodes and --batch-steps are per worker")),
        # the other tasks
        ("tau", ["--tau"], dict(type=_number, default=None,
         help=f"tabular tasks: softmax temperature at the start (default {_task_defaults('tau')})")),
        ("tau_final", ["--tau-final"], dict(type=_number, default=None,
         help=f"tabular tasks: temperature reached at --max-episodes (default {_task_defaults('tau_final')})")),
        ("sigma", ["--sigma"], dict(type=_number, default=None,
         help=f"inverted-pendulum: action noise at the start (default {_task_defaults('sigma')})")),
        ("sigma_final", ["--sigma-final"], dict(type=_number, default=None,
         help=f"inverted-pendulum: action noise reached at --max-episodes (default {_task_defaults('sigma_final')})")),
        ("entropy", ["--entropy"], dict(type=_number, default=None,
         help="softmax tasks: entropy bonus at the start, added to the objective per step "
              f"(default {_task_defaults('entropy')})")),
        ("entropy_final", ["--entropy-final"], dict(type=_number, default=None,
         help=f"softmax tasks: entropy bonus reached at --max-episodes (default {_task_defaults('entropy_final')})")),
        ("anneal", ["--anneal"], dict(choices=["exponential", "linear"], default=None,
         help="how tau / sigma / entropy move from start to final over --max-episodes "
              "(default exponential: start * (final/start)**(episode/max_episodes))")),
        ("baseline", ["--baseline"], dict(action=argparse.BooleanOptionalAction, default=None,
         help="subtract a running mean of the return at each step index, instead of the batch mean "
              f"(default {_task_defaults('baseline')})")),
        ("map", ["--map"], dict(choices=["4x4", "8x8"], default=None, help="frozenlake map (default 4x4)")),
        ("slip", ["--no-slip"], dict(action="store_true", default=None, help="frozenlake without the slippery ice")),
    ]


class _TaskHelp(argparse.Action):
    """-h/--help: the flags of the task named before it (pgcore-train pong --help), else the tasks
    and the flags every task takes."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        task = getattr(namespace, "task", None)
        (train_parser(task) if task in TASKS else parser).print_help()
        parser.exit()


def train_parser(task=None):
    """pgcore-train's parser. Every flag parses whatever the task (a flag of another task is
    refused by the task's config, naming it); --help lists the flags `task` takes, or with no
    task the tasks and the flags every task takes."""
    parser = argparse.ArgumentParser(
        prog="pgcore-train", usage=f"%(prog)s {task or 'TASK'} [options]", add_help=False,
        description="Train a policy-gradient agent (the Python API: pgcore.Agent)."
                    + ("" if task else "\npgcore-train TASK --help lists the flags of TASK."),
        epilog=_epilog(task), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-h", "--help", action=_TaskHelp, help="show this help (after a task: that task's flags) and exit")
    parser.add_argument("--version", action="version", version=f"pgcore {__version__}")
    parser.add_argument("task", help=f"what to train: {', '.join(TASKS)}")
    common = parser.add_argument_group("every task")
    title = task if task in (None, "pong") else f"{task} ({OTHER_TASKS_NOTE})"
    own = parser.add_argument_group(title) if task else None
    for setting, flags, keywords in _train_flags():
        takes = TASKS if setting is None else SETTING_TASKS[setting]
        if set(takes) >= set(TASKS):
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
    if args.task not in TASKS:
        parser.exit(2, f"pgcore-train: error: unknown task {args.task!r}; known tasks: {', '.join(TASKS)}\n")
    return args


def _flag(setting):
    return "--no-slip" if setting == "slip" else "--" + setting.replace("_", "-")


def given_settings(args):
    """The run settings given as flags (setting name -> value); the rest keep their defaults."""
    settings = {name: value for name, value in vars(args).items() if value is not None and name not in _RUN_FLAGS}
    if args.no_slip:
        settings["slip"] = False
    return settings


def train_main(argv=None):
    args = parse_train_args(argv)
    from pgcore import runs
    from pgcore.agent import Agent

    settings = given_settings(args)
    try:
        if args.resume:
            agent = Agent.resume(args.resume, **settings)
            if agent.task != args.task:
                raise runs.RunError(f"{args.resume} holds a {agent.task} run, not {args.task}")
        else:
            agent = Agent(args.task, **settings)
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


def play_parser():
    parser = argparse.ArgumentParser(prog="pgcore-play", description="Play with a trained policy and print the score.")
    parser.add_argument("--version", action="version", version=f"pgcore {__version__}")
    parser.add_argument("task", help=f"one of {', '.join(TASKS)}")
    parser.add_argument("--checkpoint", default=None, help="checkpoint.npz of a run, or a run directory "
                        "(pong: default the policy shipped with pgcore)")
    parser.add_argument("--episodes", type=_whole_number, default=None, help="episodes (games) to play (default 1 for pong, 100 otherwise)")
    parser.add_argument("--seed", type=_whole_number, default=0, help="seed of the first game or episode (default 0)")
    parser.add_argument("--sample", action="store_true", help="sample actions instead of playing greedily")
    parser.add_argument("--gif", default=None, help="pong: write an animated GIF of the first game here")
    parser.add_argument("--sticky", type=_number, default=None,
                        help="pong: probability of repeating the last action, in [0, 1] (default: the run's, "
                             "0.25; 0 is the deterministic Pong other systems report on)")
    return parser


def parse_play_args(argv=None):
    """A pgcore-play command line (the words after `pgcore-play`) as a Namespace, without playing:
    exits (SystemExit, code 2) as pgcore-play does on a bad flag, an unknown task, a Pong-only flag
    given to another task, or another task without --checkpoint."""
    parser = play_parser()
    args = parser.parse_args(argv)
    if args.task not in TASKS:
        parser.exit(2, f"pgcore-play: error: unknown task {args.task!r}; known tasks: {', '.join(TASKS)}\n")
    for flag in ("gif", "sticky"):
        if args.task != "pong" and getattr(args, flag) is not None:
            parser.exit(2, f"pgcore-play: error: --{flag} is for pong only\n")
    if args.task != "pong" and args.checkpoint is None:
        parser.exit(2, f"pgcore-play: error: {args.task} needs --checkpoint (only a Pong policy ships with pgcore)\n")
    return args


def play_main(argv=None):
    args = parse_play_args(argv)
    from pgcore import play, runs
    try:
        episodes = (1 if args.task == "pong" else 100) if args.episodes is None else args.episodes
        scores = play.play(args.task, args.checkpoint, episodes, args.seed, args.sample, args.gif, args.sticky)
    except runs.SettingError as error:
        return _fail(f"argument {_flag(error.setting)}: {error}")
    except (runs.RunError, ValueError) as error:
        return _fail(str(error))
    except OSError as error:
        return _fail(f"{error.strerror or error}: {error.filename}")
    mean = sum(scores) / len(scores)
    what = "score over {} game(s)" if args.task == "pong" else "return over {} episode(s)"
    print(f"mean {what.format(len(scores))}: {mean:+.2f}")
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
