"""Command line: pgcore-train, pgcore-play, pgcore-plot.

Errors a user can fix (bad flag values, a missing or corrupt checkpoint, an
unwritable run directory) print one line and exit with code 2.
"""
import argparse
import dataclasses
import os
import sys
import time

TASKS = {"pong": "REINFORCE on Atari Pong from pixels (the classic recipe)"}


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


def train_parser():
    parser = argparse.ArgumentParser(
        prog="pgcore-train", description="Train a policy-gradient agent.",
        epilog="tasks: " + "; ".join(f"{name}: {text}" for name, text in TASKS.items()))
    parser.add_argument("task", help=f"what to train: {', '.join(TASKS)}")
    common = parser.add_argument_group("every task")
    common.add_argument("--seed", type=_non_negative_int, default=0, help="seed of every random stream (default 0)")
    common.add_argument("--max-frames", type=_non_negative_int, default=0, help="stop after this many emulator frames (0: no limit)")
    common.add_argument("--max-episodes", type=_non_negative_int, default=0, help="stop after this many episodes (0: no limit)")
    common.add_argument("--run-dir", default=None, help="where to write config.json, progress.csv, checkpoint.npz (default runs/TASK-TIMESTAMP)")
    common.add_argument("--resume", metavar="RUN_DIR", default=None, help="continue the run in RUN_DIR from its last checkpoint")
    common.add_argument("--backend", choices=["cython", "numpy"], default="cython", help="compiled kernels or their NumPy twins (default cython)")
    common.add_argument("--threads", type=_positive_int, default=None, help="emulator threads (default: all cores; the trainer's kernels run between emulator steps)")
    common.add_argument("--dtype", choices=["float32", "float64"], default="float32", help="parameter dtype (default float32)")
    common.add_argument("--checkpoint-every", type=_non_negative_int, default=50, help="episodes between checkpoints (default 50; 0: only at the end)")
    common.add_argument("--quiet", action="store_true", help="no progress bar")
    pong = parser.add_argument_group("pong")
    pong.add_argument("--envs", type=_positive_int, default=16, help="parallel emulators (default 16)")
    pong.add_argument("--batch-episodes", type=_positive_int, default=10, help="episodes per update (default 10)")
    pong.add_argument("--lr", type=_bounded_float(0.0, 1.0, low_open=True), default=1e-4, help="RMSProp learning rate (default 1e-4)")
    pong.add_argument("--gamma", type=_bounded_float(0.0, 1.0), default=0.99, help="discount (default 0.99)")
    pong.add_argument("--hidden", type=_positive_int, default=200, help="hidden units (default 200)")
    pong.add_argument("--frameskip", type=_positive_int, default=4, help="emulator frames per agent step (default 4)")
    pong.add_argument("--sticky", type=_bounded_float(0.0, 1.0), default=0.25, help="probability of repeating the last action (default 0.25)")
    pong.add_argument("--sync", action="store_true", help="step all emulators together: slower, bitwise reproducible")
    return parser


def train_main(argv=None):
    parser = train_parser()
    args = parser.parse_args(argv)
    if args.task not in TASKS:
        parser.exit(2, f"pgcore-train: error: unknown task {args.task!r}; known tasks: {', '.join(TASKS)}\n")
    # libgomp's idle threads would otherwise spin between kernels and steal the emulators' cores.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from pgcore import pong, runs

    try:
        if args.resume:
            config, meta, arrays = _load_resume(args)
        else:
            run_dir = args.run_dir or os.path.join("runs", f"{args.task}-{time.strftime('%Y%m%d-%H%M%S')}")
            config = pong.PongConfig(
                seed=args.seed, envs=args.envs, threads=args.threads or _default_threads(), sync=args.sync,
                frameskip=args.frameskip, sticky=args.sticky, hidden=args.hidden, lr=args.lr, gamma=args.gamma,
                batch_episodes=args.batch_episodes, dtype=args.dtype, backend=args.backend,
                max_frames=args.max_frames, max_episodes=args.max_episodes,
                checkpoint_every=args.checkpoint_every, run_dir=run_dir, quiet=args.quiet)
            runs.prepare_run_dir(run_dir, resume=False)
            meta = arrays = None
        runs.write_json(os.path.join(config.run_dir, "config.json"),
                        {"task": args.task, "config": dataclasses.asdict(config), "machine": runs.machine_info()})
        kernels = _kernels(config.backend)
        counters, stopped_by = pong.train(config, kernels, meta, arrays)
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


def _kernels(backend):
    if backend == "numpy":
        from pgcore import reference
        return reference
    from pgcore import kernels
    return kernels


def _load_resume(args):
    """The saved config, with the limits and display flags given now; checkpoint arrays checked."""
    from pgcore import pong, runs

    run_dir = args.resume
    path = os.path.join(run_dir, runs.CHECKPOINT_NAME)
    _, meta = runs.load_checkpoint(path)
    try:
        config = pong.PongConfig(**meta["config"])
        pong.check_config(config)
        pong.check_resume_meta(meta)
    except (KeyError, TypeError, ValueError) as error:
        raise runs.RunError(f"corrupt checkpoint {path}: bad metadata ({error.__class__.__name__}: {error})") from None
    shapes = pong.param_shapes(config)
    expected = {}
    for name, shape in shapes.items():
        for prefix in ("", "cache_", "grad_"):
            expected[prefix + name] = (shape, config.dtype)
    arrays, meta = runs.load_checkpoint(path, expected)
    config = dataclasses.replace(config, run_dir=run_dir, quiet=args.quiet,
                                 max_frames=args.max_frames or config.max_frames,
                                 max_episodes=args.max_episodes or config.max_episodes)
    if args.threads:
        config = dataclasses.replace(config, threads=args.threads)
    runs.prepare_run_dir(run_dir, resume=True)
    return config, meta, arrays


def play_main(argv=None):
    parser = argparse.ArgumentParser(prog="pgcore-play", description="Play Pong with a trained policy and print the score.")
    parser.add_argument("task", help="pong")
    parser.add_argument("--checkpoint", default=None, help="checkpoint.npz of a run, or a run directory")
    parser.add_argument("--episodes", type=_positive_int, default=1, help="games to play (default 1)")
    parser.add_argument("--seed", type=_non_negative_int, default=0)
    parser.add_argument("--sample", action="store_true", help="sample actions instead of playing greedily")
    parser.add_argument("--gif", default=None, help="write an animated GIF of the first game here")
    args = parser.parse_args(argv)
    if args.task not in TASKS:
        parser.exit(2, f"pgcore-play: error: unknown task {args.task!r}; known tasks: {', '.join(TASKS)}\n")
    from pgcore import play, runs
    try:
        scores = play.play_pong(args.checkpoint, args.episodes, args.seed, args.sample, args.gif)
    except runs.RunError as error:
        return _fail(str(error))
    except OSError as error:
        return _fail(f"{error.strerror or error}: {error.filename}")
    mean = sum(scores) / len(scores)
    print(f"mean score over {len(scores)} game(s): {mean:+.2f}")
    return 0


def plot_main(argv=None):
    parser = argparse.ArgumentParser(prog="pgcore-plot", description="Learning curve of a run as a PNG.")
    parser.add_argument("run_dir")
    parser.add_argument("-o", "--output", default=None, help="PNG path (default RUN_DIR/learning_curve.png)")
    args = parser.parse_args(argv)
    from pgcore import plot, runs
    try:
        out = plot.plot_run(args.run_dir, args.output)
    except runs.RunError as error:
        return _fail(str(error))
    except OSError as error:
        return _fail(f"{error.strerror or error}: {error.filename}")
    print(out)
    return 0
