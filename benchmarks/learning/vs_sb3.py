"""The peer users would pick instead, side by side: Stable-Baselines3's PPO with RL Zoo's Atari
hyperparameters, on CPU torch, writing a run directory that `pgcore-plot` draws beside pgcore's.

usage: python benchmarks/learning/vs_sb3.py --minutes 30 --threads 2 --run-dir runs/sb3-pong
       pgcore-plot runs/sb3-pong runs/pgcore-pong -o compare.png

Needs stable-baselines3, torch and OpenCV (`pip install '.[sb3]'`; install a CPU torch first with
`pip install torch --index-url https://download.pytorch.org/whl/cpu`, or pip brings a CUDA
build). pgcore itself is not imported: the script runs in any environment that has SB3.

What it runs (RL Zoo, github.com/DLR-RM/rl-baselines3-zoo, hyperparams/ppo.yml, entry `atari`):
PPO, CnnPolicy, n_envs 8, n_steps 128, n_epochs 4, batch_size 256, learning_rate lin_2.5e-4,
clip_range lin_0.1, vf_coef 0.5, ent_coef 0.01, n_timesteps 1e7 (the linear schedules run to
zero over 1e7 agent steps, as in RL Zoo, whatever --minutes stops the run at), SB3's AtariWrapper
and a 4-frame stack, the envs in a DummyVecEnv (RL Zoo's default). The env is ALE/{GAME}-v5
(sticky actions 0.25 by default, as pgcore's Pong) made with frameskip=1, because AtariWrapper's
MaxAndSkipEnv does the skipping: 4 emulator frames per agent step, as v5's frameskip 4, each
with the ALE's sticky-action draw. Monitor wraps the raw env, under AtariWrapper's
life-loss terminals and reward clipping, so each row is one whole game and its unclipped score.

Writes RUN_DIR/progress.csv with pgcore's columns, one row per finished game:
  episode, frames (agent steps x 4, over all envs), steps (agent steps over all envs),
  reward (the game's score), running_reward (as pgcore: the first score, then 0.99 old + 0.01 new),
  wall_s (since the start, env construction included, as pgcore's clock), steps_per_s,
  updates (optimizer steps so far, each on one minibatch of 256, as pgcore counts an update:
  n_epochs x (n_envs x n_steps / batch_size) = 16 a rollout with the defaults)
and RUN_DIR/config.json (the settings, the versions, the CPU; with a "result" added at the end).
Stops after --minutes of wall time (or --max-frames emulator frames), or at Ctrl-C / SIGTERM
(a second Ctrl-C interrupts at once), checked at every env step, so a limit that falls in a
PPO train() (some 10 s on 2 cores) stops the run after it; every row is flushed as it is written.
At the end it prints one line: frames/s over the run and the last running reward.
Bad arguments, a missing SB3 or torch, an unknown game or an unusable run directory: a
one-line error and exit code 2 (the arguments are checked before torch is imported).
"""
import argparse
import csv
import json
import math
import os
import platform
import re
import signal
import sys
import time

PROGRESS_COLUMNS = ["episode", "frames", "steps", "reward", "running_reward", "wall_s", "steps_per_s", "updates"]
FRAMESKIP = 4
INSTALL_HINT = ("pip install 'stable-baselines3>=2.4' opencv-python-headless (or pip install '.[sb3]' in pgcore's "
                "checkout; for a CPU torch first: pip install torch --index-url https://download.pytorch.org/whl/cpu)")

# RL Zoo's hyperparams/ppo.yml, entry `atari` (rl-baselines3-zoo commit 22e3ff2, April 2026)
RL_ZOO_ATARI = {
    "policy": "CnnPolicy", "n_envs": 8, "n_steps": 128, "n_epochs": 4, "batch_size": 256,
    "n_timesteps": 10_000_000, "learning_rate": "lin_2.5e-4", "clip_range": "lin_0.1",
    "vf_coef": 0.5, "ent_coef": 0.01, "env_wrapper": "stable_baselines3.common.atari_wrappers.AtariWrapper",
    "frame_stack": 4,
}


class OneLineParser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def fail(message):
    print(f"vs_sb3.py: error: {message}", file=sys.stderr)
    return 2


def _number(low, high=math.inf, low_open=False, whole=False):
    def parse(text):
        try:
            value = int(text) if whole else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {'whole ' if whole else ''}number, got {text!r}") from None
        if not math.isfinite(value) or value < low or (low_open and value == low) or value > high:
            bound = f"> {low:g}" if low_open else f">= {low:g}"
            if high != math.inf:
                bound += f" and <= {high:g}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {text!r}")
        return value
    return parse


def _game(text):
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", text):
        raise argparse.ArgumentTypeError(f"expected an Atari game name such as Pong or Breakout, got {text!r}")
    return text


def parse_args(argv):
    parser = OneLineParser(prog="vs_sb3.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=_number(0, low_open=True), required=True,
                        help="wall-clock minutes to train (fractions allowed)")
    parser.add_argument("--game", type=_game, default="Pong", help="the ALE game: ALE/GAME-v5 (default Pong)")
    parser.add_argument("--sticky", type=_number(0, 1), default=0.25,
                        help="repeat_action_probability (default 0.25, v5's and pgcore's Pong's)")
    parser.add_argument("--seed", type=_number(0, 2**31 - 1, whole=True), default=0)
    parser.add_argument("--threads", type=_number(1, 1024, whole=True), default=len(os.sched_getaffinity(0)),
                        help="torch.set_num_threads (default: every core this process may use)")
    parser.add_argument("--envs", type=_number(1, 1024, whole=True), default=RL_ZOO_ATARI["n_envs"],
                        help="parallel envs (default 8, RL Zoo's n_envs)")
    parser.add_argument("--max-frames", type=_number(0, whole=True), default=0,
                        help="also stop after this many emulator frames (0: no limit)")
    parser.add_argument("--run-dir", default=None, help="where to write progress.csv and config.json "
                                                        "(default runs/sb3-ppo-GAME-TIMESTAMP)")
    args = parser.parse_args(argv)
    if args.run_dir is None:
        args.run_dir = os.path.join("runs", f"sb3-ppo-{args.game.lower()}-{time.strftime('%Y%m%d-%H%M%S')}")
    return args


def check_run_dir(path):
    """A one-line message if `path` cannot take a new run, else None (nothing is created yet)."""
    path = os.path.abspath(path)
    if os.path.exists(os.path.join(path, "progress.csv")):
        return f"{path} already holds a progress.csv: choose a new --run-dir"
    if os.path.exists(path) and not os.path.isdir(path):
        return f"run directory {path} exists and is not a directory"
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing) or not os.access(existing, os.W_OK | os.X_OK):
        return f"run directory {path} cannot be created or written ({existing} is not a writable directory)"
    return None


def running_mean(previous, value):
    """pgcore's running reward (pgcore.runs.running_mean, reimplemented so that pgcore need not be
    installed here): the first episode's reward as it is, then 0.99 of the previous plus 0.01 of the new."""
    return value if previous is None else 0.99 * previous + 0.01 * value


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def linear(initial):
    """RL Zoo's `lin_X` (rl_zoo3.utils.SimpleLinearSchedule): X times SB3's progress_remaining."""
    return lambda progress_remaining: progress_remaining * initial


def write_json(path, document):
    temporary = path + ".tmp"
    with open(temporary, "w") as f:
        json.dump(document, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(temporary, path)


class StopRequest:
    """The first Ctrl-C or SIGTERM asks the training loop to stop at its next step; a second
    Ctrl-C raises KeyboardInterrupt at once."""

    def __init__(self):
        self.signal_name = None
        self.previous = {sig: signal.signal(sig, self.handle) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handle(self, signum, frame):
        if self.signal_name is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal_name = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"

    def restore(self):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def main(argv=None):
    args = parse_args(argv)
    problem = check_run_dir(args.run_dir)
    if problem:
        return fail(problem)

    start = time.perf_counter()  # pgcore's clock also starts before its envs are made
    try:
        import gymnasium as gym
        import numpy
        import stable_baselines3
        import torch
        from stable_baselines3 import PPO
        from stable_baselines3.common.atari_wrappers import AtariWrapper
        from stable_baselines3.common.callbacks import BaseCallback
        from stable_baselines3.common.env_util import make_vec_env
        from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack, VecTransposeImage
        import cv2  # noqa: F401  (AtariWrapper's WarpFrame resizes with OpenCV)
    except ImportError as error:
        return fail(f"stable-baselines3, torch and OpenCV are needed ({error}): {INSTALL_HINT}")
    try:
        import ale_py
        gym.register_envs(ale_py)
    except ImportError as error:
        return fail(f"ale-py is needed for the Atari games ({error}): pip install 'gymnasium[atari]' ale-py")

    env_id = f"ALE/{args.game}-v5"
    torch.set_num_threads(args.threads)
    try:
        # Monitor wraps the raw env (make_vec_env puts it under wrapper_class), so info["episode"]
        # is the whole game's unclipped score, not a life's, as in SB3's make_atari_env
        envs = make_vec_env(env_id, n_envs=args.envs, seed=args.seed, vec_env_cls=DummyVecEnv,
                            wrapper_class=AtariWrapper, wrapper_kwargs={"frame_skip": FRAMESKIP},
                            env_kwargs={"frameskip": 1, "repeat_action_probability": args.sticky})
    except gym.error.Error as error:
        return fail(f"cannot make {env_id} (--game {args.game}): {error}")
    envs = VecTransposeImage(VecFrameStack(envs, n_stack=RL_ZOO_ATARI["frame_stack"]))  # as RL Zoo's create_envs

    hyper = RL_ZOO_ATARI
    model = PPO(hyper["policy"], envs, n_steps=hyper["n_steps"], n_epochs=hyper["n_epochs"],
                batch_size=hyper["batch_size"], learning_rate=linear(2.5e-4), clip_range=linear(0.1),
                vf_coef=hyper["vf_coef"], ent_coef=hyper["ent_coef"], seed=args.seed, device="cpu", verbose=0)
    counters = {"episode": 0, "updates": 0, "running_reward": None, "steps": 0}
    model.policy.optimizer.register_step_post_hook(lambda *_: counters.__setitem__("updates", counters["updates"] + 1))

    try:
        os.makedirs(args.run_dir, exist_ok=True)
        config = {
            "tool": "stable-baselines3 PPO, RL Zoo's atari hyperparameters (benchmarks/learning/vs_sb3.py)",
            "env_id": env_id,
            "settings": {"minutes": args.minutes, "game": args.game, "sticky": args.sticky, "seed": args.seed,
                         "threads": args.threads, "envs": args.envs, "max_frames": args.max_frames,
                         "run_dir": args.run_dir},
            "hyperparameters": dict(hyper, n_envs=args.envs),
            "hyperparameters_source": "rl-baselines3-zoo hyperparams/ppo.yml, entry atari",
            "env": {"frameskip": FRAMESKIP, "skipping": "AtariWrapper's MaxAndSkipEnv over a frameskip=1 v5 env",
                    "repeat_action_probability": args.sticky, "vec_env": "DummyVecEnv",
                    "monitor": "under AtariWrapper: rows are whole games, unclipped scores"},
            "counting": {"frames": f"agent steps x {FRAMESKIP}, over all envs (noop-reset frames not counted)",
                         "updates": "optimizer steps (one per minibatch)"},
            "machine": {"cpu": cpu_name(), "cpu_count": os.cpu_count(), "python": sys.version.split()[0],
                        "platform": platform.platform(), "stable_baselines3": stable_baselines3.__version__,
                        "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                        "gymnasium": gym.__version__, "ale_py": ale_py.__version__,
                        "numpy": numpy.__version__},
        }
        config_path = os.path.join(args.run_dir, "config.json")
        write_json(config_path, config)
        progress_file = open(os.path.join(args.run_dir, "progress.csv"), "x", newline="")
    except OSError as error:
        return fail(f"{error.strerror or error} ({error.filename or args.run_dir})")

    writer = csv.writer(progress_file)
    writer.writerow(PROGRESS_COLUMNS)
    progress_file.flush()
    stop = StopRequest()

    class Progress(BaseCallback):
        def _on_step(self):
            steps = self.num_timesteps  # agent steps over all envs, counted before this call
            counters["steps"] = steps
            wall = time.perf_counter() - start
            for info in self.locals["infos"]:
                episode = info.get("episode")
                if episode is None:
                    continue
                reward = float(episode["r"])
                counters["episode"] += 1
                counters["running_reward"] = running_mean(counters["running_reward"], reward)
                writer.writerow([counters["episode"], steps * FRAMESKIP, steps, reward,
                                 round(counters["running_reward"], 6), round(wall, 3),
                                 round(steps / max(wall, 1e-9), 1), counters["updates"]])
                progress_file.flush()
            out_of_frames = args.max_frames and steps * FRAMESKIP >= args.max_frames
            return not (wall >= 60 * args.minutes or out_of_frames or stop.signal_name)

    interrupted = False
    try:
        model.learn(total_timesteps=hyper["n_timesteps"], callback=Progress())
    except KeyboardInterrupt:
        interrupted = True
    finally:
        wall = time.perf_counter() - start
        stop.restore()
        progress_file.close()
        envs.close()

    frames = counters["steps"] * FRAMESKIP
    running = counters["running_reward"]
    stopped_by = "Ctrl-C (twice)" if interrupted else stop.signal_name
    config["result"] = {"wall_s": round(wall, 3), "frames": frames, "steps": counters["steps"],
                        "frames_per_s": round(frames / max(wall, 1e-9), 1), "episodes": counters["episode"],
                        "updates": counters["updates"], "running_reward": running, "stopped_by": stopped_by}
    try:
        write_json(config_path, config)
    except OSError as error:
        print(f"vs_sb3.py: warning: could not add the result to {config_path}: {error}", file=sys.stderr)
    why = f"stopped by {stopped_by}; " if stopped_by else ""
    print(f"{why}sb3 PPO {env_id}: {frames / max(wall, 1e-9):,.0f} frames/s ({frames:,} frames in {wall:.1f} s), "
          f"{counters['episode']} episodes, {counters['updates']} updates, running reward "
          f"{'n/a' if running is None else f'{running:.2f}'}; run in {args.run_dir}")
    return 130 if interrupted else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # before training began (imports, env construction)
        print("vs_sb3.py: error: interrupted before training began", file=sys.stderr)
        sys.exit(130)
