"""Command line: pgcore-train, pgcore-play, pgcore-plot: argparse over `pgcore.Agent`.

Errors a user can fix (bad flag values, a missing or corrupt checkpoint, an
unwritable run directory) print one line and exit with code 2. Flags parse text
into numbers here; their bounds are the settings' own, checked by the task's config.
"""
import argparse
import sys

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
_RUN_FLAGS = ("task", "run_dir", "resume", "max_frames", "max_episodes", "max_minutes", "quiet", "no_slip")


def train_parser():
    parser = argparse.ArgumentParser(
        prog="pgcore-train", description="Train a policy-gradient agent (the Python API: pgcore.Agent).",
        epilog="tasks: " + "; ".join(f"{name}: {text}" for name, text in TASKS.items()))
    parser.add_argument("task", help=f"what to train: {', '.join(TASKS)}")
    common = parser.add_argument_group("every task")
    common.add_argument("--seed", type=_whole_number, default=None, help="seed of every random stream (default 0)")
    common.add_argument("--max-frames", type=_whole_number, default=None,
                        help="stop after this many emulator frames (environment steps for the other tasks; 0: no limit)")
    common.add_argument("--max-episodes", type=_whole_number, default=None,
                        help="stop after this many episodes (0: no limit; default: none for pong, a budget per task otherwise)")
    common.add_argument("--max-minutes", type=_number, default=None,
                        help="stop after this many minutes of training, counted over every resumed segment "
                             "(0: no limit)")
    common.add_argument("--run-dir", default=None, help="where to write config.json, progress.csv, checkpoint.npz (default runs/TASK-TIMESTAMP)")
    common.add_argument("--resume", metavar="RUN_DIR", default=None,
                        help="continue the run in RUN_DIR from its last checkpoint (with new limits, threads, "
                             "backend or checkpoint cadence; its other settings are its own)")
    common.add_argument("--backend", choices=["cython", "numpy"], default=None, help="compiled kernels or their NumPy twins (default cython)")
    common.add_argument("--threads", type=_whole_number, default=None,
                        help="pong: emulator threads (default: all cores); other tasks: kernel threads (default 1)")
    common.add_argument("--dtype", choices=["float32", "float64"], default=None, help="parameter dtype (default float32 for pong, float64 otherwise)")
    common.add_argument("--checkpoint-every", type=_whole_number, default=None, help="episodes between checkpoints (default 50 for pong, 500 otherwise; 0: by time only)")
    common.add_argument("--checkpoint-minutes", type=_number, default=None, help="minutes of training between checkpoints, whichever comes first (default 5; 0: by episodes only)")
    common.add_argument("--quiet", action="store_true", help="no progress bar")
    common.add_argument("--batch-episodes", type=_whole_number, default=None, help="episodes per update (default 10 for pong; per task otherwise)")
    common.add_argument("--lr", type=_number, default=None, help="learning rate, in (0, 1] (default: the preset's for pong, per task otherwise; may change on --resume)")
    common.add_argument("--gamma", type=_number, default=None, help="discount, in [0, 1] (default 0.99)")
    common.add_argument("--hidden", type=_whole_number, default=None, help="hidden units: pong (default 200), cartpole and acrobot (default 32)")
    pong = parser.add_argument_group("pong")
    pong.add_argument("--preset", choices=list(PRESETS), default=None,
                      help="frame (default): fast with --actions 3 --advantage gae --gae-start-frames 5000000 "
                           "--frame-input; gae: the same without the frame input, switching at 20000000; fast: "
                           "RMSProp lr 1e-3, 4 clipped passes over each batch of returns, two actions; reinforce: one "
                           "update a batch at lr 1e-3; classic: the original, one update a batch at lr 1e-4")
    pong.add_argument("--batch-steps", type=_whole_number, default=None,
                      help="a batch ends at the episode that brings it to this many agent steps, instead of "
                           "after --batch-episodes episodes (default 0: count episodes)")
    pong.add_argument("--envs", type=_whole_number, default=None, help="parallel emulators (default 16)")
    pong.add_argument("--optimizer", choices=["rmsprop", "adam"], default=None, help="(default rmsprop)")
    pong.add_argument("--frameskip", type=_whole_number, default=None, help="emulator frames per agent step (default 4)")
    pong.add_argument("--sticky", type=_number, default=None, help="probability of repeating the last action (default 0.25)")
    pong.add_argument("--sync", action="store_true", default=None, help="step all emulators together: slower, bitwise reproducible")
    pong.add_argument("--frame-input", action=argparse.BooleanOptionalAction, default=None,
                      help="the policy and value net see each frame as well as its difference from the previous "
                           "one (12800 inputs, not 6400): a difference hides a paddle that did not move "
                           "(default: the preset's, yes for frame)")
    pong.add_argument("--actions", type=int, choices=[2, 3], default=None,
                      help="2: up or down, one logit through a sigmoid; 3: down, up or stay (NOOP), "
                           "a softmax over three logits (default: the preset's, 3)")
    pong.add_argument("--advantage", choices=list(ADVANTAGES), default=None,
                      help="returns: the discounted returns; gae: generalized advantage estimation over a "
                           "learned value net (both cut at every point; see --standardize; default: the preset's, gae)")
    pong.add_argument("--standardize", action=argparse.BooleanOptionalAction, default=None,
                      help="standardize the advantages per episode (default: yes)")
    pong.add_argument("--gae-lambda", type=_number, default=None, help="GAE's lambda, in [0, 1] (default 0.95)")
    pong.add_argument("--gae-start-frames", type=_whole_number, default=None, metavar="N",
                      help="--advantage gae: the policy learns from the returns until the run has played N "
                           "emulator frames, while the value net learns from the start (default: the preset's, 5000000)")
    pong.add_argument("--lr-decay-frames", type=_whole_number, default=None, metavar="N",
                      help="the learning rates (--lr, --value-lr) fall linearly from the first frame to "
                           "--lr-decay-to of theirs at N emulator frames, then stay (default 0: constant; may change on --resume)")
    pong.add_argument("--lr-decay-to", type=_number, default=None, metavar="SHARE",
                      help="the learning rates' share left at --lr-decay-frames, in [0, 1] (default 0.1; may change on --resume)")
    pong.add_argument("--value-hidden", type=_whole_number, default=None, help="the value net's hidden units (default 64)")
    pong.add_argument("--value-lr", type=_number, default=None, help="the value net's learning rate, in (0, 1] (default 1e-3)")
    pong.add_argument("--epochs", type=_whole_number, default=None,
                      help="passes over each batch: PPO's clipped surrogate, the logits recomputed each pass "
                           "(default 4; --epochs 1 --minibatches 1: one REINFORCE update a batch)")
    pong.add_argument("--minibatches", type=_whole_number, default=None,
                      help="updates per pass over a batch, each on a share of its episodes, at most one per "
                           "episode (default 4)")
    pong.add_argument("--clip", type=_number, default=None,
                      help="PPO's clip on the probability ratio, in (0, 10] (default 0.2)")
    pong.add_argument("--ray", metavar="{local,auto,HOST:PORT}", default=None,
                      help="play on Ray workers: local starts Ray on this machine; auto or HOST:PORT joins a "
                           "running cluster (needs pip install 'pgcore[ray]' on every node)")
    pong.add_argument("--workers", type=_whole_number, default=None,
                      help="Ray workers (default 1); --envs, --threads, --batch-episodes and --batch-steps are per worker")
    other = parser.add_argument_group("the other tasks (Adam; each update plays --batch-episodes episodes in parallel)")
    other.add_argument("--tau", type=_number, default=None, help=f"tabular tasks: softmax temperature at the start (default {_task_defaults('tau')})")
    other.add_argument("--tau-final", type=_number, default=None, help=f"tabular tasks: temperature reached at --max-episodes (default {_task_defaults('tau_final')})")
    other.add_argument("--sigma", type=_number, default=None, help=f"inverted-pendulum: action noise at the start (default {_task_defaults('sigma')})")
    other.add_argument("--sigma-final", type=_number, default=None, help=f"inverted-pendulum: action noise reached at --max-episodes (default {_task_defaults('sigma_final')})")
    other.add_argument("--entropy", type=_number, default=None,
                       help="softmax tasks: entropy bonus at the start, added to the objective per step "
                            f"(default {_task_defaults('entropy')})")
    other.add_argument("--entropy-final", type=_number, default=None,
                       help=f"softmax tasks: entropy bonus reached at --max-episodes (default {_task_defaults('entropy_final')})")
    other.add_argument("--anneal", choices=["exponential", "linear"], default=None,
                       help="how tau / sigma / entropy move from start to final over --max-episodes (default exponential: start * (final/start)**(episode/max_episodes))")
    other.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=None,
                       help="subtract a running mean of the return at each step index, instead of the batch mean "
                            f"(default {_task_defaults('baseline')})")
    other.add_argument("--map", choices=["4x4", "8x8"], default=None, help="frozenlake map (default 4x4)")
    other.add_argument("--no-slip", action="store_true", default=None, help="frozenlake without the slippery ice")
    return parser


def _flag(setting):
    return "--no-slip" if setting == "slip" else "--" + setting.replace("_", "-")


def given_settings(args):
    """The run settings given as flags (setting name -> value); the rest keep their defaults."""
    settings = {name: value for name, value in vars(args).items() if value is not None and name not in _RUN_FLAGS}
    if args.no_slip:
        settings["slip"] = False
    return settings


def train_main(argv=None):
    parser = train_parser()
    args = parser.parse_args(argv)
    if args.task not in TASKS:
        parser.exit(2, f"pgcore-train: error: unknown task {args.task!r}; known tasks: {', '.join(TASKS)}\n")
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
        agent.learn(max_frames=args.max_frames, max_episodes=args.max_episodes, max_minutes=args.max_minutes,
                    run_dir=args.run_dir, quiet=args.quiet)
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


def play_main(argv=None):
    parser = argparse.ArgumentParser(prog="pgcore-play", description="Play with a trained policy and print the score.")
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
    args = parser.parse_args(argv)
    if args.task not in TASKS:
        parser.exit(2, f"pgcore-play: error: unknown task {args.task!r}; known tasks: {', '.join(TASKS)}\n")
    for flag in ("gif", "sticky"):
        if args.task != "pong" and getattr(args, flag) is not None:
            parser.exit(2, f"pgcore-play: error: --{flag} is for pong only\n")
    if args.task != "pong" and args.checkpoint is None:
        parser.exit(2, f"pgcore-play: error: {args.task} needs --checkpoint (only a Pong policy ships with pgcore)\n")
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


def plot_main(argv=None):
    parser = argparse.ArgumentParser(prog="pgcore-plot", description="Learning curves of runs as a PNG.")
    parser.add_argument("run_dir", nargs="+", help="one run (its episodes and running reward), or several to compare")
    parser.add_argument("-o", "--output", default=None, help="PNG path (default RUN_DIR/learning_curve.png; "
                        "required with several runs)")
    args = parser.parse_args(argv)
    if len(args.run_dir) > 1 and args.output is None:
        parser.exit(2, "pgcore-plot: error: comparing several runs needs -o/--output\n")
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
