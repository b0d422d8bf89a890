"""REINFORCE on Atari Pong from pixels: the "Pong from pixels" network and update, batched.

One loop, top to bottom. N emulators run on ale-py's C++ threads; while one half
of them emulates, Python handles the other half (asynchronous send/recv), so the
cores stay busy emulating. Each step, one compiled call (pong_step) does, for the B
environments that came back:

  frames (B, 210, 160, 3) uint8 -> preprocess, minus each env's previous frame -> the
  ~26 nonzero pixels of each difference frame (indices and signs) -> appended to each
  env's episode (SparseEpisodes) -> h = relu of the sum of the ~26 signed rows of w1 they
  select -> logit -> up if the caller's uniform < sigmoid(logit) -> the ALE actions

When an environment's episode ends, its returns (cut at every point), standardized
advantages and gradient are computed at once (sigmoid_policy_grad + sparse_mlp_backward,
which recomputes h from the sparse inputs) and added in place to the batch gradient;
RMSProp applies it every `batch_episodes` episodes. The kernels come in as a module
(`pgcore.kernels` or `pgcore.reference`), so both backends run exactly this code.
"""
import dataclasses
from dataclasses import dataclass, field

import numpy as np

from pgcore import runs
from pgcore._threads import _default_threads

UP, DOWN = 2, 3  # Pong's minimal action set: RIGHT moves the paddle up, LEFT down
INPUT_SIZE = 80 * 80
FIRST_BUFFER_STEPS = 2048  # per env; doubled when an episode runs longer
FIRST_INDEX_CAPACITY = FIRST_BUFFER_STEPS * 64  # nonzero pixels per env (~26 a step); doubled when full


@dataclass
class PongConfig:
    task: str = "pong"
    seed: int = 0
    envs: int = 16                 # parallel emulators
    threads: int = field(default_factory=_default_threads)  # emulator threads (default: every core)
    sync: bool = False             # step all envs together: slower, but bitwise reproducible
    frameskip: int = 4
    sticky: float = 0.25           # repeat_action_probability
    hidden: int = 200
    optimizer: str = "rmsprop"     # or "adam"
    lr: float = 1e-3               # the classic recipe's 1e-4 is preset "classic"
    decay: float = 0.99            # RMSProp
    beta1: float = 0.9             # Adam
    beta2: float = 0.999           # Adam
    gamma: float = 0.99
    batch_episodes: int = 10       # episodes per parameter update
    dtype: str = "float32"
    backend: str = "cython"
    max_frames: int = 0            # 0: no limit
    max_episodes: int = 0          # 0: no limit
    checkpoint_every: int = 50     # episodes (0: only by time and at the end)
    checkpoint_minutes: float = 5.0  # wall time between checkpoints (0: only by episodes and at the end)
    run_dir: str = ""
    quiet: bool = False


# What each preset sets over PongConfig's defaults (settings given explicitly win).
PRESETS = {
    "fast": {},                # PongConfig's defaults, lr 1e-3: measured best here, see docs/results/pong
    "classic": {"lr": 1e-4},   # the original "Pong from pixels" settings
}
FORMAT = "pgcore-pong-1"
RUNNING_REWARD_BOUNDS = (-21, 21)  # a Pong game scores -21..21
COUNTER_TYPES = runs.COUNTER_TYPES | {"episodes_in_batch": int}


def make_config(preset=None, **settings):
    """PongConfig from a preset (default "fast") and settings, which win over the preset."""
    if preset is not None and preset not in PRESETS:
        raise runs.SettingError("preset", f"preset must be one of {', '.join(PRESETS)}, not {preset!r}")
    return PongConfig(**PRESETS[preset or "fast"] | settings)


def config_from_saved(saved):
    """The PongConfig a checkpoint recorded (older ones had no optimizer choice, task or time cadence)."""
    return PongConfig(**{"optimizer": "rmsprop", "threads": 2} | saved)


def check_config(config):
    """Raises SettingError (a ValueError) naming the first setting out of range."""
    runs.check_choice(config, "task", ("pong",))
    runs.check_common(config)
    runs.check_whole_numbers(config, ("envs", "frameskip", "hidden"), 1)
    runs.check_numbers(config, {"decay": (0.0, 1.0, False), "beta1": (0.0, 0.999999, False),
                                "beta2": (0.0, 0.999999, False), "sticky": (0.0, 1.0, False)})
    runs.check_choice(config, "optimizer", tuple(OPTIMIZER_STATE))
    if not isinstance(config.sync, bool):
        raise runs.SettingError("sync", f"sync must be True or False, not {config.sync!r}")
    needed = memory_bytes(config)
    # name the setting that made the run too big: hidden, unless the default width needs about as much
    culprit = "envs" if 2 * memory_bytes(dataclasses.replace(config, hidden=200)) > needed else "hidden"
    runs.check_memory(culprit, getattr(config, culprit), needed)


def memory_bytes(config):
    """Bytes a run holds: parameters with their gradient and optimizer state, and the episode
    store (SparseEpisodes: per step an offset, logit, action and reward, ~64 pixel entries)."""
    itemsize = np.dtype(config.dtype).itemsize
    params = (INPUT_SIZE + 1) * config.hidden * itemsize * (2 + len(OPTIMIZER_STATE[config.optimizer]))
    per_env = FIRST_BUFFER_STEPS * (8 + 2 * itemsize + 1) + FIRST_INDEX_CAPACITY * 3
    return params + config.envs * per_env


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


def initial_params(config):
    """The parameters a new run starts from (seeded by config.seed)."""
    return init_params(config, np.random.default_rng(runs.seed_streams(config.seed)[0]))


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


def new_state(config):
    """A new run's arrays: the parameters (seeded), a zero batch gradient and optimizer state."""
    params = initial_params(config)
    return params | {prefix + k: np.zeros_like(v) for k, v in params.items()
                     for prefix in ("grad_",) + OPTIMIZER_STATE[config.optimizer]}


def optimizer_step(kernels, config, state, name, update_number):
    """One descent step on state[name] in place along the batch gradient state["grad_" + name]."""
    param, grad = state[name], state["grad_" + name]
    if config.optimizer == "adam":
        kernels.adam_step(param, grad, state["m_" + name], state["v_" + name], update_number, config.lr,
                          beta1=config.beta1, beta2=config.beta2)
    else:
        kernels.rmsprop_step(param, grad, state["cache_" + name], config.lr, config.decay, 1e-5)


def add_episode_gradient(kernels, episode, w1, w2, gamma, grad_w1, grad_w2):
    """Adds one episode's gradient of -sum_t A_t log pi(a_t | s_t) (the descent direction) to
    grad_w1, grad_w2 in place. `episode` is SparseEpisodes.episode's (starts, indices, signs,
    logits, actions, rewards). Returns are cut at every point (a nonzero reward ends a Pong
    "game"), then standardized over the episode."""
    starts, indices, signs, logits, actions, rewards = episode
    returns = kernels.discounted_returns(rewards, gamma, dones=rewards != 0)
    advantages = kernels.standardize(returns)
    grad_logits = kernels.sigmoid_policy_grad(logits, actions, -advantages)
    kernels.sparse_mlp_backward(starts, indices, signs, grad_logits, w1, w2, grad_w1, grad_w2)


class SparseEpisodes:
    """Per-env storage of the episodes in progress, inputs kept sparse (what pong_step writes).

    Step t of env e: its difference frame's nonzero pixels indices[e, starts[e, t]:starts[e, t + 1]]
    (int16) with signs (int8, +1/-1), logits[e, t], actions[e, t] (1 = up), rewards[e, t];
    lengths[e] steps so far. A step takes ~26 pixels, ~80 bytes. Grows by doubling.
    """

    def __init__(self, n_envs, dtype, steps=FIRST_BUFFER_STEPS, capacity=FIRST_INDEX_CAPACITY):
        self.lengths = np.zeros(n_envs, dtype=np.int64)
        self.starts = np.zeros((n_envs, steps + 1), dtype=np.int64)
        self.indices = np.empty((n_envs, max(capacity, INPUT_SIZE)), dtype=np.int16)
        self.signs = np.empty_like(self.indices, dtype=np.int8)
        self.logits = np.empty((n_envs, steps), dtype=dtype)
        self.actions = np.empty((n_envs, steps), dtype=np.uint8)
        self.rewards = np.zeros((n_envs, steps), dtype=dtype)

    def make_room(self, env_ids):
        """Room for one more step of each of env_ids: a free step and INPUT_SIZE free indices
        (a frame whose every pixel changed)."""
        t = self.lengths[env_ids]
        steps, capacity = self.logits.shape[1], self.indices.shape[1]
        if max(t.tolist()) >= steps:  # (builtins: ndarray.max costs microseconds on a few elements)
            self.starts = _widened(self.starts, 2 * steps + 1)
            self.logits, self.actions, self.rewards = (_widened(a, 2 * steps)
                                                       for a in (self.logits, self.actions, self.rewards))
        if max(self.starts[env_ids, t].tolist()) > capacity - INPUT_SIZE:
            self.indices, self.signs = _widened(self.indices, 2 * capacity), _widened(self.signs, 2 * capacity)

    def episode(self, env):
        """(starts (T + 1,), indices, signs, logits (T,), actions (T,), rewards (T,)) of env's episode."""
        t = self.lengths[env]
        return (self.starts[env, :t + 1], self.indices[env], self.signs[env], self.logits[env, :t],
                self.actions[env, :t], self.rewards[env, :t])



def _widened(array, columns):
    """A copy of the 2-d `array` with `columns` columns (the new ones zero)."""
    wider = np.zeros((array.shape[0], columns), dtype=array.dtype)
    wider[:, :array.shape[1]] = array
    return wider


def train(config, kernels, resume_meta=None, resume_arrays=None):
    """Runs until max_frames / max_episodes / Ctrl-C / SIGTERM; checkpoints; returns
    (counters, the name of the signal that stopped it or None)."""
    # The emulator threads keep every core busy; a parallel kernel region would wait for a
    # core to come free (milliseconds), so the trainer's kernels run on the calling thread.
    with runs.Run(config, FORMAT, kernel_threads=1, resume_meta=resume_meta, resume_arrays=resume_arrays,
                  extra_counters={"episodes_in_batch": 0}, extra_columns=["skipped_updates"]) as run:
        _train(config, kernels, run)
    return run.counters, run.stopped_by


def _train(config, kernels, run):
    dtype = np.dtype(config.dtype)
    counters, rng = run.counters, run.rng

    state = run.restore(lambda: new_state(config))  # parameters, batch gradient, optimizer state
    w1, w2 = state["w1"], state["w2"]
    env_seed = int(run.seeds[2].generate_state(1)[0] % (2**31 - 1)) + 1000 * counters["segment"]

    def finish_episode(env):
        add_episode_gradient(kernels, episodes.episode(env), w1, w2, config.gamma, state["grad_w1"], state["grad_w2"])
        counters["episodes_in_batch"] += 1
        if counters["episodes_in_batch"] >= config.batch_episodes:
            def step():
                for name in ("w1", "w2"):
                    optimizer_step(kernels, config, state, name, counters["updates"] + 1)
            run.apply_update((state["grad_w1"], state["grad_w2"]), step)
            state["grad_w1"][...] = 0
            state["grad_w2"][...] = 0
            counters["episodes_in_batch"] = 0
        run.finish_episode(float(episodes.rewards[env, :episodes.lengths[env]].sum()),
                           extra=[counters["skipped_updates"]])
        episodes.lengths[env] = 0
        run.maybe_checkpoint()

    # ---- emulators and episodes ----
    envs = make_envs(config)  # seeded by its reset below
    episodes = SparseEpisodes(config.envs, dtype)
    previous_frame = np.zeros((config.envs, INPUT_SIZE), dtype=np.uint8)  # preprocessed, 0/1
    fresh = np.ones(config.envs, dtype=bool)             # next frame starts an episode: no motion yet
    last_frame_number = np.zeros(config.envs, dtype=np.int64)
    try:
        observations, info = envs.reset(seed=env_seed)
        while run.running():
            env_ids = info["env_id"]                                   # (B,)
            episodes.make_room(env_ids)
            # difference frames -> sparse rows -> logits -> sampled actions, stored in the episodes
            actions = kernels.pong_step(observations[:, 0], previous_frame, env_ids, fresh[env_ids], w1, w2,
                                        rng.random(len(env_ids)), episodes)
            fresh[env_ids] = False
            counters["steps"] += len(env_ids)
            envs.send(actions)

            observations, rewards, terminated, truncated, info = envs.recv()
            env_ids = info["env_id"]
            stepped = episodes.lengths[env_ids] > 0      # not an initial reset observation
            episodes.rewards[env_ids[stepped], episodes.lengths[env_ids[stepped]] - 1] = rewards[stepped]
            frame_number = info["frame_number"]
            counters["frames"] += int((frame_number - last_frame_number[env_ids]).sum())
            last_frame_number[env_ids] = frame_number
            for env in env_ids[(terminated | truncated) & stepped]:
                finish_episode(env)
                fresh[env] = True
    finally:
        envs.close()


class Player:
    """Plays Pong from raw frames with fixed parameters, keeping each game's previous frame
    as the trainer does (the policy sees this frame minus the previous one)."""

    def __init__(self, kernels, w1, w2, rng):
        self.kernels, self.w1, self.w2, self.rng = kernels, w1, w2, rng
        self.previous = np.zeros((0, INPUT_SIZE), dtype=np.uint8)  # (N, 6400) preprocessed, 0/1

    def act(self, frames, new_game=None, greedy=True):
        """frames (N, 210, 160, 3) uint8 -> actions (N,) int (UP or DOWN). `new_game` (N,) bool
        marks the games whose frame is their first (default: all, when N changed, else none)."""
        n = len(frames)
        if len(self.previous) != n:
            self.previous = np.zeros((n, INPUT_SIZE), dtype=np.uint8)
            new_game = np.ones(n, dtype=bool)
        elif new_game is None:
            new_game = np.zeros(n, dtype=bool)
        x = self.kernels.pong_difference(frames, self.previous, np.arange(n), np.asarray(new_game, dtype=bool))
        _, logits = self.kernels.mlp_forward(x, self.w1, self.w2)
        p_up = 1 / (1 + np.exp(-logits.astype(np.float64)))
        up = p_up > 0.5 if greedy else self.rng.random(n) < p_up
        return np.where(up, UP, DOWN)


def evaluate(config, params, episodes, seed, greedy=True, kernels=None, on_game=None, frames=None):
    """Scores of `episodes` games against the built-in AI on fresh emulators (seeds seed, seed + 1, ...).
    `on_game(game, score)` is called after each game; `frames`, a list, collects the first game's frames."""
    import ale_py
    import gymnasium

    if kernels is None:
        from pgcore import kernels
    gymnasium.register_envs(ale_py)
    env = gymnasium.make("ALE/Pong-v5", frameskip=config.frameskip, repeat_action_probability=config.sticky)
    player = Player(kernels, params["w1"], params["w2"], np.random.default_rng(seed))
    scores = []
    try:
        for game in range(episodes):
            frame, _ = env.reset(seed=seed + game)
            score, done, first = 0.0, False, True
            while not done:
                action = player.act(frame[None], np.array([first]), greedy)[0]
                first = False
                frame, reward, terminated, truncated, _ = env.step(action)
                score += reward
                done = terminated or truncated
                if frames is not None and game == 0:
                    frames.append(frame)
            scores.append(score)
            if on_game is not None:
                on_game(game, score)
    finally:
        env.close()
    return np.array(scores)
