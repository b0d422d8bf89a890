"""How sure a Pong policy is, how often a difference frame hides its own paddle, and whether
its lost points come in runs.

Plays GAMES games (as in training: frameskip 4, sticky 0.25) on seeds SEED, SEED + 1, ...
with actions sampled as in training (--act sample), the likeliest action (greedy), or the likeliest
action unless max(p) is below --hold-below, then NOOP (hold: a test of whether the states
the policy is unsure of are ones where the paddle should stay still, which two actions
cannot do), and prints the quantiles of max(p) (the likeliest action's probability) over the
steps, the share of steps each action was played, the share of
steps whose difference frame has no nonzero pixel in the agent's paddle columns (70-71 of 80)
and the share of unsure steps (max(p) < 0.9) among those steps and the others,
each game's points in order (W won, L lost), and the chance of losing a point after a won
point and after a lost one (equal if losses do not come in runs).

    python benchmarks/learning/pong_policy_stats.py RUN_DIR [--games 3] [--seed 2000] [--act sample]
"""
import argparse

import numpy as np

import pgcore
from pgcore import kernels, pong

PADDLE_COLUMNS = slice(70, 72)  # the agent's (right) paddle in the 80 x 80 input


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--games", type=int, default=3)
    parser.add_argument("--seed", type=int, default=2000)
    parser.add_argument("--act", choices=["sample", "greedy", "hold"], default="sample")
    parser.add_argument("--hold-below", type=float, default=0.7, help="--act hold: NOOP when max(p) is below this")
    args = parser.parse_args()
    import ale_py
    import gymnasium

    gymnasium.register_envs(ale_py)
    agent = pgcore.Agent.load(args.run_dir)
    env = gymnasium.make("ALE/Pong-v5", frameskip=4, repeat_action_probability=0.25)
    rng = np.random.default_rng(args.seed)
    sureness, paddle_hidden, sureness_after_first, scores, games_points, played = [], [], [], [], [], []
    for game in range(args.games):
        frame, _ = env.reset(seed=args.seed + game)
        player = pong.Player(kernels, agent.params["w1"], agent.params["w2"], rng)
        previous = np.zeros((1, pong.INPUT_SIZE), np.uint8)  # the game's previous frame, preprocessed
        first, done, score, points = True, False, 0.0, ""
        while not done:
            x = player.inputs(frame[None], previous, np.array([first]))
            p = player.probabilities(x)
            if not first:  # a game's first step has no difference; the difference comes first in the inputs
                paddle_hidden.append(not x[0, :pong.INPUT_SIZE].reshape(80, 80)[:, PADDLE_COLUMNS].any())
                sureness_after_first.append(p.max())
            first = False
            sureness.append(p.max())
            action = pong.ACTIONS[player.choose(p, greedy=args.act != "sample")[0]]
            if args.act == "hold" and p.max() < args.hold_below:
                action = pong.NOOP
            played.append(action)
            frame, reward, terminated, truncated, _ = env.step(action)
            score += reward
            points += {1.0: "W", -1.0: "L"}.get(float(reward), "")
            done = terminated or truncated
        scores.append(score)
        games_points.append(points)
    sureness = np.array(sureness)
    print(f"{args.games} games (seeds {args.seed}..{args.seed + args.games - 1}), --act {args.act}: mean score "
          f"{np.mean(scores):+.2f} +- {np.std(scores, ddof=1) / np.sqrt(len(scores)):.2f}, {len(sureness)} steps")
    print("max(p) quantiles 10/25/50/75/90%:", np.round(np.quantile(sureness, [.1, .25, .5, .75, .9]), 3))
    print(f"steps with max(p) < 0.9: {np.mean(sureness < 0.9):.1%}")
    played = np.array(played)
    print("steps played:", ", ".join(f"{name} {np.mean(played == action):.1%}"
                                     for name, action in (("down", pong.DOWN), ("up", pong.UP), ("stay", pong.NOOP))))
    paddle_hidden = np.array(paddle_hidden)
    print(f"steps whose difference frame hides the agent's paddle: {np.mean(paddle_hidden):.1%}")
    sureness_after_first = np.array(sureness_after_first)
    for name, steps in (("hides", paddle_hidden), ("shows", ~paddle_hidden)):
        print(f"  steps with max(p) < 0.9 where it {name} the paddle: {np.mean(sureness_after_first[steps] < 0.9):.1%}")
    for score, points in zip(scores, games_points):
        print(f"{score:+4.0f} {points}")
    pairs = [points[i:i + 2] for points in games_points for i in range(len(points) - 1)]
    for before in "WL":
        after = [pair[1] for pair in pairs if pair[0] == before]
        print(f"P(lose a point | the previous was {before}): {after.count('L') / max(len(after), 1):.2f} "
              f"({len(after)} points)")


if __name__ == "__main__":
    main()
