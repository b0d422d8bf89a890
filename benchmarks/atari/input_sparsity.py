"""How sparse Atari screens are for a policy over sparse inputs, game by game.

Random play (each game's minimal action set, uniformly) on --envs emulators with the v5
settings: frameskip 4, sticky actions 0.25, FIRE on reset where a game needs it. ale-py
resizes each frame to --height x --width grayscale; a level is a pixel's top --bits bits.
The first half of the steps estimate the game's static background (each pixel's most
frequent level over them); the second half are measured against it:

  changed     share of pixels whose level differs from the same emulator's previous step
              (a step that starts an episode has no previous step and is left out)
  foreground  share of pixels whose level differs from the background
  inputs      nonzero inputs a step of a net that sees both (changed + foreground pixels):
              median and 99th percentile, and the median's share of 2 x height x width

usage: python benchmarks/atari/input_sparsity.py [--games Breakout,SpaceInvaders] [--steps 1000]
       [--envs 8] [--height 105] [--width 80] [--bits 4] [--seed 0]
"""
import argparse
import re

import numpy as np

GAMES = ("Breakout", "SpaceInvaders", "Freeway", "Boxing", "Pong", "Enduro", "Seaquest")


def rom_name(game):
    """ale-py's name of a game: SpaceInvaders -> space_invaders."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", game).lower()


def play(game, args):
    """(frames (steps, envs, height, width) uint8, starts (steps, envs) bool: the step is an
    episode's first, the number of actions) of random play."""
    from ale_py.vector_env import AtariVectorEnv

    envs = AtariVectorEnv(
        rom_name(game), num_envs=args.envs, batch_size=args.envs, num_threads=args.threads,
        img_height=args.height, img_width=args.width, grayscale=True, stack_num=1, maxpool=False, noop_max=0,
        frameskip=4, repeat_action_probability=0.25, reward_clipping=False, use_fire_reset=True,
        episodic_life=False, autoreset_mode="SameStep")
    n_actions = int(envs.single_action_space.n)
    rng = np.random.default_rng(args.seed)
    frames = np.empty((args.steps, args.envs, args.height, args.width), dtype=np.uint8)
    starts = np.zeros((args.steps, args.envs), dtype=bool)
    starts[0] = True
    observations, info = envs.reset(seed=args.seed)
    try:
        for t in range(args.steps):
            frames[t, info["env_id"]] = observations[:, 0]
            observations, _, terminated, truncated, info = envs.step(
                rng.integers(0, n_actions, size=args.envs).astype(np.int32))
            if t + 1 < args.steps:
                starts[t + 1, info["env_id"]] = terminated | truncated
    finally:
        envs.close()
    return frames, starts, n_actions


def sparsity(frames, starts, bits):
    """(changed share, foreground share, inputs a step (steps, envs)) of the second half of the
    steps, the background estimated on the first half."""
    levels = frames >> (8 - bits)
    half = len(levels) // 2
    counts = np.stack([(levels[:half] == level).sum(axis=(0, 1)) for level in range(2 ** bits)])
    background = counts.argmax(axis=0).astype(np.uint8)  # (height, width)
    measured = levels[half:]
    changed = measured[1:] != measured[:-1]                            # (steps - 1, envs, height, width)
    continuing = ~starts[half + 1:]                                    # (steps - 1, envs)
    foreground = measured[1:] != background
    pixels = changed.shape[2] * changed.shape[3]
    changed_share = changed[continuing].mean()
    foreground_share = foreground[continuing].mean()
    inputs = (changed.sum(axis=(2, 3)) + foreground.sum(axis=(2, 3)))[continuing]
    assert inputs.size, "no measured step continues an episode: give more --steps"
    return changed_share, foreground_share, inputs, pixels


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", default=",".join(GAMES), help="comma-separated ale-py game names, CamelCase")
    parser.add_argument("--steps", type=int, default=1000, help="agent steps per emulator (half estimate the "
                                                                 "background, half are measured)")
    parser.add_argument("--envs", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--height", type=int, default=105)
    parser.add_argument("--width", type=int, default=80)
    parser.add_argument("--bits", type=int, default=4, choices=range(1, 9), help="the levels kept: 2**bits")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.steps < 4 or args.envs < 1 or args.height < 1 or args.width < 1:
        parser.error("--steps must be at least 4, --envs, --height and --width at least 1")
    print(f"random play, {args.envs} emulators x {args.steps} steps, {args.height} x {args.width} gray, "
          f"{2 ** args.bits} levels; background from the first half, measured on the second")
    print("| game | actions | changed | foreground | inputs a step (median, 99th pct) | median share of inputs |")
    print("| --- | --- | --- | --- | --- | --- |")
    for game in args.games.split(","):
        frames, starts, n_actions = play(game, args)
        changed, foreground, inputs, pixels = sparsity(frames, starts, args.bits)
        median, high = np.median(inputs), np.percentile(inputs, 99)
        print(f"| {game} | {n_actions} | {100 * changed:.2f}% | {100 * foreground:.2f}% | {median:,.0f}, {high:,.0f} "
              f"| {100 * median / (2 * pixels):.2f}% |", flush=True)


if __name__ == "__main__":
    main()
