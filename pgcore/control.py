"""REINFORCE on gymnasium's small tasks: the three other policy families of the derivations.

  tabular softmax   pi(a|s) = softmax(w[s] / tau)          frozenlake, taxi, cliffwalking
  softmax MLP       pi(a|s) = softmax(relu(s @ w1) @ w2)   cartpole, acrobot
  linear Gaussian   a ~ N(s @ theta, sigma^2)              inverted-pendulum

One loop for all, top to bottom. Each update plays a batch of `batch_episodes`
copies of the environment (gymnasium's SyncVectorEnv), every copy exactly one
whole episode with the current parameters, so the batch is on-policy and long
episodes are not under-represented; a copy that has finished idles (its steps are
not recorded) until the others finish, and the next batch starts from a reset.
Row t of the batch's (T, N) arrays is then step t of every episode, which gives
the time-indexed baseline below for free. A run ends at `max_episodes` exactly: when
fewer episodes are left than a batch holds, the last batch records and learns from
only that many (its other copies idle from the start).

  observations -> policy forward (one call for the N copies) -> sample -> step
  at the batch's end: discounted_returns over (T, N) with dones
    -> advantages (standardized; or minus a running per-step baseline, scaled)
    -> softmax_policy_grad / gaussian_policy_grad (+ mlp_backward) -> adam_step

The MLP and Gaussian inputs get a constant 1 appended, so their first layer has a
bias. Temperature (tau) and sigma may anneal from their start to their final value
over `max_episodes`: exponentially (geometric) by default, or linearly.

The softmax policies may add an entropy bonus to the objective, `entropy` times the
sum over the batch's steps of H(pi(.|s_t)), annealed like tau. It keeps every state's
policy from saturating while the returns are still noisy: on cliffwalking a policy
without it learns early, while it still steps at random, that the cliff's edge is
dangerous, leaves it, and never comes back to learn that the edge is the short way
(-17 instead of -13); with the bonus falling from 0.5 to 5e-4 it finds the edge.
"""
import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from pgcore import runs, settings
from pgcore.task import Task, episode_starts, no_state

RunConfig, setting, override = settings.RunConfig, settings.setting, settings.override


@dataclass(frozen=True)
class TaskSpec:
    env_id: str
    family: str            # "tabular", "mlp" or "gaussian"
    description: str
    lr: float
    batch_episodes: int
    max_episodes: int      # the default budget, which is also the anneal horizon
    observations: object   # states (tabular) or the observation's length; {map: states} where --map sets it
    actions: int           # discrete actions, or the Gaussian's action dimensions
    action_bound: float = 0.0  # Gaussian: actions are clipped to [-action_bound, action_bound]
    gamma: float = 0.99
    tau: float = 1.0
    tau_final: float = 1.0
    sigma: float = 1.0
    sigma_final: float = 1.0
    hidden: int = 0
    baseline: bool = False
    entropy: float = 0.0
    entropy_final: float = 0.0
    max_episode_steps: int = 0  # a step limit where gymnasium sets none (0: gymnasium's own)


# The sizes (observations, actions, action_bound) are the environments' spaces, written here so that a
# policy loads and plays without making its environment (MuJoCo's need not be installed to play one);
# tests/test_control.py checks them against the environments.
TASKS = {
    "frozenlake": TaskSpec("FrozenLake-v1", "tabular", "tabular softmax on FrozenLake (4x4 slippery; --map 8x8, --no-slip)",
                           lr=0.05, batch_episodes=64, max_episodes=40_000, observations={"4x4": 16, "8x8": 64},
                           actions=4, tau=1.0, tau_final=0.3),
    "taxi": TaskSpec("Taxi-v4", "tabular", "tabular softmax on Taxi",
                     lr=0.02, batch_episodes=32, max_episodes=40_000, observations=500, actions=6, tau=1.0,
                     tau_final=0.05, baseline=True),
    "cliffwalking": TaskSpec("CliffWalking-v1", "tabular", "tabular softmax on CliffWalking",
                             lr=0.1, batch_episodes=4, max_episodes=10_000, observations=48, actions=4, tau=1.0,
                             tau_final=0.05, entropy=0.5, entropy_final=5e-4, max_episode_steps=2_000),
    "cartpole": TaskSpec("CartPole-v1", "mlp", "softmax MLP on CartPole",
                         lr=0.01, batch_episodes=16, max_episodes=1_500, observations=4, actions=2, hidden=32),
    "acrobot": TaskSpec("Acrobot-v1", "mlp", "softmax MLP on Acrobot",
                        lr=0.01, batch_episodes=8, max_episodes=600, observations=6, actions=3, hidden=32),
    "inverted-pendulum": TaskSpec("InvertedPendulum-v5", "gaussian", "linear Gaussian on MuJoCo's InvertedPendulum",
                                  lr=0.05, batch_episodes=8, max_episodes=1_000, observations=4, actions=1,
                                  action_bound=3.0, sigma=1.0, sigma_final=0.3, baseline=True),
}
RECIPE = ("lr", "gamma", "batch_episodes", "hidden", "tau", "tau_final", "sigma", "sigma_final", "entropy",
          "entropy_final", "max_episodes", "baseline")  # the settings whose defaults a TaskSpec gives


@dataclass
class ControlConfig(RunConfig):
    """Every setting of a run of the other tasks; each task's TaskSpec gives its own defaults of
    RECIPE (ControlTask.defaults), the fields' defaults are what older checkpoints lack."""
    task: str = override(RunConfig, "task", default="cartpole")
    max_frames: int = override(RunConfig, "max_frames", help="stop after N environment steps (0: no limit)")
    max_episodes: int = override(RunConfig, "max_episodes", default=2000,  # each task's: the anneal horizon too
                                 help="stop after exactly N episodes, the last batch playing only the episodes "
                                      "left (0: no limit)")
    threads: int = override(RunConfig, "threads", help="kernel threads (a batch's arrays are small: the kernels' "
                                                       "serial paths)")
    hidden: int = setting(0, minimum=1, metavar="N", applies_to=("mlp",), help="the MLP's hidden units")
    tau: float = setting(1.0, bounds=(0.0, math.inf, True), metavar="X", applies_to=("tabular",),
                         help="softmax temperature at the start, > 0")
    tau_final: float = setting(1.0, bounds=(0.0, math.inf, True), metavar="X", applies_to=("tabular",),
                               help="softmax temperature reached at --max-episodes, > 0")
    sigma: float = setting(1.0, bounds=(0.0, math.inf, True), metavar="X", applies_to=("gaussian",),
                           help="action noise (the Gaussian's standard deviation) at the start, > 0")
    sigma_final: float = setting(1.0, bounds=(0.0, math.inf, True), metavar="X", applies_to=("gaussian",),
                                 help="action noise reached at --max-episodes, > 0")
    entropy: float = setting(0.0, bounds=(0.0, math.inf, False), metavar="X", applies_to=("tabular", "mlp"),
                             help="entropy bonus at the start, >= 0, added to the objective per step; an "
                                  "exponential anneal needs it and --entropy-final both above 0 or both 0")
    entropy_final: float = setting(0.0, bounds=(0.0, math.inf, False), metavar="X", applies_to=("tabular", "mlp"),
                                   help="entropy bonus reached at --max-episodes, >= 0")
    anneal: str = setting("exponential", choices=("exponential", "linear"),
                          help="how tau, sigma and entropy move from start to final over --max-episodes (each "
                               "task's episode budget by default): start * (final/start)**(episode/max_episodes) "
                               "(exponential) or linearly; anything that anneals needs --max-episodes above 0")
    baseline: bool = setting(False, switch="both",
                             help="advantages from a running mean of the return at each step index (a per-step "
                                  "baseline, saved in the checkpoint) instead of the batch mean")
    map: str = setting("4x4", choices=("4x4", "8x8"), applies_to=("frozenlake",), help="the FrozenLake map")
    slip: bool = setting(True, switch="off", flag="--no-slip", applies_to=("frozenlake",),
                         help="FrozenLake without its slippery ice (the flag sets slip False)")


FORMAT = "pgcore-control-1"
COUNTER_TYPES = runs.COUNTER_TYPES
COUNTERS_ADDED_LATER = {}
RUNNING_REWARD_BOUNDS = (-math.inf, math.inf)


def default_config(task, **overrides):
    """The task's tuned defaults, then any overrides (None values are ignored)."""
    if task not in TASKS:
        raise runs.SettingError("task", f"unknown task {task!r}; known tasks: {', '.join(TASKS)}")
    return ControlTask(task).make_config(**{k: v for k, v in overrides.items() if v is not None})


def config_from_saved(saved):
    """The ControlConfig a checkpoint recorded (fields added since keep their defaults)."""
    return ControlConfig(**saved)


def check_config(config):
    """Raises SettingError (a ValueError) naming the first setting out of range."""
    runs.check_choice(config, "task", tuple(TASKS))
    ControlTask(config.task).check_config(config)


def check_more(config):
    """The checks that span settings, after each setting's own bounds (ControlTask.check_config)."""
    if (config.entropy or config.entropy_final) and TASKS[config.task].family == "gaussian":
        raise runs.SettingError("entropy", f"entropy applies to the softmax policies, not to {config.task}'s "
                                           "Gaussian one")
    if config.anneal == "exponential" and (config.entropy == 0) != (config.entropy_final == 0):
        raise runs.SettingError("entropy", "an exponential anneal cannot reach or leave 0: give entropy and "
                                           "entropy_final both above 0 (or anneal linearly), not "
                                           f"{config.entropy!r} and {config.entropy_final!r}")
    annealing = (config.tau != config.tau_final or config.sigma != config.sigma_final
                 or config.entropy != config.entropy_final)
    if annealing and config.max_episodes == 0:
        raise runs.SettingError("max_episodes", "tau, sigma or entropy anneals over max_episodes, so max_episodes "
                                                "must be above 0")


def annealed(start, final, episode, config):
    """The value of tau or sigma for a batch starting after `episode` episodes."""
    if start == final:
        return start
    fraction = min(1.0, episode / config.max_episodes)
    if config.anneal == "linear":
        return start + (final - start) * fraction
    return start * (final / start) ** fraction


def make_env(config, render_mode=None):
    import gymnasium

    spec = TASKS[config.task]
    kwargs = {"render_mode": render_mode} if render_mode else {}
    if config.task == "frozenlake":
        kwargs.update(map_name=config.map, is_slippery=config.slip)
    if spec.max_episode_steps:  # CliffWalking has no limit: a policy that walks into a wall would never end
        kwargs.update(max_episode_steps=spec.max_episode_steps)
    return gymnasium.make(spec.env_id, **kwargs)


def make_envs(config):
    import gymnasium

    return gymnasium.vector.SyncVectorEnv([lambda: make_env(config)] * config.batch_episodes,
                                          autoreset_mode=gymnasium.vector.AutoresetMode.SAME_STEP)


# ---- the three policy families: parameters, acting, and the log-likelihood gradient ----

def with_bias(observations, dtype):
    """(N, D) -> (N, D + 1) with a constant 1 column."""
    observations = np.asarray(observations, dtype=dtype).reshape(len(observations), -1)
    return np.hstack([observations, np.ones((len(observations), 1), dtype)])


def vector_observations(observation, size, dtype):
    """(single, (N, size + 1) inputs) of one (size,) observation or a batch (N, size); raises
    ValueError for another shape or a non-finite value."""
    try:
        observations = np.asarray(observation, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"observation must be numbers, not {type(observation).__name__}") from None
    single = observations.ndim == 1
    observations = observations[None] if single else observations
    if observations.ndim != 2 or observations.shape[1] != size:
        raise ValueError(f"observation must have shape ({size},) or (N, {size}), not {np.shape(observation)}")
    if not np.all(np.isfinite(observations)):
        raise ValueError("observation holds non-finite values")
    return single, with_bias(observations, dtype)


class Tabular:
    """w (S, A): one row of logits per state."""

    param_names = ("w",)

    def __init__(self, kernels, observation_space, action_space):
        self.kernels, self.states, self.actions = kernels, observation_space.n, action_space.n

    def init_params(self, rng, dtype):
        return {"w": np.zeros((self.states, self.actions), dtype)}

    def inputs(self, observations, dtype):
        return np.asarray(observations, dtype=np.int64)

    def check_observations(self, observation, dtype):
        """(single, (N,) states) of one state or a batch; raises ValueError for a non-state."""
        states = np.asarray(observation)
        if states.dtype.kind not in "iu" or states.ndim > 1 or np.any(states < 0) or np.any(states >= self.states):
            raise ValueError(f"observation must be a state in [0, {self.states}) or a 1-d array of them, "
                             f"not {observation!r}")
        return states.ndim == 0, states.reshape(-1).astype(np.int64)

    def act(self, params, states, rng, temperature, greedy=False):
        logits = params["w"][states]
        if greedy:
            return greedy_actions(logits, rng)
        return sample_categorical(self.kernels.softmax(logits, temperature), rng)

    def objective_grad(self, params, states, actions, weights, temperature, entropy=0.0):
        """d/dw of sum_i weights[i] * log pi(actions[i] | states[i]) + entropy * H(pi(. | states[i]))."""
        grad_logits = self.kernels.softmax_policy_grad(params["w"][states], actions, weights, temperature, entropy)
        grad_w = np.zeros_like(params["w"])
        np.add.at(grad_w, states, grad_logits)
        return {"w": grad_w}


class SoftmaxMLP:
    """w1 (D + 1, H), w2 (H, A): relu hidden layer with a bias input, softmax over actions."""

    param_names = ("w1", "w2")

    def __init__(self, kernels, observation_space, action_space, hidden):
        self.kernels = kernels
        self.inputs_size, self.hidden, self.actions = observation_space.shape[0] + 1, hidden, action_space.n

    def init_params(self, rng, dtype):
        return {"w1": (rng.standard_normal((self.inputs_size, self.hidden)) / np.sqrt(self.inputs_size)).astype(dtype),
                "w2": (rng.standard_normal((self.hidden, self.actions)) / np.sqrt(self.hidden) * 0.01).astype(dtype)}

    def inputs(self, observations, dtype):
        return with_bias(observations, dtype)

    def check_observations(self, observation, dtype):
        return vector_observations(observation, self.inputs_size - 1, dtype)

    def act(self, params, x, rng, temperature, greedy=False):
        _, logits = self.kernels.mlp_forward(x, params["w1"], params["w2"])
        if greedy:
            return greedy_actions(logits, rng)
        return sample_categorical(self.kernels.softmax(logits), rng)

    def objective_grad(self, params, x, actions, weights, temperature, entropy=0.0):
        h, logits = self.kernels.mlp_forward(x, params["w1"], params["w2"])
        grad_logits = self.kernels.softmax_policy_grad(logits, actions, weights, 1.0, entropy)
        grad_w1, grad_w2 = self.kernels.mlp_backward(x, h, grad_logits, params["w2"])
        return {"w1": grad_w1, "w2": grad_w2}


class LinearGaussian:
    """theta (D + 1, K): the mean action is a linear function of the state (with a bias);
    the sampled action (before clipping to the action space) enters the gradient."""

    param_names = ("theta",)

    def __init__(self, kernels, observation_space, action_space):
        self.kernels = kernels
        self.inputs_size, self.action_size = observation_space.shape[0] + 1, action_space.shape[0]
        self.low, self.high = action_space.low, action_space.high

    def init_params(self, rng, dtype):
        return {"theta": np.zeros((self.inputs_size, self.action_size), dtype)}

    def inputs(self, observations, dtype):
        return with_bias(observations, dtype)

    def check_observations(self, observation, dtype):
        return vector_observations(observation, self.inputs_size - 1, dtype)

    def act(self, params, x, rng, sigma, greedy=False):
        mean = x @ params["theta"]
        return mean if greedy else mean + sigma * rng.standard_normal(mean.shape).astype(mean.dtype)

    def env_action(self, actions):
        return np.clip(actions, self.low, self.high)

    def objective_grad(self, params, x, actions, weights, sigma, entropy=0.0):  # entropy: refused by check_config
        return {"theta": self.kernels.gaussian_policy_grad(params["theta"], x, actions, weights, sigma)}


def greedy_actions(logits, rng):
    """The most probable action of each row, ties broken at random: a state the training never
    reached (all logits 0) must not always pick action 0, which walks into a wall forever."""
    best = logits == logits.max(axis=1, keepdims=True)
    return sample_categorical(best / best.sum(axis=1, keepdims=True), rng)


def sample_categorical(probabilities, rng):
    """One action per row of (N, A) probabilities, by inverting the cumulative sum."""
    cumulative = np.cumsum(probabilities, axis=1)
    u = rng.random((len(probabilities), 1)) * cumulative[:, -1:]
    return np.minimum((cumulative <= u).sum(axis=1), probabilities.shape[1] - 1)


class Space(NamedTuple):
    """What the policies read of a gymnasium space, known without making the environment: `n`
    (a Discrete space's size), or `shape`, `low` and `high` (a Box's)."""
    n: int = 0
    shape: tuple = ()
    low: object = None
    high: object = None


def spaces(config):
    """(observation space, action space) of the task, from its TaskSpec (no environment made)."""
    spec = TASKS[config.task]
    size = spec.observations[config.map] if isinstance(spec.observations, dict) else spec.observations
    observation = Space(n=size) if spec.family == "tabular" else Space(shape=(size,))
    if spec.family != "gaussian":
        return observation, Space(n=spec.actions)
    bound = np.full(spec.actions, spec.action_bound, dtype=np.float32)  # gymnasium's Box bounds are float32
    return observation, Space(shape=(spec.actions,), low=-bound, high=bound)


def make_policy(config, kernels, env=None):
    """The task's policy over the spaces of `spaces(config)` (or of `env`, when given)."""
    family = TASKS[config.task].family
    observation_space, action_space = spaces(config) if env is None else (env.observation_space, env.action_space)
    if family == "tabular":
        return Tabular(kernels, observation_space, action_space)
    if family == "mlp":
        return SoftmaxMLP(kernels, observation_space, action_space, config.hidden)
    return LinearGaussian(kernels, observation_space, action_space)


def temperature_name(config):
    """The annealed quantity of a task, logged in progress.csv ('' for the MLP tasks)."""
    return {"tabular": "tau", "gaussian": "sigma"}.get(TASKS[config.task].family, "")


def temperature_at(config, episode):
    if temperature_name(config) == "sigma":
        return annealed(config.sigma, config.sigma_final, episode, config)
    return annealed(config.tau, config.tau_final, episode, config)


make_policy_for = make_policy  # (config, kernels): the name agent.py called before the sizes were static


def initial_params(config, policy=None):
    """The parameters a new run starts from (seeded by config.seed)."""
    policy = policy or make_policy(config, None)
    return policy.init_params(np.random.default_rng(runs.seed_streams(config.seed)[0]), np.dtype(config.dtype))


def new_state(config, policy):
    """A new run's arrays: the parameters (seeded), zero Adam moments, an empty baseline."""
    params = initial_params(config, policy)
    return params | {prefix + k: np.zeros_like(v) for k, v in params.items() for prefix in ("m_", "v_")} \
        | {"baseline": np.zeros(0, config.dtype)}


def param_shapes(config):
    """name -> shape of the policy's parameters (they follow from the task's spaces, `spaces`)."""
    return {k: v.shape for k, v in initial_params(config).items()}


policy_shapes = param_shapes   # every parameter plays: there is no value net to leave out


def checkpoint_arrays(config):
    """Every array a checkpoint holds: name -> (shape, dtype); the baseline has any length."""
    expected = {prefix + k: (shape, config.dtype) for k, shape in param_shapes(config).items()
                for prefix in ("", "m_", "v_")}
    return expected | {"baseline": (None, config.dtype)}


def advantages_of(kernels, returns, active, baseline, use_baseline):
    """Advantages of the active steps, in (t, env) order, and the updated baseline.

    returns and active are (T, N). Without a baseline: the returns standardized over
    the batch (the batch mean is the baseline). With one: returns minus a running mean
    of the return at each step index t (updated after use, 0.9 old + 0.1 new), divided
    by their standard deviation.
    """
    if not use_baseline:
        return kernels.standardize(returns[active]), baseline
    steps = returns.shape[0]
    if len(baseline) < steps:
        baseline = np.concatenate([baseline, np.zeros(steps - len(baseline), baseline.dtype)])
    centred = returns - baseline[:steps, None]
    advantages = centred[active]
    advantages = advantages / (advantages.std() + 1e-8)
    counts = active.sum(axis=1)
    seen = counts > 0
    step_means = np.where(seen, (returns * active).sum(axis=1) / np.maximum(counts, 1), 0)
    baseline = baseline.copy()
    baseline[:steps][seen] = 0.9 * baseline[:steps][seen] + 0.1 * step_means[seen]
    return advantages.astype(returns.dtype), baseline


def train(config, kernels, resume_meta=None, resume_arrays=None):
    """Runs until max_frames / max_episodes / Ctrl-C / SIGTERM; checkpoints; returns
    (counters, the name of the signal that stopped it or None)."""
    column = temperature_name(config)
    bonus = bool(config.entropy or config.entropy_final)
    with runs.Run(config, FORMAT, kernel_threads=config.threads, resume_meta=resume_meta,
                  resume_arrays=resume_arrays, extra_columns=[column] * bool(column) + ["entropy"] * bonus) as run:
        _train(config, kernels, run, column, bonus)
    return run.counters, run.stopped_by


def _train(config, kernels, run, column, bonus):
    dtype = np.dtype(config.dtype)
    counters, rng = run.counters, run.rng
    envs = make_envs(config)
    policy = make_policy(config, kernels)
    continuous = isinstance(policy, LinearGaussian)

    state = run.restore(lambda: new_state(config, policy))  # parameters, Adam moments, running baseline
    params = {k: state[k] for k in policy.param_names}
    env_seed = int(run.seeds[2].generate_state(1)[0] % (2**31 - 1))
    n = config.batch_episodes
    try:
        while run.running():
            # Every batch starts from fresh episodes (a copy that finished early has moved on), copy i
            # seeded with env_seed + episodes so far + i, and the action RNG as it was: a run resumed
            # from any checkpoint plays exactly the batches an uninterrupted run would.
            observations, _ = envs.reset(seed=env_seed + counters["episode"])
            batch_rng_state = rng.bit_generator.state
            temperature = temperature_at(config, counters["episode"])
            entropy = annealed(config.entropy, config.entropy_final, counters["episode"], config)
            # ---- play one episode in each of the N copies, with the current parameters ----
            inputs, actions, rewards, dones, actives = [], [], [], [], []
            active = np.ones(n, dtype=bool)     # (N,) still in its episode
            if config.max_episodes:  # the run ends at max_episodes exactly: a last batch plays only the episodes left
                active[max(config.max_episodes - counters["episode"], 0):] = False   # (the other copies idle)
            played = active.copy()
            finish_wall = np.zeros(n)
            while active.any() and run.stopped_by is None:
                x = policy.inputs(observations, dtype)                  # (N,) states or (N, D + 1)
                a = policy.act(params, x, rng, temperature)             # (N,) or (N, K)
                observations, r, terminated, truncated, _ = envs.step(policy.env_action(a) if continuous else a)
                done = terminated | truncated
                inputs.append(x)
                actions.append(a)
                rewards.append(np.where(active, r, 0).astype(dtype))  # an idle copy's steps count nothing
                dones.append(done)
                actives.append(active.copy())
                finish_wall[active & done] = run.wall()
                active = active & ~done
            if active.any():  # stopped by a signal mid-batch: the resumed run plays this batch again
                rng.bit_generator.state = batch_rng_state
                break
            # ---- one update from the N whole episodes ----
            actives, rewards = np.array(actives), np.array(rewards)   # (T, N)
            returns = kernels.discounted_returns(rewards, config.gamma, dones=np.array(dones))
            advantages, state["baseline"] = advantages_of(kernels, returns, actives, state["baseline"],
                                                          config.baseline)
            x, a = np.array(inputs)[actives], np.array(actions)[actives]
            grads = policy.objective_grad(params, x, a, advantages, temperature, entropy)

            def step():
                for k in params:  # descent on minus the objective
                    kernels.adam_step(params[k], -grads[k], state["m_" + k], state["v_" + k],
                                      counters["updates"] + 1, config.lr)
            run.apply_update(grads.values(), step)
            # ---- bookkeeping: one progress row per episode, in the order they finished ----
            lengths, totals = actives.sum(axis=0), rewards.sum(axis=0)
            order = np.argsort(finish_wall, kind="stable")
            for env in order[played[order]]:
                counters["steps"] += int(lengths[env])
                counters["frames"] = counters["steps"]
                run.finish_episode(float(totals[env]), wall=float(finish_wall[env]),
                                   extra=[f"{temperature:.6g}"] * bool(column) + [f"{entropy:.6g}"] * bonus)
            run.maybe_checkpoint()
    finally:
        envs.close()


def evaluate(config, params, episodes, seed, deterministic=True, kernels=None, on_episode=None):
    """Returns of the policy over `episodes` episodes on fresh environments (seeds seed..), greedy
    unless not `deterministic`; `on_episode(index, return)` is called after each."""
    if kernels is None:
        from pgcore import kernels
    env = make_env(config)
    policy = make_policy(config, kernels)
    rng = np.random.default_rng(seed)
    temperature = temperature_at(config, config.max_episodes)
    continuous = isinstance(policy, LinearGaussian)
    returns = []
    try:
        for episode in range(episodes):
            observation, _ = env.reset(seed=seed + episode)
            total, done = 0.0, False
            while not done:
                x = policy.inputs(np.asarray([observation]), np.dtype(config.dtype))
                a = policy.act(params, x, rng, temperature, greedy=deterministic)[0]
                observation, reward, terminated, truncated, _ = env.step(policy.env_action(a) if continuous else a)
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
            if on_episode is not None:
                on_episode(episode, total)
    finally:
        env.close()
    return np.array(returns)


class Player:
    """Agent.predict's policy: greedy or sampled actions of fixed parameters, at the final
    temperature (or sigma), for one observation or a batch."""

    def __init__(self, config, params, kernels, rng):
        self.config, self.params, self.rng = config, params, rng
        self.policy = make_policy(config, kernels)
        self.temperature = temperature_at(config, config.max_episodes)

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        """(the action of one observation (a state index, or a (D,) vector), or the (N,) or (N, K)
        actions of a batch, None): the Gaussian's clipped to the action space. The policies have no
        memory: `state` must be None, and `episode_start` (checked) changes nothing."""
        no_state(state)
        single, x = self.policy.check_observations(observation, np.dtype(self.config.dtype))
        episode_starts(episode_start, len(x))
        actions = self.policy.act(self.params, x, self.rng, self.temperature, greedy=deterministic)
        if isinstance(self.policy, LinearGaussian):
            actions = self.policy.env_action(actions)
        return (actions[0] if single else actions), None


class ControlTask(Task):
    """One of gymnasium's small tasks (pgcore.task.Task): a TaskSpec of TASKS, over ControlConfig."""

    config_class = ControlConfig
    checkpoint_format = FORMAT
    help_note = "Adam; each update plays --batch-episodes episodes in parallel"
    docs_group, docs_label = "control", "the other tasks"
    docs_heading = ("Flags of the other tasks (which always use Adam, beta1 0.9, beta2 0.999, eps 1e-8, and play "
                    "each batch's --batch-episodes episodes in parallel):")

    def __init__(self, name):
        self.name, self.spec = name, TASKS[name]
        self.description, self.family = self.spec.description, self.spec.family

    def __repr__(self):
        return f"ControlTask({self.name!r})"

    def __reduce__(self):
        return ControlTask, (self.name,)

    def defaults(self):
        return {"task": self.name} | {name: getattr(self.spec, name) for name in RECIPE}

    def check_more(self, config):
        check_more(config)

    def config_from_saved(self, saved):
        return config_from_saved(saved)

    def param_shapes(self, config):
        return param_shapes(config)

    def checkpoint_arrays(self, config):
        return checkpoint_arrays(config)

    def initial_params(self, config):
        return initial_params(config)

    def train(self, config, kernels, resume_meta=None, resume_arrays=None):
        return train(config, kernels, resume_meta, resume_arrays)

    def player(self, config, params, kernels, rng):
        return Player(config, params, kernels, rng)

    def evaluate(self, config, params, episodes, seed, deterministic=True, kernels=None, on_episode=None,
                 frames=None):
        if frames is not None:
            raise ValueError(f"{self.name} records no frames")
        return evaluate(config, params, episodes, seed, deterministic, kernels, on_episode)


CONTROL_TASKS = tuple(ControlTask(name) for name in TASKS)  # what pgcore.tasks registers
