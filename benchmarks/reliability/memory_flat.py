"""Resident memory over a long run: it must stay flat (within 5% after warm-up).

Starts `pgcore-train TASK` (by default Pong with a small config: 4 emulators, 32 hidden units,
an update and a checkpoint every few episodes) for --episodes episodes, samples the child's
VmRSS from /proc every --interval seconds next to the episode count in its progress.csv, and
reports the RSS after warm-up (the first --warmup episodes), at the end, the change in percent
and the least-squares slope in KiB per episode.

Any other arguments go to pgcore-train, e.g. `--lr 1e-9` to hold the policy (and so the
episode lengths) still: the trainer's episode buffers grow (by doubling) to the longest episode
seen, so a policy that learns to rally longer also raises the RSS, without any leak.

Usage: python benchmarks/reliability/memory_flat.py [--task pong] [--episodes 1000] [--warmup 100] [TRAIN ARGS]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

SMALL = {"pong": ["--envs", "4", "--hidden", "32", "--batch-episodes", "4", "--checkpoint-every", "20"],
         "cartpole": ["--checkpoint-every", "100"]}


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def episodes_done(run_dir):
    try:
        with open(os.path.join(run_dir, "progress.csv"), "rb") as f:
            return max(0, f.read().count(b"\n") - 1)
    except FileNotFoundError:
        return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="pong", choices=list(SMALL))
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--interval", type=float, default=1.0)
    args, train_args = parser.parse_known_args(argv)
    script = os.path.join(os.path.dirname(sys.executable), "pgcore-train")
    samples = []  # (episodes, rss KiB)
    with tempfile.TemporaryDirectory() as scratch:
        run_dir = os.path.join(scratch, "run")
        child = subprocess.Popen([script, args.task, "--run-dir", run_dir, "--quiet", "--max-episodes",
                                  str(args.episodes), *SMALL[args.task], *train_args])
        try:
            while child.poll() is None:
                try:
                    samples.append((episodes_done(run_dir), rss_kib(child.pid)))
                except (FileNotFoundError, ProcessLookupError, RuntimeError):
                    break
                time.sleep(args.interval)
        finally:
            child.wait()
    if child.returncode != 0:
        print(f"training failed (exit {child.returncode})", file=sys.stderr)
        return 1
    episodes, rss = np.array(samples, dtype=float).T
    steady = episodes >= args.warmup
    if steady.sum() < 3:
        print("too few samples after warm-up; run more episodes", file=sys.stderr)
        return 1
    slope = np.polyfit(episodes[steady], rss[steady], 1)[0]
    start, end, peak = rss[steady][0], rss[steady][-1], rss[steady].max()
    change = 100 * (end - start) / start
    print(f"{args.task} {' '.join(train_args)}: {int(episodes[-1])} episodes, {len(samples)} samples; RSS after {args.warmup} episodes "
          f"{start / 1024:.1f} MiB, at the end {end / 1024:.1f} MiB ({change:+.2f}%), peak {peak / 1024:.1f} MiB; "
          f"slope {slope:+.3f} KiB/episode -> {'flat (within 5%)' if abs(peak - start) <= 0.05 * start else 'NOT flat'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
