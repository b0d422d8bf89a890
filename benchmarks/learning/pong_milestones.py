"""When a Pong run's running reward first passed each threshold (from its progress.csv).

usage: python benchmarks/learning/pong_milestones.py RUN_DIR [--thresholds -18,-15,-10,-5,0]
Prints a Markdown table: threshold, episode, emulator frames, wall time.
"""
import argparse

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


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir")
    parser.add_argument("--thresholds", default="-18,-15,-10,-5,0")
    args = parser.parse_args()
    progress = read_progress(args.run_dir)
    print("| running reward above | episodes | emulator frames | wall time |\n| --- | ---: | ---: | ---: |")
    for threshold, episode, frames, wall in milestones(progress, [float(t) for t in args.thresholds.split(",")]):
        if episode is None:
            print(f"| {threshold:g} | not yet | | |")
        else:
            print(f"| {threshold:g} | {episode:,} | {frames / 1e6:.1f} M | {wall / 60:.0f} min |")
    last = len(progress["episode"]) - 1
    print(f"\nlast row: episode {int(progress['episode'][last]):,}, {progress['frames'][last] / 1e6:.1f} M frames, "
          f"{progress['wall_s'][last] / 60:.0f} min, running reward {progress['running_reward'][last]:.2f}")


if __name__ == "__main__":
    main()
