"""A pilot's starting point: copy a Pong run into a new run directory whose policy net is wider
(more inputs with --frame-input, more hidden units with --hidden), its policy unchanged.

- --frame-input: the net also sees each frame (12800 rows of w1 instead of 6400). The frame's rows
  of w1 (and of the value net's value_w1) start at zero.
- --hidden N: N hidden units instead of the run's. The new units' columns of w1 start as a new
  run's would (N(0, 1) / sqrt(inputs), seeded by --seed); their entries of w2 start at zero.

Either way the copy plays exactly as the run did. The added entries' RMSProp cache (or Adam
second moment) starts at the mean of the existing ones' (of the same row or unit of w1), so their first steps are
not the 1 / sqrt(1 - decay) = 10x steps of an empty cache. Resuming the copy
(`pgcore-train pong --resume OUT`) continues the run's counters and progress.csv.

    python benchmarks/learning/widen_pong_net.py RUN_DIR OUT_DIR [--frame-input] [--hidden N]
"""
import argparse
import dataclasses
import os
import shutil

import numpy as np

from pgcore import pong, runs
from pgcore.agent import open_checkpoint

SECOND_MOMENTS = ("cache_", "v_")  # RMSProp's and Adam's: the ones a zero start would inflate


def widened(array, shape, prefix, new_values=None):
    """`array` grown to `shape` (along its leading rows, then its columns): the added entries are
    `new_values` (parameters), the mean of the existing entries (second moments) or zero."""
    grown = np.zeros(shape, dtype=array.dtype)
    if prefix in SECOND_MOMENTS:
        grown[...] = array.mean()
        if array.ndim == 2:  # w1: new units per input row, new input rows per unit
            rows, units = array.shape
            grown[:rows] = array.mean(axis=1, keepdims=True)
            grown[rows:, :units] = array.mean(axis=0)
    elif prefix == "" and new_values is not None:
        grown[...] = new_values
    grown[tuple(slice(0, n) for n in array.shape)] = array
    return grown


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("out_dir")
    parser.add_argument("--frame-input", action="store_true", help="add the frame's 6400 inputs")
    parser.add_argument("--hidden", type=int, help="hidden units of the copy (more than the run's)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the new hidden units' w1 columns")
    args = parser.parse_args()
    opened = open_checkpoint(args.run_dir, for_training=True)
    old = opened.config
    if not args.frame_input and args.hidden is None:
        parser.error("nothing to widen: give --frame-input, --hidden N or both")
    if args.frame_input and old.frame_input:
        parser.error(f"{args.run_dir} already sees the frame")
    if args.hidden is not None and args.hidden <= old.hidden:
        parser.error(f"--hidden must be more than the run's {old.hidden}, not {args.hidden}")
    if os.path.exists(args.out_dir):
        parser.error(f"{args.out_dir} exists")
    config = dataclasses.replace(old, frame_input=old.frame_input or args.frame_input,
                                 hidden=args.hidden or old.hidden, run_dir=os.path.abspath(args.out_dir))
    # the new hidden units' first-layer weights, drawn as init_params draws a new run's
    new_units = pong.init_params(config, np.random.default_rng(args.seed))["w1"]
    new_units[:, :old.hidden] = 0
    new_units[pong.input_size(old):] = 0
    arrays = dict(opened.arrays)
    for name, shape in pong.param_shapes(config).items():
        for prefix in ("", "grad_") + pong.OPTIMIZER_STATE[config.optimizer]:
            arrays[prefix + name] = widened(arrays[prefix + name], shape, prefix,
                                            new_units if name == "w1" else None)
    os.makedirs(args.out_dir)
    shutil.copy(os.path.join(args.run_dir, "progress.csv"), args.out_dir)
    meta = dict(opened.meta, config=dataclasses.asdict(config))
    runs.save_checkpoint(os.path.join(args.out_dir, "checkpoint.npz"), arrays, meta)
    runs.write_json(os.path.join(args.out_dir, "config.json"), {"config": dataclasses.asdict(config), "task": "pong"})
    print(f"{args.out_dir}: w1 {pong.param_shapes(config)['w1']}, from {args.run_dir}")


if __name__ == "__main__":
    main()
