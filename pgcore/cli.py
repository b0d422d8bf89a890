"""Command line: pgcore-train, pgcore-play, pgcore-plot.

Errors a user can fix (bad flag values, a missing or corrupt checkpoint, an
unwritable run directory) print one line and exit with code 2.
"""
import argparse
import dataclasses
import os
import sys
import time

from pgcore.control import TASKS as CONTROL_TASKS

TASKS = {"pong": "REINFORCE on Atari Pong from pixels"} | {name: spec.description for name, spec in CONTROL_TASKS.items()}


def _fail(message):
    print(f"error: {message}", file=sys.stderr)
    return 2


def _int_at_least(low):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value
    return parse


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def _bounded_float(low, high, low_open=False):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        too_low = value <= low if low_open else value < low
        if not (value == value) or too_low or value > high:
            raise argparse.ArgumentTypeError(f"must be in {'(' if low_open else '['}{low}, {high}], got {text}")
        return value
    return parse


def _default_threads():
    from pgcore._threads import _default_threads as default
    return default()


# What each preset of `pgcore-train pong` sets over PongConfig's defaults (flags given explicitly win).
PONG_PRESETS = {
    "fast": {},                # PongConfig's defaults, lr 1e-3: measured best here, see docs/results/pong
    "classic": {"lr": 1e-4},   # the original "Pong from pixels" settings
}

_TABULAR = tuple(name for name, spec in CONTROL_TASKS.items() if spec.family == "tabular")
_GAUSSIAN = tuple(name for name, spec in CONTROL_TASKS.items() if spec.family == "gaussian")
_MLP = tuple(name for name, spec in CONTROL_TASKS.items() if spec.family == "mlp")
# Task-specific flags: argument dest -> the tasks it applies to.
_FLAG_TASKS = {
    "envs": ("pong",), "optimizer": ("pong",), "preset": ("pong",), "frameskip": ("pong",),
    "sticky": ("pong",), "sync": ("pong",),
    "tau": _TABULAR, "tau_final": _TABULAR, "sigma": _GAUSSIAN, "sigma_final": _GAUSSIAN,
    "entropy": _TABULAR + _MLP, "entropy_final": _TABULAR + _MLP,
    "anneal": tuple(CONTROL_TASKS), "baseline": tuple(CONTROL_TASKS), "map": ("frozenlake",),
    "no_slip": ("frozenlake",), "hidden": ("pong",) + _MLP,
}


def _task_defaults(field):
    """'0.3 for frozenlake, 0.05 otherwise': a TaskSpec field's default over the tasks its flag applies to."""
    by_value = {}
    for task in _FLAG_TASKS[field]:
        value = getattr(CONTROL_TASKS[task], field)
        by_value.setdefault(("on" if value else "off") if isinstance(value, bool) else f"{value:g}", []).append(task)
    common = max(by_value, key=lambda value: len(by_value[value]))
    if len(by_value) == 1:
        return common
    rare = [f"{value} for {' and '.join(tasks)}" for value, tasks in by_value.items() if value != common]
    return f"{', '.join(rare)}, {common} otherwise"


def train_parser():
    parser = argparse.ArgumentParser(
        prog="pgcore-train", description="Train a policy-gradient agent.",
        epilog="tasks: " + "; ".join(f"{name}: {text}" for name, text in TASKS.items()))
    parser.add_argument("task", help=f"what to train: {', '.join(TASKS)}")
    common = parser.add_argument_group("every task")
    common.add_argument("--seed", type=_non_negative_int, default=0, help="seed of every random stream (default 0)")
    common.add_argument("--max-frames", type=_non_negative_int, default=0,
                        help="stop after this many emulator frames (environment steps for the other tasks; 0: no limit)")
    common.add_argument("--max-episodes", type=_non_negative_int, default=None,
                        help="stop after this many episodes (0: no limit; default: none for pong, a budget per task otherwise)")
    common.add_argument("--run-dir", default=None, help="where to write config.json, progress.csv, checkpoint.npz (default runs/TASK-TIMESTAMP)")
    common.add_argument("--resume", metavar="RUN_DIR", default=None, help="continue the run in RUN_DIR from its last checkpoint")
    common.add_argument("--backend", choices=["cython", "numpy"], default="cython", help="compiled kernels or their NumPy twins (default cython)")
    common.add_argument("--threads", type=_positive_int, default=None,
                        help="pong: emulator threads (default: all cores); other tasks: kernel threads (default 1)")
    common.add_argument("--dtype", choices=["float32", "float64"], default=None, help="parameter dtype (default float32 for pong, float64 otherwise)")
    common.add_argument("--checkpoint-every", type=_non_negative_int, default=None, help="episodes between checkpoints (default 50 for pong, 500 otherwise; 0: only at the end)")
    common.add_argument("--quiet", action="store_true", help="no progress bar")
    common.add_argument("--batch-episodes", type=_positive_int, default=None, help="episodes per update (default 10 for pong; per task otherwise)")
    common.add_argument("--lr", type=_bounded_float(0.0, 1.0, low_open=True), default=None, help="learning rate (default: the preset's for pong, per task otherwise)")
    common.add_argument("--gamma", type=_bounded_float(0.0, 1.0), default=None, help="discount (default 0.99)")
    common.add_argument("--hidden", type=_positive_int, default=None, help="hidden units: pong (default 200), cartpole and acrobot (default 32)")
    pong = parser.add_argument_group("pong")
    pong.add_argument("--preset", choices=list(PONG_PRESETS), default=None,
                      help="fast (default): RMSProp lr 1e-3; classic: the original lr 1e-4")
    pong.add_argument("--envs", type=_positive_int, default=None, help="parallel emulators (default 16)")
    pong.add_argument("--optimizer", choices=["rmsprop", "adam"], default=None, help="(default rmsprop)")
    pong.add_argument("--frameskip", type=_positive_int, default=None, help="emulator frames per agent step (default 4)")
    pong.add_argument("--sticky", type=_bounded_float(0.0, 1.0), default=None, help="probability of repeating the last action (default 0.25)")
    pong.add_argument("--sync", action="store_true", default=None, help="step all emulators together: slower, bitwise reproducible")
    other = parser.add_argument_group("the other tasks (Adam; each update plays --batch-episodes episodes in parallel)")
    other.add_argument("--tau", type=_bounded_float(0.0, 1e6, low_open=True), default=None, help=f"tabular tasks: softmax temperature at the start (default {_task_defaults('tau')})")
    other.add_argument("--tau-final", type=_bounded_float(0.0, 1e6, low_open=True), default=None, help=f"tabular tasks: temperature reached at --max-episodes (default {_task_defaults('tau_final')})")
    other.add_argument("--sigma", type=_bounded_float(0.0, 1e6, low_open=True), default=None, help=f"inverted-pendulum: action noise at the start (default {_task_defaults('sigma')})")
    other.add_argument("--sigma-final", type=_bounded_float(0.0, 1e6, low_open=True), default=None, help=f"inverted-pendulum: action noise reached at --max-episodes (default {_task_defaults('sigma_final')})")
    other.add_argument("--entropy", type=_bounded_float(0.0, 1e6), default=None,
                       help="softmax tasks: entropy bonus at the start, added to the objective per step "
                            f"(default {_task_defaults('entropy')})")
    other.add_argument("--entropy-final", type=_bounded_float(0.0, 1e6), default=None,
                       help=f"softmax tasks: entropy bonus reached at --max-episodes (default {_task_defaults('entropy_final')})")
    other.add_argument("--anneal", choices=["exponential", "linear"], default=None,
                       help="how tau / sigma / entropy move from start to final over --max-episodes (default exponential: start * (final/start)**(episode/max_episodes))")
    other.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=None,
                       help="subtract a running mean of the return at each step index, instead of the batch mean "
                            f"(default {_task_defaults('baseline')})")
    other.add_argument("--map", choices=["4x4", "8x8"], default=None, help="frozenlake map (default 4x4)")
    other.add_argument("--no-slip", action="store_true", default=None, help="frozenlake without the slippery ice")
    return parser


def train_main(argv=None):
    parser = train_parser()
    args = parser.parse_args(argv)
    if args.task not in TASKS:
        parser.exit(2, f"pgcore-train: error: unknown task {args.task!r}; known tasks: {', '.join(TASKS)}\n")
    for dest, tasks in _FLAG_TASKS.items():
        if getattr(args, dest) is not None and args.task not in tasks:
            flag = "--" + dest.replace("_", "-")
            parser.exit(2, f"pgcore-train: error: {flag} does not apply to {args.task} (only to {', '.join(tasks)})\n")
    # libgomp's idle threads would otherwise spin between kernels and steal the emulators' cores.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from pgcore import runs

    try:
        if args.resume:
            config, meta, arrays = _load_resume(args)
        else:
            run_dir = args.run_dir or os.path.join("runs", f"{args.task}-{time.strftime('%Y%m%d-%H%M%S')}")
            config = _new_config(args, run_dir)
            runs.prepare_run_dir(run_dir, resume=False)
            meta = arrays = None
        runs.write_json(os.path.join(config.run_dir, "config.json"),
                        {"task": args.task, "config": dataclasses.asdict(config), "machine": runs.machine_info()})
        kernels = _kernels(config.backend)
        if args.task == "pong":
            from pgcore import pong
            counters, stopped_by = pong.train(config, kernels, meta, arrays)
        else:
            from pgcore import control
            import pgcore
            pgcore.set_num_threads(args.threads or 1)  # small arrays: the kernels' serial paths
            counters, stopped_by = control.train(config, kernels, meta, arrays)
    except KeyboardInterrupt:
        print("error: interrupted (before training began, or a second time): the last checkpoint is kept", file=sys.stderr)
        return 130
    except runs.RunError as error:
        return _fail(str(error))
    except OSError as error:
        return _fail(f"{error.strerror or error} ({error.filename or config.run_dir})")
    if not config.quiet:
        why = f"stopped by {stopped_by}; " if stopped_by else ""
        running = counters["running_reward"]
        print(f"{why}{counters['episode']} episodes, {counters['frames']:,} frames, running reward "
              f"{'n/a' if running is None else f'{running:.2f}'}; checkpoint in {config.run_dir}")
    return 0


def _new_config(args, run_dir):
    """The config of a new run: flags given, else the preset's / task's defaults."""
    common = dict(seed=args.seed, backend=args.backend, max_frames=args.max_frames, run_dir=run_dir, quiet=args.quiet)
    given = {k: getattr(args, k) for k in ("max_episodes", "checkpoint_every", "dtype", "batch_episodes", "lr",
                                           "gamma", "hidden")}
    if args.task == "pong":
        from pgcore import pong
        pong_flags = {k: getattr(args, k) for k in ("envs", "optimizer", "frameskip", "sticky", "sync")}
        values = PONG_PRESETS[args.preset or "fast"] | {k: v for k, v in (given | pong_flags).items() if v is not None}
        config = pong.PongConfig(threads=args.threads or _default_threads(), **common, **values)
        pong.check_config(config)
        return config
    from pgcore import control, runs
    values = given | {k: getattr(args, k) for k in ("tau", "tau_final", "sigma", "sigma_final", "entropy", "entropy_final",
                                                 "anneal", "baseline", "map")}
    values["slip"] = None if args.no_slip is None else False
    config = control.default_config(args.task, **common, **values)
    try:
        control.check_config(config)
    except ValueError as error:
        raise runs.RunError(str(error)) from None
    return config


def _kernels(backend):
    if backend == "numpy":
        from pgcore import reference
        return reference
    from pgcore import kernels
    return kernels


def _load_resume(args):
    """The saved config, with the limits and display flags given now; checkpoint arrays checked."""
    from pgcore import control, pong, runs

    run_dir = args.resume
    path = os.path.join(run_dir, runs.CHECKPOINT_NAME)
    _, meta = runs.load_checkpoint(path)
    config_path = os.path.join(run_dir, "config.json")
    if os.path.exists(config_path):
        runs.read_json(config_path)  # a damaged record of the run is reported, not silently replaced
    saved_task = "pong" if meta.get("format") == "pgcore-pong-1" else (meta.get("config") or {}).get("task")
    if saved_task != args.task:
        raise runs.RunError(f"{run_dir} holds a {saved_task or 'unknown'} run, not {args.task}")
    try:
        saved = dict(meta["config"])
        if args.task == "pong":
            saved.setdefault("optimizer", "rmsprop")  # checkpoints from before Adam was an option
            config = pong.PongConfig(**saved)
            pong.check_config(config)
            runs.check_resume_meta(meta, pong.COUNTER_TYPES, pong.RUNNING_REWARD_BOUNDS)
            expected = pong.checkpoint_arrays(config)
        else:
            config = control.ControlConfig(**saved)
            control.check_config(config)
            runs.check_resume_meta(meta, control.COUNTER_TYPES)
            expected = control.checkpoint_arrays(config)
    except (KeyError, TypeError, ValueError) as error:
        raise runs.RunError(f"corrupt checkpoint {path}: bad metadata ({error.__class__.__name__}: {error})") from None
    arrays, meta = runs.load_checkpoint(path, expected)
    config = dataclasses.replace(config, run_dir=run_dir, quiet=args.quiet,
                                 max_frames=args.max_frames or config.max_frames,
                                 max_episodes=args.max_episodes or config.max_episodes)
    if args.threads and args.task == "pong":
        config = dataclasses.replace(config, threads=args.threads)
    runs.prepare_run_dir(run_dir, resume=True)
    return config, meta, arrays


def play_main(argv=None):
    parser = argparse.ArgumentParser(prog="pgcore-play", description="Play with a trained policy and print the score.")
    parser.add_argument("task", help=f"one of {', '.join(TASKS)}")
    parser.add_argument("--checkpoint", default=None, help="checkpoint.npz of a run, or a run directory "
                        "(pong: default the policy shipped with pgcore)")
    parser.add_argument("--episodes", type=_positive_int, default=None, help="episodes (games) to play (default 1 for pong, 100 otherwise)")
    parser.add_argument("--seed", type=_non_negative_int, default=0)
    parser.add_argument("--sample", action="store_true", help="sample actions instead of playing greedily")
    parser.add_argument("--gif", default=None, help="pong: write an animated GIF of the first game here")
    args = parser.parse_args(argv)
    if args.task not in TASKS:
        parser.exit(2, f"pgcore-play: error: unknown task {args.task!r}; known tasks: {', '.join(TASKS)}\n")
    if args.task != "pong" and args.gif:
        parser.exit(2, "pgcore-play: error: --gif is for pong only\n")
    if args.task != "pong" and args.checkpoint is None:
        parser.exit(2, f"pgcore-play: error: {args.task} needs --checkpoint (only a Pong policy ships with pgcore)\n")
    from pgcore import play, runs
    try:
        if args.task == "pong":
            scores = play.play_pong(args.checkpoint, args.episodes or 1, args.seed, args.sample, args.gif)
        else:
            scores = play.play_control(args.task, args.checkpoint, args.episodes or 100, args.seed, args.sample)
    except runs.RunError as error:
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
