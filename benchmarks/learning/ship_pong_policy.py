"""Writes a Pong run's policy as the one pgcore ships (pgcore/data/pong.npz): its weights in
float16 (half the size; played in the run's dtype), the run's config, its counters at the
checkpoint, and a note on where it came from. The optimizer state and value net are dropped.

usage: python benchmarks/learning/ship_pong_policy.py RUN_DIR --note "docs/results/... seed 1"
       [--out pgcore/data/pong.npz]
Then `pgcore-play pong --episodes 20 --seed 1000` plays it (greedy, seeds no training used).
"""
import argparse
import os

import numpy as np

from pgcore import runs
from pgcore.agent import PACKAGED_POLICIES, open_checkpoint

FORMAT = "pgcore-pong-policy-1"
SHIPPED_COUNTERS = ("episode", "frames", "steps", "updates", "wall_s", "running_reward")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a Pong run directory (its checkpoint.npz)")
    parser.add_argument("--note", required=True, help="where the policy came from (kept in the file)")
    parser.add_argument("--out", default=PACKAGED_POLICIES["pong"], help="where to write (default: the shipped file)")
    args = parser.parse_args(argv)
    opened = open_checkpoint(args.run_dir, for_training=True)
    if opened.config.task != "pong":
        parser.error(f"{args.run_dir} holds a {opened.config.task} run, not pong")
    counters = opened.meta["counters"]
    weights = {name: opened.arrays[name].astype(np.float16) for name in ("w1", "w2")}
    for name, array in weights.items():
        if not np.isfinite(array).all():
            parser.error(f"{name} does not fit in float16 (a weight beyond +-65504)")
    meta = {"format": FORMAT, "config": opened.meta["config"], "note": args.note,
            "trained": {name: counters[name] for name in SHIPPED_COUNTERS}}
    runs.save_checkpoint(args.out, weights, meta)
    print(f"{args.out}: {os.path.getsize(args.out):,} bytes; episode {counters['episode']:,}, "
          f"{counters['frames'] / 1e6:.1f} M frames, running reward {counters['running_reward']:.2f}")


if __name__ == "__main__":
    main()
