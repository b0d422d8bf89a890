"""Atari runs' scores at given minutes of training, beside random play.

For each run directory (pgcore-train atari ... --run-dir RUN, or vs_sb3.py's), a row, grouped by
game: the settings it ran with off Atari's defaults (as flags of pgcore-train atari; "RL Zoo's"
for SB3), the mean score of the last --last games that had ended by each of --minutes minutes of
training (progress.csv's wall_s), with the run's frames then, or by each of --frames emulator
frames (a run that had not reached a mark shows "-"), and its frames a second over the whole run. With --random N, each
game's random play too: the mean score of N games of uniformly random actions (its minimal
action set) under the runs' settings (frameskip 4, sticky actions 0.25), on N emulators seeded
from --seed. With --plot OUT.png, the same mean against minutes of training (or frames, with
--frames), a panel per game and a line per run, random play dotted.

usage: python benchmarks/learning/atari_scores.py RUN [RUN ...] [--minutes 10,20,30 | --frames N,...] [--last 100]
       [--random 100] [--seed 10000] [--plot OUT.png]
"""
import argparse
import io
import json
import os

import numpy as np

from pgcore import runs


def read_run(run_dir):
    """(settings: game (a ROM name), seed, frameskip, sticky, who (pgcore or SB3 PPO); progress.csv's
    columns: name -> float array, progress.csv or progress.csv.gz) of a pgcore-train atari run directory or
    a vs_sb3.py one."""
    with open(os.path.join(run_dir, "config.json")) as file:
        saved = json.load(file)
    if "config" in saved:
        config = {name: saved["config"][name] for name in ("game", "seed", "frameskip", "sticky")} | {
            "who": "pgcore", "settings": " ".join(flags_off_defaults(saved["config"])) or "defaults"}
    else:  # vs_sb3.py's
        from pgcore import atari

        settings = saved["settings"]
        config = {"game": atari.rom_id(settings["game"]), "seed": settings["seed"],
                  "frameskip": saved["env"]["frameskip"], "sticky": settings["sticky"], "who": "SB3 PPO",
                  "settings": "RL Zoo's", "ended": {name: saved["result"][name] for name in ("wall_s", "frames")
                                                    if name in saved.get("result", {})}}
    return config, {name: values.astype(np.float64) for name, values in runs.read_progress(run_dir).items()}


def flags_off_defaults(saved):
    """The flags of pgcore-train atari that give a saved config's learning settings where they are
    not a new run's defaults for its game (where it stops, its threads and checkpoints left out)."""
    from pgcore import tasks

    task = tasks.get("atari")
    config = task.config_from_saved(saved)
    ignored = {"seed", "game", "threads", "checkpoint_every", "checkpoint_minutes"} | {
        opt.name for opt in task.options() if opt.metadata["run"]}
    default = task.make_config(**{name: getattr(config, name) for name in ignored})
    return task.changed_flags(default, config)


def scores_at(columns, mark, last, column="wall_s", ended=None):
    """(mean score of the last `last` games ended by `mark` of `column` (wall_s: seconds, frames),
    frames then), or None before the first or when the run stopped short of the mark: its last
    game's, or where the run recorded it (`ended`: vs_sb3.py's result), its own end."""
    ended_games = np.flatnonzero(columns[column] <= mark)
    if len(ended_games) == 0 or max(columns[column][-1], (ended or {}).get(column, 0)) < mark * 0.98:
        return None
    upto = ended_games[-1] + 1
    return float(last_mean(columns["reward"][:upto], last)[-1]), float(columns["frames"][upto - 1])


def last_mean(rewards, last):
    """At each game, the mean score of the `last` games ended by it (fewer at the start)."""
    sums = np.cumsum(np.concatenate(([0.0], rewards)))
    ends = np.arange(1, len(rewards) + 1)
    starts = np.maximum(0, ends - last)
    return (sums[ends] - sums[starts]) / (ends - starts)


def plot_runs(runs_read, random_scores, last, by_frames, output):
    """A panel per game: each run's mean of the last `last` games against minutes (or frames)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    games = sorted({config["game"] for _, config, _ in runs_read})
    columns_count = min(2, len(games))
    rows_count = -(-len(games) // columns_count)
    figure, axes = plt.subplots(rows_count, columns_count, figsize=(6 * columns_count, 3.6 * rows_count),
                                squeeze=False)
    for axis, game in zip(axes.flat, games):
        for run_dir, config, columns in runs_read:
            if config["game"] == game:
                x = columns["frames"] / 1e6 if by_frames else columns["wall_s"] / 60
                axis.plot(x, last_mean(columns["reward"], last), linewidth=1.5,
                          label=f"{config['who']} seed {config['seed']} ({os.path.basename(os.path.normpath(run_dir))})")
        if game in random_scores:
            axis.axhline(random_scores[game], color="gray", linestyle=":", label="random play")
        axis.set_title(game)
        axis.set_xlabel("emulator frames (millions)" if by_frames else "minutes of training")
        axis.set_ylabel(f"mean of the last {last} games")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7, loc="best")
    for axis in axes.flat[len(games):]:
        axis.set_visible(False)
    figure.tight_layout()
    drawn = io.BytesIO()
    figure.savefig(drawn, dpi=80)
    plt.close(figure)
    from PIL import Image

    Image.open(drawn).quantize(colors=32).save(output, optimize=True)  # (a third of the bytes: a page in docs/)


def random_play(game, episodes, seed, frameskip=4, sticky=0.25):
    """Mean score of `episodes` games of uniformly random actions, one game on each of as many emulators."""
    from pgcore import agent, atari

    config = agent.make_config("atari", game=game, envs=episodes, frameskip=frameskip, sticky=sticky, sync=True)
    envs = atari.make_envs(config)
    rng = np.random.default_rng(seed)
    count = int(envs.single_action_space.n)
    scores, done = np.zeros(episodes), np.zeros(episodes, dtype=bool)
    try:
        envs.reset(seed=seed)
        while not done.all():
            _, rewards, terminated, truncated, _ = envs.step(rng.integers(0, count, episodes).astype(np.int32))
            scores += np.where(done, 0, rewards)
            done |= terminated | truncated
    finally:
        envs.close()
    return float(scores.mean())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--minutes", default="10,20,30", help="comma-separated minutes of training")
    parser.add_argument("--frames", default="", help="comma-separated emulator frames, marks instead of --minutes")
    parser.add_argument("--last", type=int, default=100, help="games averaged at each mark")
    parser.add_argument("--random", type=int, default=0, help="games of random play per game (0: none)")
    parser.add_argument("--seed", type=int, default=10_000, help="the random play's seed")
    parser.add_argument("--plot", default="", help="also draw the curves into this PNG")
    args = parser.parse_args()
    by_frames = bool(args.frames)
    marks = [float(m) for m in (args.frames or args.minutes).split(",") if m]
    labels = [f"{m / 1e6:g} M frames" if by_frames else f"{m:g} min" for m in marks]
    print("| run | who | game | settings | seed | " + " | ".join(labels) + " | frames/s | random play |")
    print("| --- | --- | --- | --- | ---: | " + " | ".join("---:" for _ in marks) + " | ---: | ---: |")
    random_scores, runs_read = {}, [(run_dir, *read_run(run_dir)) for run_dir in args.runs]
    runs_read.sort(key=lambda run: run[1]["game"])  # (stable: within a game, as given)
    for run_dir, config, columns in runs_read:
        game = config["game"]
        if args.random and game not in random_scores:
            random_scores[game] = random_play(game, args.random, args.seed, config["frameskip"], config["sticky"])
        cells = []
        for mark in marks:
            at = (scores_at(columns, mark, args.last, "frames", config.get("ended")) if by_frames
                  else scores_at(columns, mark * 60, args.last, "wall_s", config.get("ended")))
            cells.append("-" if at is None else f"{at[0]:.1f}" if by_frames else f"{at[0]:.1f} ({at[1] / 1e6:.1f} M)")
        random_cell = f"{random_scores[game]:.1f}" if game in random_scores else "-"
        speed = columns["frames"][-1] / columns["wall_s"][-1]
        print(f"| {run_dir} | {config['who']} | {game} | {config['settings']} | {config['seed']} | "
              + " | ".join(cells) + f" | {speed:,.0f} | {random_cell} |")
    if args.plot:
        plot_runs(runs_read, random_scores, args.last, by_frames, args.plot)
        print(f"curves: {args.plot}")


if __name__ == "__main__":
    main()
