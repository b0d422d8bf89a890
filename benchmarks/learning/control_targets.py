"""Train each of the other tasks to its target and report the wall time, per backend.

Each run is `pgcore-train TASK --seed S --run-dir ...` in a child process (its default,
tuned settings), then the target's evaluation on the saved policy:

  frozenlake         greedy success rate >= 0.70 over 1000 episodes (4x4, slippery)
  taxi               greedy mean return >= 7.0 over 100 episodes
  cliffwalking       greedy return -13 (the optimal path)
  cartpole           mean return >= 475 over the last 100 training episodes
  acrobot            greedy mean return >= -100 over 100 episodes
  inverted-pendulum  greedy mean return >= 950 over 20 episodes

Usage: python benchmarks/learning/control_targets.py [--tasks cartpole,taxi] [--seeds 0,1]
           [--backends cython,numpy] [--out results.md] [--max-episodes N]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from pgcore import runs
from pgcore.agent import Agent

TARGETS = {
    # task: (what is measured, evaluation episodes (0: the training curve), threshold)
    "frozenlake": ("greedy success rate, 1000 episodes", 1000, 0.70),
    "taxi": ("greedy mean return, 100 episodes", 100, 7.0),
    "cliffwalking": ("greedy return", 1, -13.0),
    "cartpole": ("mean return, last 100 training episodes", 0, 475.0),
    "acrobot": ("greedy mean return, 100 episodes", 100, -100.0),
    "inverted-pendulum": ("greedy mean return, 20 episodes", 20, 950.0),
}
EVALUATION_SEED = 10_000  # evaluation episodes never reuse a training seed


def run_task(task, seed, backend, run_dir, max_episodes=None):
    script = os.path.join(os.path.dirname(sys.executable), "pgcore-train")
    budget = [] if max_episodes is None else ["--max-episodes", str(max_episodes)]
    start = time.perf_counter()
    subprocess.run([script, task, "--seed", str(seed), "--backend", backend, "--run-dir", run_dir, "--quiet", *budget],
                   check=True)
    wall = time.perf_counter() - start
    what, episodes, threshold = TARGETS[task]
    progress = runs.read_progress(run_dir)
    if episodes == 0:
        value = float(np.mean(progress["reward"][-100:]))
    else:
        value = float(np.mean(Agent.load(run_dir).evaluate(episodes, EVALUATION_SEED)))
    return {"task": task, "seed": seed, "backend": backend, "episodes": len(progress["episode"]),
            "steps": int(progress["steps"][-1]), "wall_s": wall, "measure": what, "value": value, "target": threshold,
            "met": value >= threshold}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(TARGETS))
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--backends", default="cython,numpy")
    parser.add_argument("--out", default=None, help="also write the markdown table here")
    parser.add_argument("--max-episodes", type=int, default=None,
                        help="train each task this many episodes instead of its default budget (a quick check of "
                             "the script: the targets are not met)")
    args = parser.parse_args(argv)
    tasks = args.tasks.split(",")
    unknown = [t for t in tasks if t not in TARGETS]
    if unknown:
        parser.error(f"unknown task(s) {', '.join(unknown)}; known: {', '.join(TARGETS)}")
    lines = ["| task | seed | backend | episodes | steps | wall s | measure | value | target | met |",
             "| --- | ---: | --- | ---: | ---: | ---: | --- | ---: | ---: | --- |"]
    print(f"CPU: {runs.cpu_name()}, {os.cpu_count()} logical cores", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        for task in tasks:
            for seed in map(int, args.seeds.split(",")):
                for backend in args.backends.split(","):
                    r = run_task(task, seed, backend, os.path.join(scratch, f"{task}-{seed}-{backend}"),
                                 args.max_episodes)
                    lines.append(f"| {task} | {seed} | {backend} | {r['episodes']:,} | {r['steps']:,} | "
                                 f"{r['wall_s']:.1f} | {r['measure']} | {r['value']:.3f} | {r['target']:g} | "
                                 f"{'yes' if r['met'] else 'NO'} |")
                    print(lines[-1], flush=True)
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
