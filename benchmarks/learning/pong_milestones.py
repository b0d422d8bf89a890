"""When a Pong run's running reward first passed each threshold (from its progress.csv); or,
with --at-frames, several runs' running rewards when each first had that many frames.

usage: python benchmarks/learning/pong_milestones.py RUN_DIR [--thresholds -18,-15,-10,-5,0]
       python benchmarks/learning/pong_milestones.py RUN_DIR... [--thresholds ...]   (seeds of one recipe)
       python benchmarks/learning/pong_milestones.py RUN_DIR... --at-frames 1,2,3,4,5   (millions)
       python benchmarks/learning/pong_milestones.py RUN_DIR... --scores-after 28.59   (millions)
Prints a Markdown table: threshold, episode, emulator frames, wall time; with several runs, a run
per row (frames and wall time to each threshold, the best running reward, the median over runs).
--scores-after compares runs continued from one checkpoint: the mean game score of each run's
episodes after that many frames, with its standard error, and by quarters of those episodes.
"""
import argparse
import statistics

import numpy as np

from pgcore.plot import read_progress


def milestones(progress, thresholds):
    rows = []
    for threshold in thresholds:
        hit = next((i for i, value in enumerate(progress["running_reward"]) if value > threshold), None)
        if hit is None:
            rows.append((threshold, None, None, None))
        else:
            rows.append((threshold, int(progress["episode"][hit]), int(progress["frames"][hit]), progress["wall_s"][hit]))
    return rows


def at_frames(progress, marks):
    """The running reward of the first row with at least each mark's frames (None: not reached)."""
    rows = []
    for mark in marks:
        hit = next((i for i, frames in enumerate(progress["frames"]) if frames >= mark), None)
        rows.append(None if hit is None else float(progress["running_reward"][hit]))
    return rows


def print_at_frames(run_dirs, millions):
    print("| run | " + " | ".join(f"{m:g} M" for m in millions) + " | last row |")
    print("| --- |" + " ---: |" * len(millions) + " --- |")
    for run_dir in run_dirs:
        progress = read_progress(run_dir)
        values = at_frames(progress, [m * 1e6 for m in millions])
        cells = " | ".join("-" if v is None else f"{v:.1f}" for v in values)
        print(f"| {run_dir} | {cells} | {progress['running_reward'][-1]:.1f} at {progress['frames'][-1] / 1e6:.1f} M |")


def print_scores_after(run_dirs, millions):
    print(f"| run | episodes after {millions:g} M frames | to frames | mean score | by quarters |")
    print("| --- | ---: | ---: | --- | --- |")
    for run_dir in run_dirs:
        progress = read_progress(run_dir)
        scores = np.asarray(progress["reward"])[np.asarray(progress["frames"]) > millions * 1e6]
        if len(scores) < 2:
            print(f"| {run_dir} | {len(scores)} | | | |")
            continue
        quarters = ", ".join(f"{part.mean():+.2f}" for part in np.array_split(scores, 4))
        error = scores.std(ddof=1) / np.sqrt(len(scores))
        print(f"| {run_dir} | {len(scores)} | {progress['frames'][-1] / 1e6:.1f} M | {scores.mean():+.2f} "
              f"± {error:.2f} | {quarters} |")


def _median(values):
    """The median of the runs' values; None (never got there) counts as later than all, and is
    the median when a middle value is None."""
    ordered = sorted(values, key=lambda value: (value is None, value or 0))
    middle = ordered[(len(ordered) - 1) // 2: len(ordered) // 2 + 1]
    return None if None in middle else statistics.fmean(middle)


def _when(frames, wall):
    return "not reached" if frames is None else f"{frames / 1e6:.1f} M / {wall / 60:.0f} min"


def print_runs_to_thresholds(run_dirs, thresholds):
    """A row per run: frames (millions) / minutes to each threshold, and the best running reward."""
    print("| run | " + " | ".join(f"{t:+g}" if t else "0" for t in thresholds) + " | best running reward | last row |")
    print("| --- |" + " ---: |" * len(thresholds) + " --- | --- |")
    reached = []
    for run_dir in run_dirs:
        progress = read_progress(run_dir)
        rows = milestones(progress, thresholds)
        reached.append(rows)
        cells = " | ".join(_when(frames, wall) for _, _, frames, wall in rows)
        best = max(range(len(progress["episode"])), key=lambda i: progress["running_reward"][i])
        rewards_at = [f"{progress['running_reward'][i]:+.1f} at {_when(progress['frames'][i], progress['wall_s'][i])}"
                      for i in (best, len(progress["episode"]) - 1)]
        print(f"| {run_dir} | {cells} | {' | '.join(rewards_at)} |")
    medians = [_when(_median([runs[i][2] for runs in reached]), _median([runs[i][3] for runs in reached]))
               for i in range(len(thresholds))]
    print(f"| median of {len(run_dirs)} | " + " | ".join(medians) + " | | |")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", nargs="+")
    parser.add_argument("--thresholds", default="-18,-15,-10,-5,0")
    parser.add_argument("--at-frames", default=None, help="millions of frames, comma-separated: a row per run")
    parser.add_argument("--scores-after", type=float, default=None,
                        help="millions of frames: the mean score of each run's episodes after them")
    args = parser.parse_args()
    if args.scores_after is not None:
        return print_scores_after(args.run_dir, args.scores_after)
    if args.at_frames:
        return print_at_frames(args.run_dir, [float(m) for m in args.at_frames.split(",")])
    thresholds = [float(t) for t in args.thresholds.split(",")]
    if len(args.run_dir) > 1:
        return print_runs_to_thresholds(args.run_dir, thresholds)
    progress = read_progress(args.run_dir[0])
    print("| running reward above | episodes | emulator frames | wall time |\n| --- | ---: | ---: | ---: |")
    for threshold, episode, frames, wall in milestones(progress, thresholds):
        if episode is None:
            print(f"| {threshold:g} | not yet | | |")
        else:
            print(f"| {threshold:g} | {episode:,} | {frames / 1e6:.1f} M | {wall / 60:.0f} min |")
    last = len(progress["episode"]) - 1
    print(f"\nlast row: episode {int(progress['episode'][last]):,}, {progress['frames'][last] / 1e6:.1f} M frames, "
          f"{progress['wall_s'][last] / 60:.0f} min, running reward {progress['running_reward'][last]:.2f}")


if __name__ == "__main__":
    main()
