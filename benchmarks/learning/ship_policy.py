"""Writes a Pong or Atari run's policy as one that pgcore ships: pgcore/data/pong.npz, or
pgcore/data/atari/GAME.npz. Its weights are in float16 (half the size; played in the run's dtype),
an Atari game's background as it is, with the run's config, its counters at the checkpoint and a
note on where it came from. The optimizer state and value net are dropped.

usage: python benchmarks/learning/ship_policy.py RUN_DIR --note "docs/results/... seed 1" [--out PATH]
Then `pgcore-play pong --episodes 20 --seed 1000` (or `pgcore-play atari --game GAME ...`) plays it
(greedy, seeds no training used).
"""
import argparse
import os

import numpy as np

from pgcore import runs, tasks
from pgcore.agent import open_checkpoint

SHIPPED_COUNTERS = ("episode", "frames", "steps", "updates", "wall_s", "running_reward")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a Pong or Atari run directory (its checkpoint.npz)")
    parser.add_argument("--note", required=True, help="where the policy came from (kept in the file)")
    parser.add_argument("--out", default=None, help="where to write (default: the shipped file of the run's game)")
    args = parser.parse_args(argv)
    opened = open_checkpoint(args.run_dir, for_training=True)
    trainer = tasks.of(opened.config)
    if not trainer.policy_formats:  # (Pong and Atari: the tasks whose policies ship)
        parser.error(f"{args.run_dir} holds a {trainer.name} run, not pong or atari")
    counters = opened.meta["counters"]
    fixed = trainer.fixed_arrays(opened.config)
    weights = {name: opened.arrays[name] if name in fixed else opened.arrays[name].astype(np.float16)
               for name in trainer.policy_shapes(opened.config)}
    for name, array in weights.items():
        if not np.isfinite(array).all():
            parser.error(f"{name} does not fit in float16 (a weight beyond +-65504)")
    meta = {"format": trainer.policy_formats[0], "config": opened.meta["config"], "note": args.note,
            "trained": {name: counters[name] for name in SHIPPED_COUNTERS}}
    out = args.out or trainer.shipped_path(opened.config)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    runs.save_checkpoint(out, weights, meta)
    running = counters["running_reward"]
    print(f"{out}: {os.path.getsize(out):,} bytes; episode {counters['episode']:,}, "
          f"{counters['frames'] / 1e6:.1f} M frames, running reward {'n/a' if running is None else f'{running:.2f}'}")


if __name__ == "__main__":
    main()
