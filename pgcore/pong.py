"""REINFORCE on Atari Pong from pixels: the "Pong from pixels" network and update, batched.

One loop, top to bottom. N emulators run on ale-py's C++ threads; while one half
of them emulates, Python handles the other half (asynchronous send/recv), so the
cores stay busy emulating. Each step, for the B environments that came back:

  frames (B, 210, 160, 3) uint8 -> pong_difference (preprocess, minus each env's
  previous frame) -> (B, 6400) int8 -> mlp_forward (one sparse product for all B) -> sample
  -> store x (int8), h, logit, action in per-env episode buffers -> send actions

When an environment's episode ends, its returns (cut at every point), standardized
advantages and gradient are computed at once (sigmoid_policy_grad + mlp_backward)
and added to the batch gradient; RMSProp applies it every `batch_episodes`
episodes. The kernels come in as a module (`pgcore.kernels` or `pgcore.reference`),
so both backends run exactly this code.
"""
import dataclasses
import os
import signal
import time
import warnings
from dataclasses import dataclass

import numpy as np

from pgcore import runs

UP, DOWN = 2, 3  # Pong's minimal action set: RIGHT moves the paddle up, LEFT down
INPUT_SIZE = 80 * 80
FIRST_BUFFER_STEPS = 2048  # per env; doubled when an episode runs longer


@dataclass
class PongConfig:
    seed: int = 0
    envs: int = 16                 # parallel emulators
    threads: int = 2               # emulator threads
    sync: bool = False             # step all envs together: slower, but bitwise reproducible
    frameskip: int = 4
    sticky: float = 0.25           # repeat_action_probability
    hidden: int = 200
    optimizer: str = "rmsprop"     # or "adam"
    lr: float = 1e-3               # the classic recipe's 1e-4 is --preset classic
    decay: float = 0.99            # RMSProp
    beta1: float = 0.9             # Adam
    beta2: float = 0.999           # Adam
    gamma: float = 0.99
    batch_episodes: int = 10       # episodes per parameter update
    dtype: str = "float32"
    backend: str = "cython"
    max_frames: int = 0            # 0: no limit
    max_episodes: int = 0          # 0: no limit
    checkpoint_every: int = 50     # episodes
    run_dir: str = ""
    quiet: bool = False


RUNNING_REWARD_BOUNDS = (-21, 21)  # a Pong game scores -21..21
COUNTER_TYPES = {"episode": int, "frames": int, "steps": int, "updates": int, "episodes_in_batch": int,
                 "wall_s": (int, float), "segment": int}


def check_config(config):
    """Raises ValueError naming the first setting out of range (a hand-edited checkpoint, say)."""
    runs.check_whole_numbers(config, ("envs", "threads", "frameskip", "hidden", "batch_episodes"), 1)
    runs.check_whole_numbers(config, ("max_frames", "max_episodes", "checkpoint_every", "seed"), 0)
    for name, low, high in (("lr", 0.0, 1.0), ("decay", 0.0, 1.0), ("beta1", 0.0, 0.999999), ("beta2", 0.0, 0.999999),
                            ("gamma", 0.0, 1.0), ("sticky", 0.0, 1.0)):
        value = getattr(config, name)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high:
            raise ValueError(f"{name} must be a number in [{low}, {high}], not {value!r}")
    if config.lr == 0:
        raise ValueError("lr must be above 0")
    if config.optimizer not in OPTIMIZER_STATE:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZER_STATE)}, not {config.optimizer!r}")
    if config.dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be float32 or float64, not {config.dtype!r}")
    if config.backend not in ("cython", "numpy"):
        raise ValueError(f"backend must be cython or numpy, not {config.backend!r}")


class StopRequest:
    """Turns SIGINT (Ctrl-C) and SIGTERM into a flag the loop checks between steps, so an
    episode's bookkeeping and an update are never cut in half; a second signal stops at once."""

    def __init__(self):
        self.signal_name = None
        self.previous = {}
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                self.previous[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread: signals stay as they are
                pass

    def _handle(self, signum, frame):
        if self.signal_name is not None:
            raise KeyboardInterrupt
        self.signal_name = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous = {}


def make_envs(config):
    from ale_py.vector_env import AtariVectorEnv

    batch = config.envs if config.sync else max(1, config.envs // 2)
    envs = AtariVectorEnv(
        "pong", num_envs=config.envs, batch_size=batch, num_threads=config.threads,
        img_height=210, img_width=160, grayscale=False, stack_num=1, maxpool=False, noop_max=0,
        frameskip=config.frameskip, repeat_action_probability=config.sticky,
        reward_clipping=False, use_fire_reset=False, episodic_life=False,
        autoreset_mode="SameStep",  # a done step already returns the next episode's first frame
    )
    return envs


def init_params(config, rng):
    """Classic init: N(0, 1) / sqrt(fan_in), no biases."""
    dtype = np.dtype(config.dtype)
    w1 = (rng.standard_normal((INPUT_SIZE, config.hidden)) / np.sqrt(INPUT_SIZE)).astype(dtype)
    w2 = (rng.standard_normal(config.hidden) / np.sqrt(config.hidden)).astype(dtype)
    return {"w1": w1, "w2": w2}


def param_shapes(config):
    return {"w1": (INPUT_SIZE, config.hidden), "w2": (config.hidden,)}


# The optimizer's per-parameter arrays, saved in checkpoints as PREFIX + param name.
OPTIMIZER_STATE = {"rmsprop": ("cache_",), "adam": ("m_", "v_")}


def checkpoint_arrays(config):
    """Every array a checkpoint holds: name -> (shape, dtype)."""
    expected = {}
    for name, shape in param_shapes(config).items():
        for prefix in ("", "grad_") + OPTIMIZER_STATE[config.optimizer]:
            expected[prefix + name] = (shape, config.dtype)
    return expected


def optimizer_step(kernels, config, param, grad, state, update_number):
    """One descent step on `param` in place; `state` maps an OPTIMIZER_STATE prefix to its array."""
    if config.optimizer == "adam":
        kernels.adam_step(param, grad, state["m_"], state["v_"], update_number, config.lr,
                          beta1=config.beta1, beta2=config.beta2)
    else:
        kernels.rmsprop_step(param, grad, state["cache_"], config.lr, config.decay, 1e-5)


def episode_gradient(kernels, x, h, logits, actions, rewards, w2, gamma):
    """Gradient of -sum_t A_t log pi(a_t | s_t) for one episode (descent direction).

    x (T, 6400) int8, h (T, H), logits (T,), actions (T,) 1 = up, rewards (T,).
    Returns are cut at every point (a nonzero reward ends a Pong "game").
    """
    returns = kernels.discounted_returns(rewards, gamma, dones=rewards != 0)
    advantages = kernels.standardize(returns)
    grad_logits = kernels.sigmoid_policy_grad(logits, actions, -advantages)
    return kernels.mlp_backward(x, h, grad_logits, w2)


class EpisodeBuffers:
    """Preallocated per-env storage of the episode in progress; grows by doubling."""

    def __init__(self, n_envs, hidden, dtype):
        self.length = np.zeros(n_envs, dtype=np.int64)
        self._allocate(n_envs, FIRST_BUFFER_STEPS, hidden, dtype)

    def _allocate(self, n_envs, steps, hidden, dtype):
        self.x = np.empty((n_envs, steps, INPUT_SIZE), dtype=np.int8)   # difference frames, ternary
        self.h = np.empty((n_envs, steps, hidden), dtype=dtype)
        self.logits = np.empty((n_envs, steps), dtype=dtype)
        self.actions = np.empty((n_envs, steps), dtype=np.uint8)       # 1 = up
        self.rewards = np.zeros((n_envs, steps), dtype=dtype)

    def grow_if_full(self, env_ids):
        steps = self.x.shape[1]
        if self.length[env_ids].max() < steps:
            return
        old = (self.x, self.h, self.logits, self.actions, self.rewards)
        self._allocate(self.x.shape[0], 2 * steps, self.h.shape[2], self.h.dtype)
        for new, previous in zip((self.x, self.h, self.logits, self.actions, self.rewards), old):
            new[:, :steps] = previous

    def episode(self, env):
        t = self.length[env]
        return self.x[env, :t], self.h[env, :t], self.logits[env, :t], self.actions[env, :t], self.rewards[env, :t]


def train(config, kernels, resume_meta=None, resume_arrays=None):
    """Runs until max_frames / max_episodes / Ctrl-C / SIGTERM; checkpoints; returns
    (counters, the name of the signal that stopped it or None)."""
    with StopRequest() as stop:
        return _train(config, kernels, resume_meta, resume_arrays, stop)


def _train(config, kernels, resume_meta, resume_arrays, stop):
    import pgcore

    # The emulator threads keep every core busy; a parallel kernel region would wait for a
    # core to come free (milliseconds), so the trainer's kernels run on the calling thread.
    pgcore.set_num_threads(1)
    dtype = np.dtype(config.dtype)
    run_dir = config.run_dir
    checkpoint_path = os.path.join(run_dir, runs.CHECKPOINT_NAME)

    # ---- state: parameters, optimizer, counters, random streams (all seeded here) ----
    seeds = np.random.SeedSequence(config.seed).spawn(3)  # params, actions, emulators
    if resume_meta is None:
        params = init_params(config, np.random.default_rng(seeds[0]))
        opt_state = {k: {prefix: np.zeros_like(v) for prefix in OPTIMIZER_STATE[config.optimizer]}
                     for k, v in params.items()}
        grads = {k: np.zeros_like(v) for k, v in params.items()}
        rng = np.random.default_rng(seeds[1])
        counters = {"episode": 0, "frames": 0, "steps": 0, "updates": 0, "skipped_updates": 0,
                    "episodes_in_batch": 0, "running_reward": None, "wall_s": 0.0, "segment": 0}
    else:
        params = {k: resume_arrays[k] for k in ("w1", "w2")}
        opt_state = {k: {prefix: resume_arrays[prefix + k] for prefix in OPTIMIZER_STATE[config.optimizer]}
                     for k in params}
        grads = {k: resume_arrays["grad_" + k] for k in params}
        rng = np.random.default_rng()
        rng.bit_generator.state = resume_meta["rng"]
        counters = dict(resume_meta["counters"])
        counters.setdefault("skipped_updates", 0)  # checkpoints from before the column existed
        counters["segment"] += 1
    w1, w2 = params["w1"], params["w2"]
    env_seed = int(seeds[2].generate_state(1)[0] % (2**31 - 1)) + 1000 * counters["segment"]

    progress = runs.ProgressLog(os.path.join(run_dir, "progress.csv"), extra_columns=["updates", "skipped_updates"],
                                keep_episodes=counters["episode"] if resume_meta else None)

    def save_checkpoint():
        arrays = {"w1": w1, "w2": w2, "grad_w1": grads["w1"], "grad_w2": grads["w2"]}
        arrays.update({prefix + k: state for k in params for prefix, state in opt_state[k].items()})
        meta = {"config": dataclasses.asdict(config), "counters": counters, "rng": rng.bit_generator.state,
                "format": "pgcore-pong-1"}
        runs.save_checkpoint(checkpoint_path, arrays, meta)

    def finish_episode(env):
        x, h, logits, actions, rewards = buffers.episode(env)
        grad_w1, grad_w2 = episode_gradient(kernels, x, h, logits, actions, rewards, w2, config.gamma)
        grads["w1"] += grad_w1
        grads["w2"] += grad_w2
        reward = float(rewards.sum())
        counters["running_reward"] = runs.running_mean(counters["running_reward"], reward)
        counters["episode"] += 1
        counters["episodes_in_batch"] += 1
        if counters["episodes_in_batch"] >= config.batch_episodes:
            if all(np.isfinite(grads[k]).all() for k in ("w1", "w2")):
                for k in ("w1", "w2"):
                    optimizer_step(kernels, config, params[k], grads[k], opt_state[k], counters["updates"] + 1)
                counters["updates"] += 1
            else:  # one bad batch must not poison the weights: drop it and go on
                counters["skipped_updates"] += 1
                warnings.warn(f"episode {counters['episode']}: the batch gradient is not finite; "
                              "the update is skipped", RuntimeWarning, stacklevel=2)
            for k in ("w1", "w2"):
                grads[k][...] = 0
            counters["episodes_in_batch"] = 0
        wall = counters["wall_s"] + time.perf_counter() - segment_start
        progress.append([counters["episode"], counters["frames"], counters["steps"], reward,
                         round(counters["running_reward"], 6), round(wall, 3),
                         round(counters["steps"] / max(wall, 1e-9), 1), counters["updates"],
                         counters["skipped_updates"]])
        buffers.length[env] = 0
        if config.checkpoint_every and counters["episode"] % config.checkpoint_every == 0:
            counters["wall_s"] = wall
            save_checkpoint()
            reset_segment_clock()

    def reset_segment_clock():
        nonlocal segment_start
        segment_start = time.perf_counter()

    def limits_reached():
        return ((config.max_frames and counters["frames"] >= config.max_frames)
                or (config.max_episodes and counters["episode"] >= config.max_episodes))

    # ---- emulators and episode buffers ----
    envs = make_envs(config)  # seeded by its reset below
    buffers = EpisodeBuffers(config.envs, config.hidden, dtype)
    previous_frame = np.zeros((config.envs, INPUT_SIZE), dtype=np.uint8)  # preprocessed, 0/1
    fresh = np.ones(config.envs, dtype=bool)             # next frame starts an episode: no motion yet
    last_frame_number = np.zeros(config.envs, dtype=np.int64)

    segment_start = time.perf_counter()
    bar = runs.progress_bar(config, counters["episode"])
    try:
        observations, info = envs.reset(seed=env_seed)
        while not limits_reached() and stop.signal_name is None:
            env_ids = info["env_id"]                                   # (B,)
            # (B, 6400) int8 in {-1, 0, 1}: this frame minus the env's previous one
            x = kernels.pong_difference(observations[:, 0], previous_frame, env_ids, fresh[env_ids])
            fresh[env_ids] = False

            h, logits = kernels.mlp_forward(x, w1, w2)                 # (B, H), (B,)
            up = rng.random(len(env_ids)) < 1 / (1 + np.exp(-logits))
            buffers.grow_if_full(env_ids)
            t = buffers.length[env_ids]
            buffers.x[env_ids, t] = x
            buffers.h[env_ids, t] = h
            buffers.logits[env_ids, t] = logits
            buffers.actions[env_ids, t] = up
            buffers.length[env_ids] += 1
            counters["steps"] += len(env_ids)
            envs.send(np.where(up, UP, DOWN).astype(np.int32))

            observations, rewards, terminated, truncated, info = envs.recv()
            env_ids = info["env_id"]
            stepped = buffers.length[env_ids] > 0      # not an initial reset observation
            buffers.rewards[env_ids[stepped], buffers.length[env_ids[stepped]] - 1] = rewards[stepped]
            frame_number = info["frame_number"]
            counters["frames"] += int((frame_number - last_frame_number[env_ids]).sum())
            last_frame_number[env_ids] = frame_number
            for env in env_ids[(terminated | truncated) & stepped]:
                finish_episode(env)
                fresh[env] = True
                bar.update(1)
                bar.set_postfix(running=f"{counters['running_reward']:.2f}",
                                fps=f"{counters['frames'] / max(1e-9, counters['wall_s'] + time.perf_counter() - segment_start):,.0f}",
                                refresh=False)
    finally:
        bar.close()
        envs.close()
    # Reached only when the loop ended cleanly (limits or a signal between steps): an error
    # propagates without saving, leaving the last good checkpoint in place.
    counters["wall_s"] += time.perf_counter() - segment_start
    reset_segment_clock()
    save_checkpoint()
    progress.close()
    return counters, stop.signal_name
