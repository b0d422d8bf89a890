"""Learning curves from runs' progress.csv (matplotlib, Agg backend)."""
import os

from pgcore import runs


def read_progress(run_dir):
    """The run's progress.csv as columns (`runs.read_progress`), with at least one finished episode."""
    columns = runs.read_progress(run_dir)
    if not len(columns["episode"]):
        raise runs.RunError(f"{os.path.join(run_dir, 'progress.csv')} has no finished episodes yet")
    return columns


def plot_run(run_dir, output=None):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    progress = read_progress(run_dir)
    output = output or os.path.join(run_dir, "learning_curve.png")
    figure, (by_frames, by_time) = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for axis, x, label in ((by_frames, [f / 1e6 for f in progress["frames"]], "emulator frames (millions)"),
                           (by_time, [s / 60 for s in progress["wall_s"]], "wall time (minutes)")):
        axis.plot(x, progress["reward"], ".", markersize=2, alpha=0.3, color="tab:gray", label="episode reward")
        axis.plot(x, progress["running_reward"], color="tab:blue", linewidth=2, label="running reward")
        axis.set_xlabel(label)
        axis.grid(alpha=0.3)
    by_frames.set_ylabel("reward (points for - against)")
    by_frames.legend(loc="upper left")
    figure.suptitle(f"{os.path.basename(os.path.abspath(run_dir))}: {len(progress['episode'])} episodes")
    figure.tight_layout()
    figure.savefig(output, dpi=100)
    plt.close(figure)
    return output


def plot_runs(run_dirs, output):
    """The running rewards of several runs on shared axes (by frames and by wall time)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = [(os.path.basename(os.path.abspath(d)), read_progress(d)) for d in run_dirs]
    figure, (by_frames, by_time) = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for name, progress in curves:
        by_frames.plot([f / 1e6 for f in progress["frames"]], progress["running_reward"], linewidth=2, label=name)
        by_time.plot([s / 60 for s in progress["wall_s"]], progress["running_reward"], linewidth=2, label=name)
    by_frames.set_xlabel("emulator frames (millions)")
    by_time.set_xlabel("wall time (minutes)")
    by_frames.set_ylabel("running reward")
    for axis in (by_frames, by_time):
        axis.grid(alpha=0.3)
    by_frames.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(output, dpi=100)
    plt.close(figure)
    return output
