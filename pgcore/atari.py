"""Any Atari game from pixels: Pong's trainer (pgcore.pong) over any game's frames.

The collector and learner are Pong's, with what differs given by the config and a collector
subclass:

  frames (B, 105, 80) uint8 grayscale, as ale-py resizes them -> each pixel's level (its top
  `bits` bits) against the env's previous level (+1 brighter, -1 darker), then the pixels whose
  level is not the game's background's (+1): sparse rows of 2 x 105 x 80 inputs (atari_step)
  -> h = relu of the sum of the rows of w1 they select -> a softmax over the game's minimal
  action set -> the action drawn, stored in the episodes

The background is each pixel's most frequent level over frames of random play, estimated once
when a run starts (seeded by the run's seed) and kept in its checkpoints and policies beside w1
and w2. The learner learns from rollouts of 128 steps with GAE over a value net, as Pong's
rollouts preset does (its policy at a third of the learning rate), on the rewards clipped to
their sign (--reward-clip), while progress.csv and pgcore-play report each game's score. No
reward cuts the advantages (a Pong point does): they run to the game's end or a lost life
(--life-cut), or to a rollout's cut, where the value net bootstraps them.
"""
import difflib
import functools
import os
import re
from dataclasses import dataclass

import numpy as np

from pgcore import pong, runs, settings
from pgcore.backends import load_backend
from pgcore.task import Task

HEIGHT, WIDTH = 105, 80     # ale-py resizes each frame to this, half of Atari's 210 x 160
PIXELS = HEIGHT * WIDTH
BACKGROUND_ENVS, BACKGROUND_STEPS = 8, 256  # random play that estimates a game's background
FORMAT = "pgcore-atari-1"
POLICY_FORMAT = "pgcore-atari-policy-1"  # the policies shipped in pgcore/data/atari/GAME.npz
SHIPPED_DIR = os.path.join(os.path.dirname(__file__), "data", "atari")
GAMES_HINT = 'the names: python -c "from ale_py import roms; print(*roms.get_all_rom_ids())"'

setting, override = settings.setting, settings.override
SAVED_BEFORE = {"life_cut": False, "noop_max": 0}  # what a run saved before a setting existed ran with
PONG_ONLY = ("actions", "frame_input", "ray", "workers")  # Pong's settings an Atari game does not take


@dataclass
class AtariConfig(pong.PongConfig):
    """Every setting of an Atari run; the defaults are its recipe (Pong's rollouts preset's)."""
    task: str = override(pong.PongConfig, "task", default="atari")
    game: str = setting("breakout", metavar="NAME",
                        help="the game, one ale-py ships: its ROM's name (breakout, space_invaders) or the "
                             "same in CamelCase (SpaceInvaders). Saved in the config; cannot change on resume.")
    bits: int = setting(4, choices=tuple(range(1, 9)),
                        help="the levels of gray the net tells apart: each pixel's top N bits (16 levels at 4). "
                             "Saved in the config; cannot change on resume.")
    reward_clip: bool = setting(True, switch="both",
                                help="learn from the rewards clipped to their sign (-1, 0, +1), so that games of "
                                     "every scale learn at one learning rate; progress.csv reports the game's score")
    life_cut: bool = setting(True, switch="both",
                             help="a lost life ends the advantages and returns as a game's end does (no value is "
                                  "bootstrapped past it), while the game plays on and progress.csv still counts "
                                  "whole games; games without lives (Freeway, Boxing) are unchanged. Runs saved "
                                  "before it existed resume without it.")
    noop_max: int = setting(0, minimum=0, metavar="N",
                            help="start each game with a random 0 to N no-op actions (0: none, as v5), in "
                                 "training and evaluation alike")
    advantage: str = override(pong.PongConfig, "advantage",
                              help="returns: the discounted returns of each game; gae: generalized advantage "
                                   "estimation over a learned value net (see --standardize)")
    lr: float = override(
        pong.PongConfig, "lr", default=3e-4,
        help="the policy's learning rate, in (0, 1]; may change on --resume. A third of Pong's: at 1e-3, 3 of 13 "
             "short SpaceInvaders runs settled within 100,000 frames on a policy that scored next to nothing "
             "(docs/results.md, which also has the settings Freeway learned with).")
    gae_start_frames: int = override(pong.PongConfig, "gae_start_frames", default=0)
    lr_decay_frames: int = override(pong.PongConfig, "lr_decay_frames", default=16_000_000)
    rollout_steps: int = override(
        pong.PongConfig, "rollout_steps", default=128,
        help="learn from rollouts of N agent steps per emulator instead of whole games: where a rollout ends "
             "inside a game, GAE bootstraps from the value net's estimate of the step that follows, and the value "
             "net learns GAE's returns. A batch is then --batch-steps agent steps (0: one rollout of each "
             "emulator), --minibatches split its steps, shuffled, and --standardize works over each minibatch. "
             "Needs --advantage gae (0: whole games, which --advantage returns picks unless this is given). Saved "
             "in the config; cannot change on resume.")
    batch_steps: int = override(
        pong.PongConfig, "batch_steps",
        help="agent steps per batch: with --rollout-steps, the batch ends at the rollout that brings it to N or "
             "more (0: one rollout of each emulator, --envs x --rollout-steps); with whole games, at the game that "
             "does, instead of after --batch-episodes games (0: count games)")
    actions: int = override(pong.PongConfig, "actions", applies_to=("pong",))
    frame_input: bool = override(pong.PongConfig, "frame_input", applies_to=("pong",))
    ray: str = override(pong.PongConfig, "ray", applies_to=("pong",))
    workers: int = override(pong.PongConfig, "workers", applies_to=("pong",))

    cuts_at_rewards = False  # (a ClassVar, as PongConfig's)

    def input_size(self):
        """Each pixel's change of level, then its level off the background."""
        return 2 * PIXELS

    def logit_count(self):
        """One logit per action of the game's minimal action set."""
        return len(minimal_actions(rom_id(self.game)))

    def fixed_arrays(self):
        return {"background": ((PIXELS,), "uint8")}

    def make_fixed_arrays(self):
        return {"background": estimate_background(self)}


def rom_id(game):
    """ale-py's name of a game: SpaceInvaders or space_invaders -> space_invaders."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", str(game)).lower()


@functools.lru_cache(maxsize=None)
def game_names():
    from ale_py import roms

    return tuple(roms.get_all_rom_ids())


@functools.lru_cache(maxsize=None)
def minimal_actions(game):
    """The ALE actions of `game`'s minimal action set (a ROM name), in ale-py's order: what an
    action code (an index) means."""
    from ale_py import ALEInterface, LoggerMode, roms

    ALEInterface.setLoggerMode(LoggerMode.Error)
    ale = ALEInterface()
    ale.loadROM(roms.get_rom_path(game))
    return tuple(int(action.value) for action in ale.getMinimalActionSet())


def check_game(game):
    """Raises SettingError naming the game unless ale-py ships it, with the names closest to it."""
    if not isinstance(game, str) or rom_id(game) not in game_names():
        close = difflib.get_close_matches(rom_id(game), game_names(), n=3)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise runs.SettingError("game", f"ale-py has no game {game!r}; {hint}{GAMES_HINT}")


def make_envs(config, n_envs=None, sync=None, threads=None):
    """The game's emulators, (B, 1, 105, 80) uint8 grayscale frames, the v5 settings (frameskip,
    sticky actions), FIRE pressed on reset where the game needs it, the config's no-op starts,
    each life lost part of one game (the collector cuts at lost lives, from info["lives"])."""
    from ale_py.vector_env import AtariVectorEnv

    n_envs = config.envs if n_envs is None else n_envs
    sync = config.sync if sync is None else sync
    return AtariVectorEnv(
        rom_id(config.game), num_envs=n_envs, batch_size=n_envs if sync else max(1, n_envs // 2),
        num_threads=min(config.threads, n_envs) if threads is None else threads,
        img_height=HEIGHT, img_width=WIDTH, grayscale=True, stack_num=1, maxpool=False, noop_max=config.noop_max,
        frameskip=config.frameskip, repeat_action_probability=config.sticky, reward_clipping=False,
        use_fire_reset=True, episodic_life=False, autoreset_mode="SameStep")


def background_of(frames, bits):
    """Each pixel's most frequent level (its top `bits` bits) over `frames` (N, ...) uint8: (pixels,) uint8."""
    levels = frames.reshape(len(frames), -1) >> (8 - bits)
    counts = np.stack([(levels == level).sum(axis=0) for level in range(2 ** bits)])
    return counts.argmax(axis=0).astype(np.uint8)


def random_frames(config, steps=BACKGROUND_STEPS, n_envs=BACKGROUND_ENVS, seed=0):
    """(steps x n_envs, 105, 80) uint8 frames of the game under uniformly random actions (the
    emulators stepped together, so the frames depend on the seed alone)."""
    envs = make_envs(config, n_envs=n_envs, sync=True)
    rng = np.random.default_rng(seed)
    try:
        observations, _ = envs.reset(seed=seed)
        count = int(envs.single_action_space.n)
        frames = []
        for _ in range(steps):
            observations, *_ = envs.step(rng.integers(0, count, n_envs).astype(np.int32))
            frames.append(observations[:, 0])
    finally:
        envs.close()
    return np.concatenate(frames)


def estimate_background(config):
    """The game's background for a new run: background_of random play's frames, seeded by the
    run's seed."""
    stream = np.random.SeedSequence(config.seed).spawn(4)[3]  # (the run's three are runs.seed_streams')
    seed = int(stream.generate_state(1)[0] % (2**31 - 1))
    return background_of(random_frames(config, seed=seed), config.bits)


class AtariCollector(pong.Collector):
    """Pong's collector on any game: its frames' levels (atari_step, against the background in
    `fixed`), the rewards learned clipped to their sign where the config says so."""

    previous_width = PIXELS  # each env's previous levels

    def _start_emulators(self):
        self.lives = np.zeros(self.config.envs, dtype=np.int64)  # 0: no life to lose yet (a game's start)
        super()._start_emulators()

    def _lives_lost(self, returned, stepped, ended):
        if not self.config.life_cut:
            return returned[:0]
        lives = self.info["lives"]
        lost = returned[stepped & ~ended & (lives < self.lives[returned])]
        self.lives[returned] = lives
        return lost

    def _play(self, env_ids, w1, w2):
        return self.kernels.atari_step(self.observations[:, 0], self.fixed["background"], self.previous_frame,
                                       env_ids, self.fresh[env_ids], w1, w2, self.rng.random(len(env_ids)),
                                       self.episodes, self.config.bits)

    def _learned(self, rewards):
        return np.sign(rewards) if self.config.reward_clip else rewards

    def _make_envs(self):
        return make_envs(self.config)


class AtariPlayer(pong.Player):
    """Plays a game from its frames (105, 80) uint8 grayscale with fixed parameters; the caller
    keeps each game's previous levels ((N, 8400) uint8), as `previous` of `act` or as the state of
    `predict`."""

    def __init__(self, kernels, w1, w2, background, bits, rng):
        super().__init__(kernels, w1, w2, rng)
        self.background, self.bits = background, bits

    def act(self, frames, previous, fresh, greedy=True):
        """frames (N, 105, 80) uint8 -> action codes (N,) (indices into the game's minimal action
        set); greedy: the likeliest, else sampled; `previous` becomes the frames' levels."""
        starts, indices, signs = self.kernels.atari_sparse_levels(frames, self.background, previous, None,
                                                                  np.asarray(fresh, dtype=bool), self.bits)
        _, logits = self.kernels.sparse_mlp_forward(starts, indices, signs, self.w1, self.w2)
        return self.choose(pong.action_probabilities(logits), greedy)

    # Agent.predict (Player.predict): one frame (105, 80) or a batch (N, 105, 80) uint8 grayscale
    # (ale-py's frames, resized) -> (its action code, the state) or ((N,) codes, the state); the
    # state is each game's previous levels, (8400,) or (N, 8400) uint8
    frame_shape, frame_words, state_width = (HEIGHT, WIDTH), "grayscale frames", PIXELS

    @staticmethod
    def checked_state(state, n, single):
        previous = np.asarray(state)
        if previous.dtype != np.uint8 or previous.shape not in ([(PIXELS,), (1, PIXELS)] if single else [(n, PIXELS)]):
            raise ValueError(f"state must be None or the state predict returned: the previous levels, ({PIXELS},) "
                             f"a frame uint8, not {previous.shape} {previous.dtype}")
        return np.array(previous.reshape(n, PIXELS), dtype=np.uint8, order="C", copy=True)


def evaluate(config, params, episodes, seed, deterministic=True, kernels=None, on_game=None, frames=None):
    """Scores of `episodes` games on a fresh emulator (seeds seed, seed + 1, ...), greedy unless
    not `deterministic`. `on_game(game, score)` after each game; `frames`, a list, collects the
    first game's frames (105 x 80 gray)."""
    kernels = kernels or load_backend("cython")
    player = AtariPlayer(kernels, params["w1"], params["w2"], params["background"], config.bits,
                         np.random.default_rng(seed))
    envs = make_envs(config, n_envs=1, sync=True, threads=1)
    previous = np.zeros((1, PIXELS), dtype=np.uint8)

    def step(action):
        observations, reward, terminated, truncated, _ = envs.step(action.astype(np.int32))
        return observations[0, 0].copy(), float(reward[0]), bool(terminated[0] or truncated[0])

    try:
        return pong.play_games(episodes, seed, lambda game_seed: envs.reset(seed=game_seed)[0][0, 0].copy(),
                               lambda frame, first: player.act(frame[None], previous, np.array([first]),
                                                               deterministic),
                               step, on_game, frames)
    finally:
        envs.close()


class AtariTask(Task):
    """Any Atari game from pixels (pgcore.task.Task)."""

    name = "atari"
    title = "Atari"
    description = "any Atari game from pixels (--game): Pong's sparse net and rollouts over the game's frames"
    config_class = AtariConfig
    docs_heading = "Atari's flags:"
    checkpoint_format = FORMAT
    policy_formats = (POLICY_FORMAT,)
    counter_types = pong.COUNTER_TYPES
    counters_added_later = pong.COUNTERS_ADDED_LATER
    episode_word, score_word, play_episodes, print_each_episode = "game", "score", 1, True
    play_options = {
        "game": "without --checkpoint: the game whose policy, shipped with pgcore, plays (python -c \"import "
                "pgcore; print(*pgcore.tasks.get('atari').shipped_policies())\" lists them)",
        "gif": "write an animated GIF of the first game here (105 x 80 gray, as the policy sees it)",
        "sticky": "probability of repeating the last action, in [0, 1] (default: the run's, 0.25)",
    }

    def shipped_policies(self):
        """game (a ROM name) -> the path of its policy shipped with pgcore."""
        names = sorted(os.listdir(SHIPPED_DIR)) if os.path.isdir(SHIPPED_DIR) else []
        return {name[:-len(".npz")]: os.path.join(SHIPPED_DIR, name) for name in names if name.endswith(".npz")}

    def shipped_path(self, config):
        return os.path.join(SHIPPED_DIR, rom_id(config.game) + ".npz")

    def shipped_policy(self, game=None):
        policies = self.shipped_policies()
        names = ", ".join(policies) or "none"
        if game is None:
            raise ValueError(f"name the game of a shipped Atari policy (game=, pgcore-play's --game): {names}")
        if rom_id(game) not in policies:
            raise ValueError(f"no trained policy ships for the game {game!r}; Atari policies ship for: {names}")
        return policies[rom_id(game)]

    def config_from_saved(self, saved):
        """An Atari run's config; one saved before --life-cut and --noop-max ran without them."""
        return AtariConfig(**SAVED_BEFORE | saved)

    def make_config(self, **settings_):
        """The game named as ale-py names it; --advantage returns plays whole games (as over a Pong
        preset) unless --rollout-steps is given."""
        if "game" in settings_ and isinstance(settings_["game"], str):
            settings_["game"] = rom_id(settings_["game"])
        if settings_.get("advantage", AtariConfig.advantage) != "gae":
            settings_ = {name: 0 for name in ("gae_start_frames", "rollout_steps")} | settings_
        return AtariConfig(**settings_)

    def check_more(self, config):
        check_game(config.game)
        pong.check_more(config)

    def param_shapes(self, config):
        return pong.param_shapes(config)

    def policy_shapes(self, config):
        return pong.policy_shapes(config)

    def checkpoint_arrays(self, config):
        return pong.checkpoint_arrays(config)

    def fixed_arrays(self, config):
        return config.fixed_arrays()

    def initial_params(self, config):
        return pong.initial_params(config)

    def train(self, config, kernels, resume_meta=None, resume_arrays=None):
        return pong.train(config, kernels, resume_meta, resume_arrays, collector_class=AtariCollector)

    def player(self, config, params, kernels, rng):
        return AtariPlayer(kernels, params["w1"], params["w2"], params["background"], config.bits, rng)

    def evaluate(self, config, params, episodes, seed, deterministic=True, kernels=None, on_episode=None,
                 frames=None):
        return evaluate(config, params, episodes, seed, deterministic, kernels, on_game=on_episode, frames=frames)


TASK = AtariTask()
