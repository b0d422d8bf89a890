"""A pilot's starting point: copy a Pong run into a new run directory with one change to its net
or its recipe, so that the copy, resumed, continues the run's counters and progress.csv with it.

- --frame-input: the net also sees each frame (12800 rows of w1 instead of 6400). The frame's rows
  of w1 (and of the value net's value_w1) start at zero.
- --hidden N: N hidden units instead of the run's. The new units' columns of w1 start as a new
  run's would (N(0, 1) / sqrt(inputs), seeded by --seed); their entries of w2 start at zero.
- --logit-scale F: w2 times F, so the copy's logits are F times the run's: it plays as the run
  would at a sampling temperature of 1 / F (sharper for F > 1). The RMSProp cache (or Adam second
  moments) of w1 are scaled to match, as w1's gradients are now F times larger.
- --set NAME=VALUE (repeatable): a recipe setting the run cannot change on --resume, such as
  batch_episodes, epochs, minibatches, clip, gamma or advantage. With advantage=gae the copy gets
  a new value net, drawn as a new run's would be (seeded by --seed), its optimizer state empty.

The first two leave the copy playing exactly as the run did. The added entries' RMSProp cache (or
Adam second moment) starts at the mean of the existing ones' (of the same row or unit of w1), so
their first steps are not the 1 / sqrt(1 - decay) = 10x steps of an empty cache. Then
`pgcore-train pong --resume OUT_DIR` continues the copy.

    python benchmarks/learning/pong_warm_start.py RUN_DIR OUT_DIR [--frame-input] [--hidden N]
        [--logit-scale F] [--set NAME=VALUE ...]
"""
import argparse
import dataclasses
import os
import shutil

import numpy as np

from pgcore import pong, runs
from pgcore.agent import open_checkpoint

SECOND_MOMENTS = ("cache_", "v_")  # RMSProp's and Adam's: the ones a zero start would inflate
# What --set may not change: the net's shapes (--frame-input and --hidden do that), its number
# type and optimizer (their state is in the checkpoint), and where the run lives.
FIXED = {"task", "hidden", "frame_input", "actions", "value_hidden", "dtype", "optimizer", "run_dir"}


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


def parse_settings(parser, pairs, config):
    """{name: value} from NAME=VALUE pairs, each value of the type of the config's own."""
    settings = {}
    for pair in pairs:
        name, _, text = pair.partition("=")
        if not hasattr(config, name) or not text:
            parser.error(f"--set takes NAME=VALUE with NAME a setting of the run, not {pair!r}")
        if name in FIXED:
            parser.error(f"--set cannot change {name}" + (f": use --{name.replace('_', '-')}"
                                                           if name in ("hidden", "frame_input") else ""))
        kind = type(getattr(config, name))
        try:
            settings[name] = {"true": True, "false": False}[text.lower()] if kind is bool else kind(text)
        except (KeyError, ValueError):
            parser.error(f"--set {name} takes a {kind.__name__}, not {text!r}")
    return settings


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("out_dir")
    parser.add_argument("--frame-input", action="store_true", help="add the frame's 6400 inputs")
    parser.add_argument("--hidden", type=int, help="hidden units of the copy (more than the run's)")
    parser.add_argument("--logit-scale", type=float, help="multiply the policy's logits (w2) by this")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a recipe setting of the copy (repeatable)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the new hidden units and a new value net")
    args = parser.parse_args()
    opened = open_checkpoint(args.run_dir, for_training=True)
    old = opened.config
    settings = parse_settings(parser, args.set, old)
    if not (args.frame_input or args.hidden is not None or args.logit_scale is not None or settings):
        parser.error("nothing to change: give --frame-input, --hidden N, --logit-scale F or --set NAME=VALUE")
    if args.frame_input and old.frame_input:
        parser.error(f"{args.run_dir} already sees the frame")
    if args.hidden is not None and args.hidden <= old.hidden:
        parser.error(f"--hidden must be more than the run's {old.hidden}, not {args.hidden}")
    if args.logit_scale is not None and not args.logit_scale > 0:
        parser.error(f"--logit-scale must be positive, not {args.logit_scale}")
    if os.path.exists(args.out_dir):
        parser.error(f"{args.out_dir} exists")
    config = dataclasses.replace(old, frame_input=old.frame_input or args.frame_input,
                                 hidden=args.hidden or old.hidden, run_dir=os.path.abspath(args.out_dir),
                                 **settings)
    try:
        pong.check_config(config)
    except ValueError as error:
        parser.error(str(error))
    # new parameters (the new hidden units' first-layer weights, a new value net), drawn as
    # init_params draws a new run's
    new_params = pong.init_params(config, np.random.default_rng(args.seed))
    new_params["w1"][:, :old.hidden] = 0
    new_params["w1"][pong.input_size(old):] = 0
    arrays = dict(opened.arrays)
    state_prefixes = ("", "grad_") + pong.OPTIMIZER_STATE[config.optimizer]
    for name, shape in pong.param_shapes(config).items():
        for prefix in state_prefixes:
            if prefix + name not in arrays:  # a new value net
                arrays[prefix + name] = new_params[name] if prefix == "" else np.zeros_like(new_params[name])
            else:
                arrays[prefix + name] = widened(arrays[prefix + name], shape, prefix,
                                                new_params[name] if name == "w1" else None)
    if args.logit_scale is not None:
        arrays["w2"] = arrays["w2"] * np.float32(args.logit_scale).astype(arrays["w2"].dtype)
        for prefix, power in (("cache_", 2), ("m_", 1), ("v_", 2)):  # RMSProp's, Adam's first and second moments
            if prefix + "w1" in arrays:
                arrays[prefix + "w1"] = arrays[prefix + "w1"] * arrays[prefix + "w1"].dtype.type(args.logit_scale ** power)
    arrays = {name: array for name, array in arrays.items() if name in pong.checkpoint_arrays(config)}
    os.makedirs(args.out_dir)
    shutil.copy(os.path.join(args.run_dir, "progress.csv"), args.out_dir)
    meta = dict(opened.meta, config=dataclasses.asdict(config))
    runs.save_checkpoint(os.path.join(args.out_dir, "checkpoint.npz"), arrays, meta)
    runs.write_json(os.path.join(args.out_dir, "config.json"), {"config": dataclasses.asdict(config), "task": "pong"})
    changed = {name: getattr(config, name) for name in ("hidden", "frame_input") if getattr(config, name) != getattr(old, name)}
    changed |= settings | ({"logit_scale": args.logit_scale} if args.logit_scale is not None else {})
    print(f"{args.out_dir}: from {args.run_dir}, changed {changed}")


if __name__ == "__main__":
    main()
