"""A pilot's starting point: copy a Pong run that sees difference frames (w1 of 6400 rows) into a
new run directory whose net also sees each frame (--frame-input, 12800 rows), its policy unchanged.

The frame's rows of w1 (and of the value net's value_w1) start at zero, so the copy plays exactly
as the run did; their RMSProp cache (or Adam second moment) starts at the mean of the difference
rows', so their first steps are not the 1 / sqrt(1 - decay) = 10x steps of an empty cache.
Resuming the copy (`pgcore-train pong --resume OUT`) continues the run's counters and progress.csv.

    python benchmarks/learning/widen_pong_inputs.py RUN_DIR OUT_DIR
"""
import argparse
import dataclasses
import os
import shutil

import numpy as np

from pgcore import pong, runs
from pgcore.agent import open_checkpoint


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("out_dir")
    args = parser.parse_args()
    opened = open_checkpoint(args.run_dir, for_training=True)
    if opened.config.frame_input:
        parser.error(f"{args.run_dir} already sees the frame")
    if os.path.exists(args.out_dir):
        parser.error(f"{args.out_dir} exists")
    config = dataclasses.replace(opened.config, frame_input=True, run_dir=os.path.abspath(args.out_dir))
    arrays = dict(opened.arrays)
    second_moments = ("cache_", "v_")  # RMSProp's and Adam's: the ones a zero start would inflate
    for name in pong.param_shapes(config):
        if name not in ("w1", "value_w1"):
            continue
        for prefix in ("", "grad_") + pong.OPTIMIZER_STATE[config.optimizer]:
            rows = arrays[prefix + name]
            added = np.zeros_like(rows)
            if prefix in second_moments:
                added[:] = rows.mean(axis=0)
            arrays[prefix + name] = np.vstack((rows, added))
    os.makedirs(args.out_dir)
    shutil.copy(os.path.join(args.run_dir, "progress.csv"), args.out_dir)
    meta = dict(opened.meta, config=dataclasses.asdict(config))
    runs.save_checkpoint(os.path.join(args.out_dir, "checkpoint.npz"), arrays, meta)
    runs.write_json(os.path.join(args.out_dir, "config.json"), {"config": dataclasses.asdict(config), "task": "pong"})
    print(f"{args.out_dir}: {pong.param_shapes(config)['w1']} w1, from {args.run_dir}")


if __name__ == "__main__":
    main()
