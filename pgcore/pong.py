"""REINFORCE on Atari Pong from pixels: the "Pong from pixels" network and update, batched.

One loop in two parts: a Collector steps the emulators and keeps the episodes in
progress, a Learner learns from each finished episode (the single-process trainer runs
both; with --ray each Ray worker runs a Collector, see pgcore.distributed). N emulators
run on ale-py's C++ threads; while one half
of them emulates, Python handles the other half (asynchronous send/recv), so the
cores stay busy emulating. Each step, one compiled call (pong_step) does, for the B
environments that came back:

  frames (B, 210, 160) uint8 grayscale -> preprocess, minus each env's previous frame -> the
  ~26 nonzero pixels of each difference frame (indices and signs) -> appended to each
  env's episode (SparseEpisodes) -> h = relu of the sum of the ~26 signed rows of w1 they
  select -> logit -> up if the caller's uniform < sigmoid(logit) -> the ALE actions

The learner takes whole episodes (the default), their returns or GAE over a learned value
net computed when the episode ends, cut at every point; or, with rollout_steps, each
emulator's steps in rollouts of that many (GAE bootstrapped where a rollout ends inside a
game), replayed in shuffled minibatches of steps. Either way PPO's clipped surrogate over
`epochs` passes. pgcore.atari runs the same collector and learner on any game. The kernels come in as a module
(`pgcore.kernels` or `pgcore.reference`), so both backends run exactly this code.
"""
import dataclasses
import functools
import os
import warnings
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from pgcore import _validate, distributed, runs, settings
from pgcore._threads import _default_threads
from pgcore.backends import load_backend
from pgcore.task import Task, episode_starts

UP, DOWN, NOOP = 2, 3, 0  # Pong's minimal action set: RIGHT moves the paddle up, LEFT down, NOOP leaves it
ACTIONS = _validate.PONG_ACTIONS  # the ALE action of each action code the episodes store: down, up, stay
INPUT_SIZE = 80 * 80
FIRST_BUFFER_STEPS = 2048  # per env; doubled when an episode runs longer
FIRST_INDEX_CAPACITY = FIRST_BUFFER_STEPS * 64  # nonzero pixels per env (~26 a step); doubled when full


RunConfig, setting, override = settings.RunConfig, settings.setting, settings.override
ADVANTAGES = ("returns", "gae")
# The optimizer's per-parameter arrays, saved in checkpoints as PREFIX + param name.
OPTIMIZER_STATE = {"rmsprop": ("cache_",), "adam": ("m_", "v_")}


@dataclass
class PongConfig(RunConfig):
    """Every setting of a Pong run; the defaults are the default recipe, the frame preset."""
    task: str = override(RunConfig, "task", default="pong")
    max_frames: int = override(RunConfig, "max_frames", help="stop after N emulator frames, over all emulators "
                                                             "(frameskip included; 0: no limit)")
    threads: int = override(RunConfig, "threads", default_factory=_default_threads, default_text="every core",
                            help="emulator threads (the trainer's kernels run on one thread: the emulators keep "
                                 "the cores busy)")
    dtype: str = override(RunConfig, "dtype", default="float32")
    checkpoint_every: int = override(RunConfig, "checkpoint_every", default=50)
    batch_episodes: int = override(RunConfig, "batch_episodes", default=10)  # (--batch-steps, --workers)
    lr: float = override(RunConfig, "lr", default=1e-3)
    hidden: int = setting(200, minimum=1, metavar="N", help="the policy net's hidden units")
    batch_steps: int = setting(
        0, minimum=0, metavar="N",
        help="a batch ends at the episode that brings it to N agent steps or more, instead of after "
             "--batch-episodes episodes (0: count episodes). A batch of 10 beginner's episodes is ~11,500 steps; "
             "a skilled player's episodes are ~3x longer, so a batch counted in episodes grows 3x as the agent "
             "learns. Per worker with --workers.")
    envs: int = setting(16, minimum=1, metavar="N", help="parallel emulators (per worker with --workers)")
    optimizer: str = setting("rmsprop", choices=tuple(OPTIMIZER_STATE),
                             help="the policy's and the value net's optimizer (rmsprop: decay 0.99, eps 1e-5; "
                                  "adam: beta1 0.9, beta2 0.999, eps 1e-8)")
    frameskip: int = setting(4, minimum=1, metavar="N", help="emulator frames per agent step")
    sticky: float = setting(0.25, bounds=(0.0, 1.0, False), metavar="P",
                            help="probability that the emulator repeats the previous action "
                                 "(repeat_action_probability), in [0, 1]")
    sync: bool = setting(False, switch="on", help="step all emulators together: slower, bitwise reproducible")
    frame_input: bool = setting(
        True, switch="both",
        help="the policy (and value net) sees each preprocessed frame as well as its difference from the "
             "previous one: 12800 inputs, the frame's ~34 object pixels after the difference's ~26, each +1. A "
             "difference frame hides a paddle that did not move (the agent's own paddle, in 12% of the steps of "
             "three games of a trained policy). Saved in the config; cannot change on resume.")
    actions: int = setting(
        3, choices=(2, 3),
        help="2: up or down, one logit through a sigmoid; 3: down, up or stay (ALE's NOOP), a softmax over "
             "three logits (w2 (H, 3)), updated with softmax_policy_grad and clipped_softmax_policy_grad. "
             "Saved in the config; cannot change on resume.")
    advantage: str = setting("gae", choices=ADVANTAGES,
                             help="returns: the discounted returns (cut at every point); gae: generalized advantage "
                                  "estimation over a learned value net, cut at the same points (see --standardize)")
    standardize: bool = setting(True, switch="both",
                                help="standardize the advantages over each episode, or use them as they are")
    gae_lambda: float = setting(0.95, bounds=(0.0, 1.0, False), metavar="X",
                                help="GAE's lambda, in [0, 1]; with --advantage gae (1 with V = 0 is the returns)")
    gae_start_frames: int = setting(
        5_000_000, minimum=0, metavar="N",
        help="with --advantage gae: the policy learns from the returns until the run has played N emulator "
             "frames, then from GAE; the value net learns from the start. --advantage returns drops it (0) unless "
             "it is given")
    lr_decay_frames: int = setting(
        0, minimum=0, metavar="N",
        help="the learning rates (--lr, and --value-lr with --advantage gae) fall linearly from the first frame "
             "to --lr-decay-to of theirs at N emulator frames, then stay; counted in frames so a run's updates "
             "do not depend on the machine's speed (0: constant). May change on resume: the rate then follows "
             "the new schedule at the run's frame count.")
    lr_decay_to: float = setting(0.1, bounds=(0.0, 1.0, False), metavar="SHARE",
                                 help="the learning rates' share left at --lr-decay-frames, in [0, 1]; may change "
                                      "on --resume")
    value_hidden: int = setting(64, minimum=1, metavar="N",
                                help="the value net's hidden units; with --advantage gae")
    value_lr: float = setting(1e-3, bounds=(0.0, 1.0, True), metavar="X",
                              help="the value net's learning rate, in (0, 1], same optimizer as the policy; "
                                   "with --advantage gae")
    rollout_steps: int = setting(
        0, minimum=0, metavar="N",
        help="learn from rollouts of N agent steps per emulator instead of whole games, so updates come at a "
             "steady rate however long the games grow: where a rollout ends inside a game, GAE bootstraps from "
             "the value net's estimate of the step that follows (a point still cuts the advantages, as in whole "
             "games), and the value net learns GAE's returns (advantages + values). A batch is then --batch-steps "
             "agent steps (0: one rollout of each emulator), --minibatches split its steps, shuffled, and "
             "--standardize works over each minibatch. Needs --advantage gae (0: whole games, which --advantage "
             "returns picks unless this is given). Saved in the config; cannot change on resume.")
    epochs: int = setting(
        4, minimum=1, metavar="N",
        help="passes over each batch of --batch-episodes episodes: PPO's clipped surrogate, the logits "
             "recomputed from the current weights each pass. --epochs 1 --minibatches 1 is one REINFORCE update "
             "a batch, from the logits the episodes were played with.")
    minibatches: int = setting(4, minimum=1, metavar="N",
                               help="updates per pass, each on a share of the batch's episodes (shuffled each "
                                    "pass), at most one per episode; with --rollout-steps, a share of its steps")
    clip: float = setting(0.2, bounds=(0.0, 10.0, True), metavar="X",
                          help="PPO's clip on the probability ratio, in (0, 10]; when a batch is replayed "
                               "(--epochs or --minibatches above 1)")
    entropy: float = setting(
        0.0, bounds=(0.0, 1.0, False), metavar="X",
        help="entropy bonus, in [0, 1]: the policy's objective adds X times the entropy of its action "
             "probabilities at each step it learns from, so it keeps trying actions it has not yet ruled out (0: "
             "none). Against advantages standardized to unit scale, 0.01 is PPO's Atari value. Needs a softmax "
             "policy (Pong: --actions 3).")
    decay: float = setting(0.99, bounds=(0.0, 1.0, False), flag=None, help="RMSProp's decay, in [0, 1]")
    beta1: float = setting(0.9, bounds=(0.0, 0.999999, False), flag=None, help="Adam's beta1, in [0, 0.999999]")
    beta2: float = setting(0.999, bounds=(0.0, 0.999999, False), flag=None, help="Adam's beta2, in [0, 0.999999]")
    ray: str = setting(
        "", metavar="{local,auto,HOST:PORT}", default_text="none: this process's emulators",
        help="play on Ray workers (needs pip install 'pgcore[ray]' on every node): local starts Ray on this "
             "machine (loopback only, workers at normal priority); auto joins the cluster `ray start` made here; "
             "HOST:PORT joins the cluster whose head is there. This process is the learner.")
    workers: int = setting(1, minimum=1, metavar="K",
                           help="Ray workers; --envs, --threads, --batch-episodes and --batch-steps are per worker, "
                                "so an update takes K * batch_episodes episodes (or K * batch_steps steps)")

    # Whether a nonzero reward cuts the returns and advantages: a Pong point ends the play that earned it.
    cuts_at_rewards: ClassVar[bool] = True

    def input_size(self):
        """Inputs of a step: the difference frame's pixels, then (frame_input) the frame's."""
        return 2 * INPUT_SIZE if self.frame_input else INPUT_SIZE

    def logit_count(self):
        """The policy's logits a step: one (up with probability sigmoid(logit)), or one per action (a softmax)."""
        return 1 if self.actions == 2 else self.actions

    def fixed_arrays(self):
        """name -> (shape, dtype) of the arrays that play beside w1 and w2 and never train (none for Pong)."""
        return {}

    def make_fixed_arrays(self):
        """A new run's fixed_arrays (seeded by the config's seed)."""
        return {}


# The presets: what each sets over PongConfig's defaults, which are the frame preset (settings given
# explicitly win). gae, the default before frame: three actions; the returns for 20 M frames, then GAE
# over a value net that learned from the start (docs/results/pong-gae-hour). fast: two actions and the
# returns only, 4 clipped passes over each batch.
FAST = {"actions": 2, "advantage": "returns", "gae_start_frames": 0, "frame_input": False}
PRESETS = {
    # the default: gae with the frame beside its difference and the switch at 5 M frames
    # (docs/results/pong-frame-input: three hour-long seeds)
    "frame": {},
    # frame on rollouts: faster to +15, slower to +18 (docs/results/pong-rollouts: three 30-minute seeds)
    "rollouts": {"rollout_steps": 128, "gae_start_frames": 0, "lr_decay_frames": 16_000_000},
    "gae": {"frame_input": False, "gae_start_frames": 20_000_000},
    "fast": FAST,
    "reinforce": FAST | {"epochs": 1, "minibatches": 1},  # one REINFORCE update a batch at lr 1e-3 (docs/results/pong)
    "classic": FAST | {"lr": 1e-4, "epochs": 1, "minibatches": 1},  # the original "Pong from pixels" settings
}
PRESET_NOTES = {
    "frame": "three actions, the frame beside its difference, GAE from 5 M frames",
    "rollouts": "frame learning from rollouts of 128 steps per emulator, with GAE from the start and the "
                "learning rates falling to a tenth at 16 M frames",
    "gae": "frame without the frame input, switching to GAE at 20 M frames",
    "fast": "two actions and the returns only (no value net), 4 clipped passes of 4 updates over each batch",
    "reinforce": "fast with one update a batch (the gradients of 10 episodes summed, one RMSProp step)",
    "classic": "reinforce at lr 1e-4, the original recipe",
}
DEFAULT_PRESET = "frame"
PRESET_SETTINGS = tuple(sorted({name for preset in PRESETS.values() for name in preset}))  # what presets decide
FORMAT = "pgcore-pong-1"
POLICY_FORMAT = "pgcore-pong-policy-1"  # the policy shipped in pgcore/data/pong.npz
RUNNING_REWARD_BOUNDS = (-21, 21)  # a Pong game scores -21..21
COUNTER_TYPES = runs.COUNTER_TYPES | {"episodes_in_batch": int, "steps_in_batch": int, "worker_restarts": int}
COUNTERS_ADDED_LATER = {"worker_restarts": 0, "steps_in_batch": 0}  # older checkpoints lack them
# What a checkpoint saved before a setting existed ran with: the settings PongConfig had then, and
# the defaults of the time (the fast preset's, before the frame preset became PongConfig's defaults).
SAVED_BEFORE = {"optimizer": "rmsprop", "threads": 2, "advantage": "returns", "epochs": 1, "minibatches": 1,
                "actions": 2, "frame_input": False, "gae_start_frames": 0, "rollout_steps": 0,
                "lr_decay_frames": 0}


def make_config(preset=None, **settings_):
    """PongConfig from a preset (default DEFAULT_PRESET) and settings, which win over the preset
    (unchecked: check_config checks it)."""
    if preset is not None and preset not in PRESETS:
        raise runs.SettingError("preset", f"preset must be one of {', '.join(PRESETS)}, not {preset!r}")
    values = PRESETS[preset or DEFAULT_PRESET] | settings_
    if values.get("advantage", PongConfig.advantage) != "gae":
        # `--advantage returns` over a preset made for GAE: no switch to GAE, and whole games (a rollout
        # cut inside a game would bootstrap from a value net the returns do not have)
        values |= {name: 0 for name in ("gae_start_frames", "rollout_steps") if name not in settings_}
    return PongConfig(**values)


def preset_flags(preset):
    """The flags that `preset` amounts to over PongConfig's defaults (--actions 2 --no-frame-input ...)."""
    return TASK.preset_flags(preset)


def check_preset_describes(config, preset, **settings_):
    """Raises SettingError unless `preset` with `settings_` (a command line repeated with --resume)
    sets every setting a preset decides as `config`, a saved run's, has it."""
    fields = {field.name for field in dataclasses.fields(PongConfig)}
    implied = make_config(preset, **{name: value for name, value in settings_.items() if name in fields})
    for name in PRESET_SETTINGS:
        if name not in settings_ and getattr(implied, name) != getattr(config, name):
            raise runs.SettingError("preset", f"preset {preset!r} does not describe this run: it sets {name} "
                                              f"{getattr(implied, name)!r}, the run has {getattr(config, name)!r}")


def config_from_saved(saved):
    """The PongConfig a checkpoint recorded; a setting it lacks (older ones had no optimizer choice,
    task, time cadence, value net, epochs, actions or frame input) is what it ran with (SAVED_BEFORE),
    else PongConfig's default."""
    return PongConfig(**SAVED_BEFORE | saved)


def check_config(config):
    """Raises SettingError (a ValueError) naming the first setting out of range."""
    TASK.check_config(config)


def check_more(config):
    """The checks that span settings, after each setting's own bounds (PongTask.check_config)."""
    if config.gae_start_frames and config.advantage != "gae":
        raise runs.SettingError("gae_start_frames", "gae_start_frames applies to advantage gae only "
                                                    f"(this run's advantage is {config.advantage!r})")
    if config.rollout_steps and config.advantage != "gae":
        raise runs.SettingError("rollout_steps", "rollout_steps needs advantage gae: a rollout that ends inside a "
                                                 "game bootstraps from the value net (this run's advantage is "
                                                 f"{config.advantage!r})")
    if config.entropy and config.logit_count() == 1:
        raise runs.SettingError("entropy", "entropy needs a softmax policy (actions 3): the two-action policy's "
                                           "sigmoid takes no entropy bonus")
    check_ray_settings(config)
    # name the setting that made the run too big: the one whose default would shrink it most
    defaults = PongConfig()
    culprit = min(("hidden", "value_hidden", "envs"),
                  key=lambda name: memory_bytes(dataclasses.replace(config, **{name: getattr(defaults, name)})))
    runs.check_memory(culprit, getattr(config, culprit), memory_bytes(config))


RAY_INSTALL_HINT = distributed.INSTALL_HINT
check_ray_settings = distributed.check_config


def memory_bytes(config):
    """Bytes a run holds: parameters with their gradient and optimizer state, and the episode
    store (SparseEpisodes: per step an offset, logit, action and reward, ~64 pixel entries)."""
    itemsize = np.dtype(config.dtype).itemsize
    params = sum(int(np.prod(shape)) for shape in param_shapes(config).values()) * itemsize \
        * (2 + len(OPTIMIZER_STATE[config.optimizer]))
    per_env = FIRST_BUFFER_STEPS * (8 + (logit_count(config) + 1) * itemsize + 1) + FIRST_INDEX_CAPACITY * 3
    return params + config.envs * per_env


def make_envs(config, grayscale=True):
    """The trainer's emulators. Their frames are grayscale, (B, 1, 210, 160) uint8: the frame
    kernels read them to the same 0/1 frames as RGB ones (grayscale=False, (B, 1, 210, 160, 3)),
    and they cost less: a third of the bytes to write, copy and read (docs/DESIGN.md)."""
    from ale_py.vector_env import AtariVectorEnv

    batch = config.envs if config.sync else max(1, config.envs // 2)
    envs = AtariVectorEnv(
        "pong", num_envs=config.envs, batch_size=batch, num_threads=config.threads,
        img_height=210, img_width=160, grayscale=grayscale, stack_num=1, maxpool=False, noop_max=0,
        frameskip=config.frameskip, repeat_action_probability=config.sticky,
        reward_clipping=False, use_fire_reset=False, episodic_life=False,
        autoreset_mode="SameStep",  # a done step already returns the next episode's first frame
    )
    return envs


def init_params(config, rng):
    """Classic init: N(0, 1) / sqrt(fan_in), no biases. The value net (advantage "gae") starts
    at V = 0: its first layer like the policy's, its output weights and bias zero, so its
    first advantages are the returns'."""
    dtype, inputs = np.dtype(config.dtype), input_size(config)
    w1 = (rng.standard_normal((inputs, config.hidden)) / np.sqrt(inputs)).astype(dtype)
    w2 = (rng.standard_normal(param_shapes(config)["w2"]) / np.sqrt(config.hidden)).astype(dtype)
    params = {"w1": w1, "w2": w2}
    if config.advantage == "gae":
        params["value_w1"] = (rng.standard_normal((inputs, config.value_hidden)) / np.sqrt(inputs)).astype(dtype)
        params["value_w2"] = np.zeros(config.value_hidden, dtype=dtype)
        params["value_b"] = np.zeros(1, dtype=dtype)
    return params


def initial_params(config):
    """The parameters a new run starts from (seeded by config.seed), and the config's fixed arrays."""
    return init_params(config, np.random.default_rng(runs.seed_streams(config.seed)[0])) | config.make_fixed_arrays()


def input_size(config):
    """Inputs of a step (the config's input_size)."""
    return config.input_size()


def logit_count(config):
    """The policy's logits a step (the config's logit_count)."""
    return config.logit_count()


def _net_shapes(config):
    """name -> shape of the policy net's parameters, w1 and w2."""
    return {"w1": (input_size(config), config.hidden),
            "w2": (config.hidden,) if logit_count(config) == 1 else (config.hidden, logit_count(config))}


def policy_shapes(config):
    """name -> shape of the arrays that play: the policy's w1, w2, and the config's fixed arrays."""
    return _net_shapes(config) | {name: shape for name, (shape, _) in config.fixed_arrays().items()}


def param_shapes(config):
    """name -> shape of every parameter a run trains: the policy's, and the value net's with advantage "gae"."""
    shapes = _net_shapes(config)
    if config.advantage == "gae":
        shapes |= {"value_w1": (input_size(config), config.value_hidden), "value_w2": (config.value_hidden,),
                   "value_b": (1,)}
    return shapes


def checkpoint_arrays(config):
    """Every array a checkpoint holds: name -> (shape, dtype)."""
    expected = dict(config.fixed_arrays())
    for name, shape in param_shapes(config).items():
        for prefix in ("", "grad_") + OPTIMIZER_STATE[config.optimizer]:
            expected[prefix + name] = (shape, config.dtype)
    return expected


def new_state(config):
    """A new run's arrays: the parameters (seeded), a zero batch gradient and optimizer state."""
    params = initial_params(config)
    return params | {prefix + name: np.zeros_like(params[name]) for name in param_shapes(config)
                     for prefix in ("grad_",) + OPTIMIZER_STATE[config.optimizer]}


def learning_rate_scale(config, frames):
    """The share of its learning rates a run applies after `frames` emulator frames: 1 falling
    linearly to config.lr_decay_to at config.lr_decay_frames, then constant (1 throughout when
    lr_decay_frames is 0). Counted in frames, not minutes, so a run's updates do not depend on
    the machine's speed."""
    if not config.lr_decay_frames:
        return 1.0
    return 1.0 - (1.0 - config.lr_decay_to) * min(frames / config.lr_decay_frames, 1.0)


def learning_rate(config, name, frames):
    """The learning rate of parameter `name` after `frames` emulator frames."""
    return (config.value_lr if name.startswith("value_") else config.lr) * learning_rate_scale(config, frames)


def optimizer_step(kernels, config, state, name, update_number, frames):
    """One descent step on state[name] in place along the batch gradient state["grad_" + name],
    at the learning rate scaled for a run that has played `frames` emulator frames."""
    param, grad = state[name], state["grad_" + name]
    lr = learning_rate(config, name, frames)
    if config.optimizer == "adam":
        kernels.adam_step(param, grad, state["m_" + name], state["v_" + name], update_number, lr,
                          beta1=config.beta1, beta2=config.beta2)
    else:
        kernels.rmsprop_step(param, grad, state["cache_" + name], lr, config.decay, 1e-5)


def episode_targets(kernels, episode, state, config, frames=None):
    """(advantages (T,), returns (T,), the value net's loss) of one finished episode (the loss
    0.0 without a value net). Returns are cut at every point (a nonzero reward ends a Pong
    "game"); the advantages are the returns (advantage "returns") or GAE(gamma, lambda) over the
    value net's V(s_t), cut at the same points (advantage "gae"), standardized over the episode
    unless config.standardize is False. With advantage "gae", a run that has played fewer than
    config.gae_start_frames `frames` (None: any number) still takes the returns as advantages,
    while its value net learns: a new value net slowed early learning, and helped later (see
    docs/DESIGN.md#advantages)."""
    return _targets(kernels, episode, _values(kernels, episode, state, config), config, frames)


def _values(kernels, episode, state, config):
    """V(s_t) (T,) = relu(x_t @ value_w1) @ value_w2 + value_b on the episode's sparse frames, or
    None without a value net."""
    return _value_forward(kernels, episode, state, config)[1]


def _value_forward(kernels, episode, state, config):
    """(the value net's hidden layer (T, value_hidden), V(s_t) (T,)) as _values, or (None, None)."""
    if config.advantage != "gae":
        return None, None
    starts, indices, signs = episode[:3]
    hidden, values = kernels.sparse_mlp_forward(starts, indices, signs, state["value_w1"], state["value_w2"])
    values += state["value_b"]
    return hidden, values


def cuts(config, rewards):
    """Where the returns and advantages are cut within a game (bool (T,)): at every nonzero
    reward where the config's cuts_at_rewards (a Pong point), nowhere otherwise."""
    return rewards != 0 if config.cuts_at_rewards else np.zeros(len(rewards), dtype=bool)


def _targets(kernels, episode, values, config, frames=None):
    rewards = episode[5]
    points = cuts(config, rewards)
    returns = kernels.discounted_returns(rewards, config.gamma, dones=points)       # (T,)
    value_loss = 0.0
    if values is not None:
        value_loss = kernels.squared_error(values, returns)[0]
    if values is None or (frames is not None and frames < config.gae_start_frames):
        advantages = returns
    else:
        advantages = kernels.gae_advantages(rewards, values, config.gamma, config.gae_lambda, dones=points)
    if config.standardize:
        advantages = kernels.standardize(advantages)
    return advantages, returns, value_loss


def add_episode_gradient(kernels, episode, state, config, targets=None, frames=None):
    """Adds one episode's gradients (descent directions) to the batch gradients state["grad_*"]
    in place, and returns the value net's loss on it (0.0 without one).

    `episode` is SparseEpisodes.episode's (starts, indices, signs, logits, actions, rewards).
    Without `targets` (one update per batch): the policy's gradient is that of
    -sum_t A_t log pi(a_t | s_t), A from episode_targets, with the logits the episode was
    played with (`frames`: as episode_targets'). With `targets` (episode_targets' result, computed when the episode arrived:
    PPO-style epochs over a batch), the logits are recomputed from the current weights and the
    gradient is that of PPO's clipped surrogate, -sum_t min(r_t A_t, clip(r_t, 1 +- clip) A_t),
    r_t = pi(a_t | s_t) / pi_played(a_t | s_t). Either objective adds config.entropy *
    sum_t H(pi(. | s_t)), the entropy at the logits it uses. The value net descends
    0.5 * sum_t (V(s_t) - G_t)^2 toward the returns G at its current weights.
    """
    starts, indices, signs, logits, actions, rewards = episode
    value_hidden, values = _value_forward(kernels, episode, state, config)
    advantages, returns, value_loss = _targets(kernels, episode, values, config, frames) if targets is None else targets
    if values is not None:  # (the backwards take the forwards' hidden layers, of these weights)
        value_loss, grad_values = kernels.squared_error(values, returns)
        kernels.sparse_mlp_backward(starts, indices, signs, grad_values, state["value_w1"], state["value_w2"],
                                    state["grad_value_w1"], state["grad_value_w2"], h=value_hidden)
        state["grad_value_b"] += grad_values.sum(dtype=np.float64)
    softmax = logits.ndim == 2  # (T, actions) logits, else one (T,)
    hidden = None
    bonus = {"entropy": -config.entropy} if config.entropy else {}  # (check_more: a softmax's)
    if targets is None:
        policy_grad = kernels.softmax_policy_grad if softmax else kernels.sigmoid_policy_grad
        grad_logits = policy_grad(logits, actions, -advantages, **bonus)
    else:
        hidden, current_logits = kernels.sparse_mlp_forward(starts, indices, signs, state["w1"], state["w2"])
        clipped_grad = kernels.clipped_softmax_policy_grad if softmax else kernels.clipped_sigmoid_policy_grad
        grad_logits = clipped_grad(current_logits, logits, actions, advantages, config.clip)
        np.negative(grad_logits, out=grad_logits)
        if bonus:  # (zero weights: the entropy's term of softmax_policy_grad alone)
            grad_logits += kernels.softmax_policy_grad(current_logits, actions, np.zeros_like(advantages), **bonus)
    kernels.sparse_mlp_backward(starts, indices, signs, grad_logits, state["w1"], state["w2"],
                                state["grad_w1"], state["grad_w2"], h=hidden)
    return value_loss


def rollout_targets(kernels, segment, state, config, cut, frames=None):
    """(the segment's steps to learn from in compact form, (advantages, returns, the value net's
    loss)) of a rollout segment (SparseEpisodes.episode's tuple). `cut`: the segment was cut
    inside a game, and its last step, the next segment's first, is there only for the value
    net's estimate that bootstraps GAE (its reward is still to come); else the game ended with
    it. Points cut the advantages as in episode_targets; the value net's targets are GAE's
    returns, advantages + V, and the advantages are left for each minibatch to standardize.
    Before config.gae_start_frames `frames`, the advantages are the returns, bootstrapped alike."""
    starts, indices, signs, logits, actions, rewards = compact(segment)
    values = _values(kernels, (starts, indices, signs), state, config)
    last_value = None
    if cut:
        last_value, values = values[-1], values[:-1]
        steps = len(values)
        starts, logits, actions, rewards = starts[:steps + 1], logits[:steps], actions[:steps], rewards[:steps]
        indices, signs = indices[:starts[-1]], signs[:starts[-1]]
    points = cuts(config, rewards)
    advantages = kernels.gae_advantages(rewards, values, config.gamma, config.gae_lambda, dones=points,
                                        last_values=last_value)
    returns = advantages + values
    value_loss = kernels.squared_error(values, returns)[0]
    if frames is not None and frames < config.gae_start_frames:
        advantages = kernels.gae_advantages(rewards, np.zeros_like(values), config.gamma, 1.0, dones=points,
                                            last_values=last_value)
    return (starts, indices, signs, logits, actions, rewards), (advantages, returns, value_loss)


def sparse_rows(starts, indices, signs, steps):
    """(starts, indices, signs) of the sparse rows of `steps` (ascending step numbers) of a batch."""
    counts = starts[steps + 1] - starts[steps]
    chosen_starts = np.zeros(len(steps) + 1, dtype=np.int64)
    np.cumsum(counts, out=chosen_starts[1:])
    positions = np.repeat(starts[steps] - chosen_starts[:-1], counts) + np.arange(chosen_starts[-1])
    return chosen_starts, indices[positions], signs[positions]


def concatenated(segments):
    """One batch from a non-empty list of compact segments: their steps in order, the starts offset."""
    starts = [segments[0][0][:1]]
    offset = 0
    for segment in segments:
        starts.append(segment[0][1:] + offset)
        offset += int(segment[0][-1])
    return (np.concatenate(starts),) + tuple(np.concatenate([segment[k] for segment in segments])
                                             for k in range(1, 6))


def compact(episode):
    """A finished episode's arrays, copied out of the episode store (only its own pixels)."""
    starts, indices, signs, logits, actions, rewards = episode
    pixels = int(starts[-1])
    return (starts.copy(), indices[:pixels].copy(), signs[:pixels].copy(), logits.copy(), actions.copy(),
            rewards.copy())


class SparseEpisodes:
    """Per-env storage of the episodes in progress, inputs kept sparse (what pong_step writes).

    Step t of env e: its difference frame's nonzero pixels indices[e, starts[e, t]:starts[e, t + 1]]
    (int16) with signs (int8, +1/-1), then with a frame input the frame's (6400 + p, +1);
    logits[e, t] (one, or `logits` of them: logits[e, t, :]), actions[e, t] (an action code:
    0 down, 1 up, 2 stay; ACTIONS), rewards[e, t]; lengths[e] steps so far. A step takes ~26
    pixels (~60 with the frame), ~80 bytes. Grows by doubling. `inputs`: the net's input size,
    the most indices one step can take.
    """

    def __init__(self, n_envs, dtype, steps=FIRST_BUFFER_STEPS, capacity=FIRST_INDEX_CAPACITY, inputs=INPUT_SIZE,
                 logits=1):
        self.inputs = inputs
        self.lengths = np.zeros(n_envs, dtype=np.int64)
        self.starts = np.zeros((n_envs, steps + 1), dtype=np.int64)
        self.indices = np.empty((n_envs, max(capacity, inputs)), dtype=np.int16)
        self.signs = np.empty_like(self.indices, dtype=np.int8)
        self.logits = np.empty((n_envs, steps) + ((logits,) if logits > 1 else ()), dtype=dtype)
        self.actions = np.empty((n_envs, steps), dtype=np.uint8)
        self.rewards = np.zeros((n_envs, steps), dtype=dtype)

    def make_room(self, env_ids):
        """Room for one more step of each of env_ids: a free step and `inputs` free indices
        (a frame whose every pixel changed)."""
        t = self.lengths[env_ids]
        steps, capacity = self.logits.shape[1], self.indices.shape[1]
        if max(t.tolist()) >= steps:  # (builtins: ndarray.max costs microseconds on a few elements)
            self.starts = _widened(self.starts, 2 * steps + 1)
            self.logits, self.actions, self.rewards = (_widened(a, 2 * steps)
                                                       for a in (self.logits, self.actions, self.rewards))
        if max(self.starts[env_ids, t].tolist()) > capacity - self.inputs:
            self.indices, self.signs = _widened(self.indices, 2 * capacity), _widened(self.signs, 2 * capacity)

    def carry_last(self, env):
        """Starts env's next segment with the last step of its current one (the step whose value
        bootstrapped the cut; its reward, still to come, lands in the new segment)."""
        t = self.lengths[env] - 1
        first, stop = self.starts[env, t], self.starts[env, t + 1]
        self.indices[env, :stop - first] = self.indices[env, first:stop]
        self.signs[env, :stop - first] = self.signs[env, first:stop]
        self.starts[env, 1] = stop - first
        for array in (self.logits, self.actions, self.rewards):
            array[env, 0] = array[env, t]
        self.lengths[env] = 1

    def episode(self, env):
        """(starts (T + 1,), indices, signs, logits (T,), actions (T,), rewards (T,)) of env's episode."""
        t = self.lengths[env]
        return (self.starts[env, :t + 1], self.indices[env], self.signs[env], self.logits[env, :t],
                self.actions[env, :t], self.rewards[env, :t])



def _widened(array, columns):
    """A copy of `array` with `columns` columns (the new ones zero; further dimensions kept)."""
    wider = np.zeros((array.shape[0], columns) + array.shape[2:], dtype=array.dtype)
    wider[:, :array.shape[1]] = array
    return wider


def train(config, kernels, resume_meta=None, resume_arrays=None, collect=None, collector_class=None):
    """Runs until max_frames / max_episodes / Ctrl-C / SIGTERM; checkpoints; returns
    (counters, the name of the signal that stopped it or None). `collect(config, run, learner)`
    feeds the learner its episodes: by default Ray workers (pgcore.distributed.collect, each
    worker a Collector; inside `distributed.session`) when config.ray, else this process's emulators,
    a `collector_class` (default Collector)."""
    collector_class = collector_class or Collector
    if collect is None:
        if config.ray:
            collect = functools.partial(distributed.collect, make_collector=collector_class)
        else:
            def collect(config, run, learner):
                _collect(config, kernels, run, learner, collector_class)
    # The emulator threads keep every core busy; a parallel kernel region would wait for a
    # core to come free (milliseconds), so the trainer's kernels run on the calling thread.
    columns = ["skipped_updates"] + (["value_loss"] if config.advantage == "gae" else []) \
        + (["policy_lag", "worker_restarts"] if config.ray else [])
    with runs.Run(config, FORMAT, kernel_threads=1, resume_meta=resume_meta, resume_arrays=resume_arrays,
                  extra_counters={"episodes_in_batch": 0, "steps_in_batch": 0, "worker_restarts": 0},
                  extra_columns=columns) as run:
        learner = Learner(config, kernels, run)
        collect(config, run, learner)
        learner.finish()
    return run.counters, run.stopped_by


def _collect(config, kernels, run, learner, collector_class):
    """The single-process trainer: this process's emulators feed the learner."""
    counters = run.counters
    env_seed = int(run.seeds[2].generate_state(1)[0] % (2**31 - 1)) + 1000 * counters["segment"]
    collector = collector_class(config, kernels, run.rng, env_seed,
                                fixed={name: learner.state[name] for name in config.fixed_arrays()})
    try:
        while run.running():
            finished, steps, frames = collector.step(learner.w1, learner.w2, counters["updates"])
            counters["steps"] += steps
            counters["frames"] += frames
            for env in finished:
                if not run.running():
                    break  # past a limit or asked to stop: the rest are dropped, as episodes in progress are
                learner.learn(*collector.piece(env))
                collector.release(env)
    finally:
        collector.close()


class Learner:
    """The parameters and what each finished episode does to them: its gradient added to the
    batch gradient, an update every `batch_episodes` episodes (or, with `batch_steps`, at the
    episode that brings the batch to that many agent steps), a row in progress.csv, a
    checkpoint when one is due. The single-process trainer and the Ray driver share it.

    With epochs or minibatches > 1 (PPO-style) it keeps the batch's episodes instead and, when
    the batch is full, makes `epochs` passes over them in a shuffled order, `minibatches`
    updates a pass (at most one per episode). When the run stops, it learns from the batch in
    progress (`finish`); a checkpoint taken during a batch does not hold it, so a run resumed
    after a crash starts a new batch."""

    def __init__(self, config, kernels, run):
        self.config, self.kernels, self.run = config, kernels, run
        self.state = run.restore(lambda: new_state(config))  # parameters, batch gradient, optimizer state
        self.w1, self.w2 = self.state["w1"], self.state["w2"]
        # per worker, as --envs is; a batch counted in steps keeps its size as episodes lengthen
        self.batch_episodes = config.batch_episodes * config.workers
        self.batch_steps = (config.batch_steps or config.rollout_steps * config.envs) * config.workers
        self.value_loss = 0.0  # the value net's loss over the pieces of the game in progress (its row's)
        self.names = list(param_shapes(config))
        self.grads = [self.state["grad_" + name] for name in self.names]
        self.replay = config.epochs > 1 or config.minibatches > 1 or config.rollout_steps > 0
        # With segments, each update steps RMSProp on the first layers' rows its minibatch saw, each
        # row's steps since it was last brought up to date counted here (never checkpointed: every
        # batch ends with the caches brought up to date).
        self.row_ages = {name: np.zeros(shape[0], dtype=np.int64) for name, shape in param_shapes(config).items()
                         if name in ("w1", "value_w1") and config.rollout_steps and config.optimizer == "rmsprop"}
        self.batch = []  # (episode or segment, its targets) of the batch in progress, when replaying
        if self.replay:
            self._new_batch()

    @property
    def weights(self):
        """What the collectors play with: Collector.step's keywords (the policy's parameters)."""
        return {"w1": self.w1, "w2": self.w2}

    def learn(self, episode, start_version, cut=False, score=None, game_over=True):
        """Learns from one finished episode, or with --rollout-steps a segment (SparseEpisodes.episode's
        tuple), played from the weights of update `start_version` on. `cut`: a segment cut inside a
        game (rollout_targets); else the episode ended: with `game_over` the game ended, scoring
        `score` in all (None: the sum of the episode's rewards), and it gets its row in progress.csv;
        without, a life was lost and the game plays on (--life-cut)."""
        config, state, counters, run = self.config, self.state, self.run.counters, self.run
        policy_lag = counters["updates"] - start_version
        steps = len(episode[5]) - bool(cut)
        if config.rollout_steps:
            segment, targets = rollout_targets(self.kernels, episode, state, config, cut, counters["frames"])
            self.batch.append((segment, targets))
            self.value_loss += targets[2]
        elif self.replay:
            episode = compact(episode)  # the episode store reuses its arrays
            targets = episode_targets(self.kernels, episode, state, config, counters["frames"])
            self.batch.append((episode, targets))
            self.value_loss += targets[2]
        else:
            self.value_loss += add_episode_gradient(self.kernels, episode, state, config, frames=counters["frames"])
        game_over = game_over and not cut
        counters["episodes_in_batch"] += game_over
        counters["steps_in_batch"] += steps
        if (counters["steps_in_batch"] >= self.batch_steps if self.batch_steps
                else counters["episodes_in_batch"] >= self.batch_episodes):
            if config.rollout_steps:
                self._replay_steps()
            elif self.replay:
                self._replay_batch()
            else:
                self._update()
            self._new_batch()
        if not game_over:
            return
        extra = [counters["skipped_updates"]] + ([round(self.value_loss, 6)] if config.advantage == "gae" else []) \
            + ([policy_lag, counters["worker_restarts"]] if config.ray else [])
        self.value_loss = 0.0
        run.finish_episode(float(episode[5].sum(dtype=np.float64)) if score is None else float(score), extra=extra)
        run.maybe_checkpoint()

    def _update(self, rows=None):
        """Applies the batch gradient (if finite) and zeroes it. `rows`: the only inputs the batch
        saw, so the first layers' gradients are zero on every other row, and RMSProp steps those
        rows alone (rmsprop_rows_step: the untouched rows' caches decay when next touched, or at
        `_flush_rows`, exactly as dense steps would decay them)."""
        config, state, counters = self.config, self.state, self.run.counters
        lazy = self.row_ages if rows is not None else {}
        checked = [state["grad_" + name][rows] if name in lazy else state["grad_" + name] for name in self.names]

        def step():
            for name in self.names:
                if name in lazy:
                    self.kernels.rmsprop_rows_step(state[name], state["grad_" + name], state["cache_" + name], rows,
                                                   lazy[name], learning_rate(config, name, counters["frames"]),
                                                   config.decay, 1e-5)
                else:
                    optimizer_step(self.kernels, config, state, name, counters["updates"] + 1, counters["frames"])
        applied = self.run.apply_update(checked, step)
        for name in self.names:  # (the rows step zeroed its rows; a skipped update leaves them)
            if name not in lazy:
                state["grad_" + name][...] = 0
            elif not applied:
                state["grad_" + name][rows] = 0

    def _flush_rows(self):
        """Brings every row's RMSProp cache up to date (the checkpoint then holds the dense optimizer's)."""
        for name, ages in self.row_ages.items():
            self.kernels.rmsprop_rows_flush(self.state["cache_" + name], ages, self.config.decay)

    def finish(self):
        """Learns from the batch in progress, if episodes of it are kept (before the last checkpoint)."""
        if self.batch:
            self._replay_steps() if self.config.rollout_steps else self._replay_batch()
            self._new_batch()

    def _new_batch(self):
        self.run.counters["episodes_in_batch"] = self.run.counters["steps_in_batch"] = 0

    def _replay_steps(self):
        """`epochs` passes over the kept segments' steps, `minibatches` updates a pass, each on a
        share of the steps (shuffled each pass) with its advantages standardized over it."""
        starts, indices, signs, logits, actions, _ = concatenated([segment for segment, _ in self.batch])
        advantages, returns = (np.concatenate([targets[k] for _, targets in self.batch]) for k in (0, 1))
        self.batch.clear()
        for _ in range(self.config.epochs):
            order = self.run.rng.permutation(len(actions))
            for share in np.array_split(order, min(self.config.minibatches, len(actions))):
                steps = np.sort(share)  # in order: their sparse rows are gathered in one pass
                chosen = sparse_rows(starts, indices, signs, steps) + (logits[steps], actions[steps], None)
                share_advantages = advantages[steps]
                if self.config.standardize:
                    share_advantages = self.kernels.standardize(share_advantages)
                add_episode_gradient(self.kernels, chosen, self.state, self.config,
                                     (share_advantages, returns[steps], None))
                seen = np.flatnonzero(np.bincount(chosen[1], minlength=len(self.w1))) if self.row_ages else None
                self._update(seen)
        self._flush_rows()

    def _replay_batch(self):
        """`epochs` shuffled passes over the kept batch, `minibatches` updates a pass."""
        for _ in range(self.config.epochs):
            order = self.run.rng.permutation(len(self.batch))
            for share in np.array_split(order, min(self.config.minibatches, len(self.batch))):
                for index in share:
                    episode, targets = self.batch[index]
                    add_episode_gradient(self.kernels, episode, self.state, self.config, targets)
                self._update()
        self.batch.clear()


class Collector:
    """N emulators (ale-py's vector env, asynchronous halves unless config.sync) and their
    episodes in progress: each `step` plays one agent step of the envs that came back, with
    the caller's weights, and says which episodes ended. Used by the single-process trainer
    and by each Ray worker.

    ale-py's asynchronous vector env has, rarely (once in some 10^8 frames here), returned one env
    twice in a batch; its state is not to be trusted after that, so the collector warns and
    starts its emulators again (`restarts`), dropping the episodes in progress.

    A game other than Pong subclasses it: its emulators (`_make_envs`), its step (`_play`), the
    rewards it learns from (`_learned`) and the width of what it keeps of each env's previous
    frame (`previous_width`). `fixed`: the config's fixed arrays, which play beside w1 and w2."""

    previous_width = INPUT_SIZE  # Pong's previous frame, preprocessed: 0/1

    def __init__(self, config, kernels, rng, env_seed, fixed=None):
        self.config, self.kernels, self.rng, self.env_seed = config, kernels, rng, env_seed
        self.fixed = fixed or {}
        self.restarts = 0
        self.episodes = SparseEpisodes(config.envs, np.dtype(config.dtype), inputs=input_size(config),
                                       logits=logit_count(config))
        self.previous_frame = np.zeros((config.envs, self.previous_width), dtype=np.uint8)
        self.fresh = np.ones(config.envs, dtype=bool)   # next frame starts an episode: no motion yet
        self.last_frame_number = np.zeros(config.envs, dtype=np.int64)
        self.start_version = np.zeros(config.envs, dtype=np.int64)  # the update each episode began at
        self.scores = np.zeros(config.envs)  # each game's score so far (its segments learned as they fill)
        self.cut = np.zeros(config.envs, dtype=bool)  # a ready piece is a cut segment, not an ended episode
        self.life_lost = np.zeros(config.envs, dtype=bool)  # a ready piece ends at a lost life, the game plays on
        self.version = 0
        self._start_emulators()

    def step(self, w1, w2, version):
        """One step of the envs that came back, with the weights of update `version`; returns
        (the env ids whose piece is ready: an episode that ended, or with rollout_steps a segment
        that reached its length (read each with `piece`, then `release` it), agent steps,
        emulator frames)."""
        episodes = self.episodes
        env_ids = self.info["env_id"]                                   # (B,)
        self.version = version
        self.start_version[env_ids[episodes.lengths[env_ids] == 0]] = version
        episodes.make_room(env_ids)
        actions = self._play(env_ids, w1, w2)
        self.fresh[env_ids] = False
        self.envs.send(actions)

        self.observations, rewards, terminated, truncated, self.info = self.envs.recv()
        returned = self.info["env_id"]
        if len(set(returned.tolist())) < len(returned):
            self._restart_emulators(returned)
            return returned[:0], len(env_ids), 0   # (this batch's frames are not counted)
        stepped = episodes.lengths[returned] > 0      # not an initial reset observation
        episodes.rewards[returned[stepped], episodes.lengths[returned[stepped]] - 1] = self._learned(rewards[stepped])
        self.scores[returned[stepped]] += rewards[stepped]
        frame_number = self.info["frame_number"]
        frames = int((frame_number - self.last_frame_number[returned]).sum())
        self.last_frame_number[returned] = frame_number
        ended = terminated | truncated
        finished = returned[ended & stepped]
        self.fresh[finished] = True
        self.cut[finished] = False
        lost = self._lives_lost(returned, stepped, ended)
        if len(lost):
            self.life_lost[lost] = True
            finished = np.concatenate((finished, lost))
        if self.config.rollout_steps:  # a segment of env_ids (its last step the next's first) is full
            full = env_ids[episodes.lengths[env_ids] > self.config.rollout_steps]
            full = full[~self.fresh[full]]  # (not a piece that also ended: at the game's end ...)
            if len(lost):
                full = full[~self.life_lost[full]]  # (... or at a lost life)
            self.cut[full] = True
            finished = np.concatenate((finished, full))
        return finished, len(env_ids), frames

    def _play(self, env_ids, w1, w2):
        """The actions of envs env_ids, from the frames they returned: difference frames -> sparse
        rows -> logits -> sampled actions, stored in the episodes (observations (B, 1, 210, 160)
        grayscale: the frames (B, 210, 160))."""
        return self.kernels.pong_step(self.observations[:, 0], self.previous_frame, env_ids, self.fresh[env_ids],
                                      w1, w2, self.rng.random(len(env_ids)), self.episodes)

    def _learned(self, rewards):
        """The rewards the learner learns from, of the rewards the games scored (Pong's: the same)."""
        return rewards

    def _lives_lost(self, returned, stepped, ended):
        """Of the envs `returned` that stepped and whose games did not end (bools `stepped`,
        `ended`), those whose piece ends at a life lost this step (Pong's: none)."""
        return returned[:0]

    def _make_envs(self):
        return make_envs(self.config)

    def piece(self, env):
        """What the learner takes of a ready env (Learner.learn's arguments): its episode or segment
        (SparseEpisodes.episode's views), the update it began at, whether it is a cut segment, for
        an ended game its score, and whether the game ended (not at a cut or a lost life)."""
        cut, game_over = bool(self.cut[env]), not (self.cut[env] or self.life_lost[env])
        return (self.episodes.episode(env), int(self.start_version[env]), cut,
                float(self.scores[env]) if game_over else None, game_over)

    def release(self, env):
        """Frees env's ready piece: after an ended episode its next step starts a new one; after a
        cut segment the next segment starts with its last step."""
        if self.cut[env]:
            self.episodes.carry_last(env)
            self.start_version[env] = self.version  # (the carried step was played in this step)
            self.cut[env] = False
        else:
            self.episodes.lengths[env] = 0
            if not self.life_lost[env]:
                self.scores[env] = 0
            self.life_lost[env] = False

    def take(self, env):
        """`piece` with the episode or segment in compact form, and frees it (`release`): what a Ray
        worker returns."""
        episode, *rest = self.piece(env)
        taken = (compact(episode), *rest)
        self.release(env)
        return taken

    def _restart_emulators(self, returned):
        in_progress = int((self.episodes.lengths > 0).sum())
        warnings.warn(f"ale-py's vector env returned envs {returned.tolist()} in one batch (one of them twice); "
                      f"its emulators were started again and their {in_progress} episodes in progress dropped",
                      RuntimeWarning, stacklevel=3)
        self.envs.close()
        self.restarts += 1
        self._start_emulators()

    def _start_emulators(self):
        """New emulators (seeded by env_seed and the restarts so far) at fresh episodes."""
        self.envs = self._make_envs()
        self.episodes.lengths[:] = 0
        self.scores[:] = 0
        self.cut[:] = False
        self.life_lost[:] = False
        self.fresh[:] = True
        self.last_frame_number[:] = 0
        self.observations, self.info = self.envs.reset(seed=self.env_seed + 7919 * self.restarts)

    def close(self):
        self.envs.close()


class Player:
    """Plays Pong from raw frames with fixed parameters. The policy sees each frame minus the
    game's previous one, as the trainer does; the caller keeps that previous frame (preprocessed:
    (N, 6400) uint8, 0s and 1s), as `previous` of `inputs` and `act` or as the state of `predict`,
    so a player keeps nothing of a game between calls (only its random generator)."""

    def __init__(self, kernels, w1, w2, rng):
        self.kernels, self.w1, self.w2, self.rng = kernels, w1, w2, rng

    def inputs(self, frames, previous, fresh):
        """frames (N, 210, 160, 3) uint8 -> the net's dense inputs (N, 6400) int8: each frame's
        difference from its game's previous frame, `previous` (N, 6400) uint8, C-contiguous (zeros
        where `fresh` (N,) bool: a game's first frame), followed (a frame input) by the frame (N, 12800).
        `previous` is then the frames, preprocessed (pong_difference)."""
        x = self.kernels.pong_difference(frames, previous, np.arange(len(frames)), np.asarray(fresh, dtype=bool))
        if _validate.sees_frame(self.w1):  # previous is now the frame
            x = np.hstack((x, previous.view(np.int8)))
        return x

    def probabilities(self, x):
        """The net's dense inputs x (N, D) (`inputs`) -> each action code's probability (N, 2 or 3)
        float64: down, up (and stay, for a 3-action net)."""
        return action_probabilities(self.kernels.mlp_forward(x, self.w1, self.w2)[1])

    def choose(self, p, greedy=True):
        """Action codes (N,) from `probabilities`: the likeliest (a tie goes to the lower code,
        down), or sampled with this player's rng as pong_step samples (see pgcore.kernels)."""
        if greedy:
            return p.argmax(axis=1)
        if p.shape[1] == 2:  # up where the uniform is below p up
            return (self.rng.random(len(p)) < p[:, 1]).astype(np.intp)
        # the first action whose cumulative probability passes the uniform
        return (self.rng.random(len(p))[:, None] >= np.cumsum(p, axis=1)[:, :-1]).sum(axis=1)

    def act(self, frames, previous, fresh, greedy=True):
        """frames (N, 210, 160, 3) uint8 -> ALE actions (N,) int (UP, DOWN, or NOOP for a 3-action
        net); greedy: the likeliest action, else sampled; `previous` and `fresh` as `inputs`."""
        return np.asarray(ACTIONS)[self.choose(self.probabilities(self.inputs(frames, previous, fresh)), greedy)]

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        """Agent.predict: one frame (210, 160, 3) or a batch (N, 210, 160, 3) uint8 -> (its ALE action,
        the state) or ((N,) actions, the state). The state is the previous frame of each game,
        preprocessed: (6400,) or (N, 6400) uint8, a new array each call, to pass back with the
        game's next frame; None starts every game with this frame, and `episode_start` True (or
        (N,) bools) starts the games it marks. The state passed in is not modified."""
        frames = np.asarray(observation)
        shape = self.frame_shape
        single = frames.ndim == len(shape)
        frames = frames[None] if single else frames
        if frames.ndim != len(shape) + 1 or frames.shape[1:] != shape or frames.dtype != np.uint8:
            raise ValueError(f"observation must be {self.frame_words} {shape} or (N, {', '.join(map(str, shape))}) "
                             f"uint8, not {frames.shape} {frames.dtype}")
        n = len(frames)
        fresh = episode_starts(episode_start, n)
        if state is None:
            previous, fresh[:] = np.zeros((n, self.state_width), dtype=np.uint8), True
        else:
            previous = self.checked_state(state, n, single)
        actions = self.act(frames, previous, fresh, greedy=deterministic)
        return (actions[0], previous[0]) if single else (actions, previous)

    # what predict takes: a frame's shape, its name, and the width of a game's state
    frame_shape, frame_words, state_width = (210, 160, 3), "Pong frames", INPUT_SIZE

    @staticmethod
    def checked_state(state, n, single):
        return previous_frames(state, n, single)


def action_probabilities(logits):
    """Each action code's probability (N, K) float64 of a net's logits: (N,) one logit, the
    sigmoid's (down, up), or (N, K) a softmax's."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim == 1:
        p_up = 1 / (1 + np.exp(-logits))
        return np.stack((1 - p_up, p_up), axis=1)
    exps = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exps / exps.sum(axis=1, keepdims=True)


def previous_frames(state, n, single):
    """Agent.predict's Pong state, checked: a new (n, 6400) uint8 C-contiguous copy of it. It must be
    what predict returned: (6400,) (or (1, 6400)) for one frame, (n, 6400) for n, uint8, 0s and 1s."""
    if isinstance(state, (bool, np.bool_)):
        raise ValueError(f"state must be None or the state predict returned, not {state!r} (predict's arguments "
                         "are observation, state, episode_start, deterministic: give deterministic by name)")
    array = np.asarray(state)
    shapes = [(INPUT_SIZE,), (1, INPUT_SIZE)] if single else [(n, INPUT_SIZE)]
    if array.dtype != np.uint8 or array.shape not in shapes:
        frames = "one frame" if single else f"{n} frames"
        raise ValueError(f"state must be None or the state predict returned for {frames}: the previous frames, "
                         f"{' or '.join(map(str, shapes))} uint8, not {array.shape} {array.dtype}")
    if array.size and array.max() > 1:
        raise ValueError("state must be None or the state predict returned: preprocessed frames of 0s and 1s, "
                         f"not values up to {int(array.max())}")
    return np.array(array.reshape(n, INPUT_SIZE), dtype=np.uint8, order="C", copy=True)


def evaluate(config, params, episodes, seed, deterministic=True, kernels=None, on_game=None, frames=None):
    """Scores of `episodes` games against the built-in AI on fresh emulators (seeds seed, seed + 1, ...),
    greedy unless not `deterministic`. `on_game(game, score)` is called after each game; `frames`, a
    list, collects the first game's frames."""
    import ale_py
    import gymnasium

    if kernels is None:
        kernels = load_backend("cython")
    gymnasium.register_envs(ale_py)
    env = gymnasium.make("ALE/Pong-v5", frameskip=config.frameskip, repeat_action_probability=config.sticky)
    player = Player(kernels, params["w1"], params["w2"], np.random.default_rng(seed))
    previous = np.zeros((1, INPUT_SIZE), dtype=np.uint8)

    def step(action):
        frame, reward, terminated, truncated, _ = env.step(action)
        return frame, reward, terminated or truncated

    try:
        return play_games(episodes, seed, lambda game_seed: env.reset(seed=game_seed)[0],
                          lambda frame, first: player.act(frame[None], previous, np.array([first]), deterministic)[0],
                          step, on_game, frames)
    finally:
        env.close()


def play_games(episodes, seed, reset, act, step, on_game=None, frames=None):
    """Scores (episodes,) of games played one after another: game g starts from reset(seed + g) (its
    first observation), each step plays act(observation, first) and step(action) returns
    (observation, reward, done). on_game(g, score) after each game; `frames`, a list, collects the
    first game's observations."""
    scores = []
    for game in range(episodes):
        observation = reset(seed + game)
        score, done, first = 0.0, False, True
        while not done:
            observation, reward, done = step(act(observation, first))
            first = False
            score += reward
            if frames is not None and game == 0:
                frames.append(observation)
        scores.append(score)
        if on_game is not None:
            on_game(game, score)
    return np.array(scores)


class PongTask(Task):
    """Atari Pong from pixels (pgcore.task.Task)."""

    name = "pong"
    title = "Pong"
    description = "Atari Pong from pixels: PPO-style clipped passes, GAE over a value net"
    config_class = PongConfig
    docs_group = "pong"
    docs_heading = "Pong's flags:"
    presets = PRESETS
    checkpoint_format = FORMAT
    policy_formats = (POLICY_FORMAT,)
    counter_types = COUNTER_TYPES
    counters_added_later = COUNTERS_ADDED_LATER
    running_reward_bounds = RUNNING_REWARD_BOUNDS
    packaged_policy = os.path.join(os.path.dirname(__file__), "data", "pong.npz")
    episode_word, score_word, play_episodes, print_each_episode = "game", "score", 1, True
    play_options = {
        "gif": "write an animated GIF of the first game here",
        "sticky": "probability of repeating the last action, in [0, 1] (default: the run's, 0.25; 0 is the "
                  "deterministic Pong other systems report on)",
    }

    preset_notes = PRESET_NOTES
    docs_label = "pong"

    @functools.lru_cache(maxsize=1)
    def extra_options(self):
        recipes = "; ".join(f"{name}: {PRESET_NOTES[name]}" + (f" ({' '.join(preset_flags(name))})" if PRESETS[name]
                                                                 else "") for name in PRESETS)
        return (settings.option(
            "preset", str, choices=tuple(PRESETS), default_text=DEFAULT_PRESET,
            help=f"a recipe: a set of the flags below over their defaults (a flag given explicitly wins over it). "
                 f"{recipes}. --advantage returns over a preset drops its --gae-start-frames and --rollout-steps "
                 "(whole games, no switch to GAE) unless they are given. Their measured "
                 "runs: docs/results.md; --list-presets prints each"),)

    def make_config(self, preset=None, **settings_):
        return make_config(preset, **settings_)

    def check_more(self, config):
        check_more(config)

    def config_from_saved(self, saved):
        return config_from_saved(saved)

    def resume_settings(self, config, given):
        if "preset" in given:
            check_preset_describes(config, **given)
        return {name: value for name, value in given.items() if name != "preset"}

    def default_text(self, name, preset=None):
        """The default preset's value, and the other presets' where they set another (with
        `preset`: that preset's)."""
        text = super().default_text(name, preset)
        if name not in PRESET_SETTINGS or preset is not None:
            return text
        others = {}
        for preset in PRESETS:
            value = settings.value_text(getattr(make_config(preset), name))
            if value != text:
                others.setdefault(value, []).append(preset)
        return ", or ".join([text] + [f"{value} with the {settings.join_words(presets, 'or')} preset"
                                      for value, presets in others.items()])

    def param_shapes(self, config):
        return param_shapes(config)

    def policy_shapes(self, config):
        return policy_shapes(config)

    def checkpoint_arrays(self, config):
        return checkpoint_arrays(config)

    def initial_params(self, config):
        return initial_params(config)

    def run_context(self, config):
        """Ray, started or joined (pgcore.distributed), for a run on Ray workers."""
        return distributed.session(config) if config.ray else super().run_context(config)

    def train(self, config, kernels, resume_meta=None, resume_arrays=None):
        return train(config, kernels, resume_meta, resume_arrays)

    def player(self, config, params, kernels, rng):
        return Player(kernels, params["w1"], params["w2"], rng)

    def evaluate(self, config, params, episodes, seed, deterministic=True, kernels=None, on_episode=None,
                 frames=None):
        return evaluate(config, params, episodes, seed, deterministic, kernels, on_game=on_episode, frames=frames)


TASK = PongTask()
