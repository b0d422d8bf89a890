"""How sure a Pong policy is, and how often a difference frame hides its own paddle.

Plays GAMES games with sampled actions (as in training: frameskip 4, sticky 0.25) on seeds
SEED, SEED + 1, ... and prints the quantiles of max(p, 1 - p) over the steps, and the share of
steps whose difference frame has no nonzero pixel in the agent's paddle columns (70-71 of 80).

    python benchmarks/learning/pong_policy_stats.py RUN_DIR [--games 3] [--seed 2000]
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
    args = parser.parse_args()
    import ale_py
    import gymnasium

    gymnasium.register_envs(ale_py)
    agent = pgcore.Agent.load(args.run_dir)
    w1, w2 = agent.params["w1"], agent.params["w2"]
    env = gymnasium.make("ALE/Pong-v5", frameskip=4, repeat_action_probability=0.25)
    rng = np.random.default_rng(args.seed)
    sureness, paddle_hidden, scores = [], [], []
    for game in range(args.games):
        frame, _ = env.reset(seed=args.seed + game)
        player = pong.Player(kernels, w1, w2, rng)
        first, done, score = True, False, 0.0
        while not done:
            x = player.inputs(frame[None], np.array([first]))
            if not first:  # the difference comes first in the inputs
                paddle_hidden.append(not x[0, :pong.INPUT_SIZE].reshape(80, 80)[:, PADDLE_COLUMNS].any())
            first = False
            _, logit = kernels.mlp_forward(x, w1, w2)
            p_up = 1 / (1 + np.exp(-float(logit[0])))
            sureness.append(max(p_up, 1 - p_up))
            frame, reward, terminated, truncated, _ = env.step(pong.UP if rng.random() < p_up else pong.DOWN)
            score += reward
            done = terminated or truncated
        scores.append(score)
    sureness = np.array(sureness)
    print(f"{args.games} games (seeds {args.seed}..{args.seed + args.games - 1}), sampled: scores {scores}, "
          f"{len(sureness)} steps")
    print("max(p, 1 - p) quantiles 10/25/50/75/90%:", np.round(np.quantile(sureness, [.1, .25, .5, .75, .9]), 3))
    print(f"steps with max(p, 1 - p) < 0.9: {np.mean(sureness < 0.9):.1%}")
    print(f"steps whose difference frame hides the agent's paddle: {np.mean(paddle_hidden):.1%}")


if __name__ == "__main__":
    main()
