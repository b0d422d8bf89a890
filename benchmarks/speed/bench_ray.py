"""Pong on Ray workers (`--ray local`) against the single-process trainer, and the learner's
capacity: how many frames/s one learner core absorbs.

Throughput. Each kind runs in its own process for about --seconds; kinds are interleaved
over --repeats rounds; the table gives medians and ratios of medians from this one run. Every
kind runs the same number of emulators (--envs in all):

  single   pgcore.pong.train in one process (what `pgcore-train pong` runs)
  ray1     --ray local --workers 1: one worker with --envs emulators on --threads threads
  ray2     --ray local --workers 2: two workers of --envs / 2 emulators on --threads / 2 threads
  rayK     (with --workers K) K workers of --envs / K emulators, one thread each

Rates are steady state, from the first to the last finished episode (Ray's start-up and the
workers' emulator start are left out, as the emulators' start is for the single process).

Learner capacity. Real episodes are played by a Collector with the initial weights (a
beginner's episodes, ~900 agent steps); then pong.Learner, with the default settings, learns
from whole batches of them (returns, advantages, the passes over each batch with their sparse
forward and backward, the updates) on this process's one thread. Capacity = emulator frames per
episode / seconds per episode.

usage: python benchmarks/speed/bench_ray.py [--seconds 40] [--repeats 3] [--envs 16] [--threads 2]
                                             [--workers 1,2] [--capacity-batches 2] [--batch-episodes 10]
(a smoke test, in seconds: --seconds 2 --repeats 1 --envs 2 --threads 1 --workers 1 --capacity-batches 1
--batch-episodes 1)
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_train import steady_state  # noqa: E402


def kind_settings(kind, args):
    """The PongConfig settings of a kind: the same emulator count in all."""
    if kind == "single":
        return {"envs": args.envs, "threads": args.threads}
    workers = int(kind[3:])
    return {"ray": "local", "workers": workers, "envs": max(1, args.envs // workers),
            "threads": max(1, args.threads // workers)}


class _Counters:
    """What pong.Learner asks of runs.Run, without files: counters, an RNG, updates applied."""

    def __init__(self):
        from pgcore import pong

        # every counter a Pong run keeps (runs.Run's and pong's own), as a new run starts them
        self.counters = dict.fromkeys(pong.COUNTER_TYPES, 0) | {"skipped_updates": 0, "running_reward": None}
        self.rng = np.random.default_rng(0)

    def restore(self, new_state):
        return new_state()

    def apply_update(self, grads, step):
        step()
        self.counters["updates"] += 1

    def finish_episode(self, reward, extra=()):
        pass

    def maybe_checkpoint(self):
        pass


def learner_capacity(args):
    """(frames/s one learner thread absorbs, ms per episode, frames per episode)."""
    import pgcore
    from pgcore import pong
    from pgcore.backends import load_backend

    kernels = load_backend("cython")
    pgcore.set_num_threads(1)  # the learner's kernels run on its one thread, as in training
    config = pong.make_config("fast", envs=args.envs, threads=args.threads, batch_episodes=args.batch_episodes)
    learner = pong.Learner(config, kernels, _Counters())
    collector = pong.Collector(config, kernels, np.random.default_rng(0), 0)
    episodes = []
    try:
        while len(episodes) < args.capacity_batches * config.batch_episodes:
            finished, _, _ = collector.step(learner.w1, learner.w2, 0)
            for env in finished:
                episodes.append(pong.compact(collector.episodes.episode(env)))
                collector.release(env)
    finally:
        collector.close()
    frames_per_episode = config.frameskip * statistics.mean(len(episode[3]) for episode in episodes)
    seconds = []  # per episode: all the learner does with whole batches of them
    for _ in range(3):
        start = time.perf_counter()
        for episode in episodes:
            learner.learn(episode, 0)
        seconds.append((time.perf_counter() - start) / len(episodes))
    per_episode = statistics.median(seconds)
    return frames_per_episode / per_episode, per_episode * 1e3, frames_per_episode


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--envs", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", default="1,2", help="worker counts to measure (comma-separated)")
    parser.add_argument("--capacity-batches", type=int, default=2, help="batches of episodes the learner is timed on")
    parser.add_argument("--batch-episodes", type=int, default=10,
                        help="episodes per batch of the learner timed (default 10, Pong's)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--frames", type=float, default=300_000, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        fps, _ = steady_state(args.frames, **kind_settings(args.one, args))
        print(json.dumps({"kind": args.one, "frames_per_s": fps}))
        return

    kinds = ["single"] + [f"ray{int(k)}" for k in args.workers.split(",") if k]
    results = {kind: [] for kind in kinds}
    frames = 10_000 * args.seconds
    for round_ in range(args.repeats):
        for kind in kinds:
            command = [sys.executable, __file__, "--one", kind, "--envs", str(args.envs), "--threads", str(args.threads),
                       "--frames", str(frames)]
            child = subprocess.run(command, capture_output=True, text=True)
            if child.returncode:
                sys.exit(f"{kind} failed (exit {child.returncode}): {(child.stderr.strip().splitlines() or [''])[-1]}")
            fps = json.loads(child.stdout.strip().splitlines()[-1])["frames_per_s"]
            results[kind].append(fps)
            if kind == "single":
                frames = fps * args.seconds  # the others run for about --seconds at this pace
            print(f"round {round_ + 1}: {kind:<7} {fps:>9,.0f} frames/s", flush=True)
    median = {kind: statistics.median(values) for kind, values in results.items()}
    print(f"\nmedians of {args.repeats} rounds, {args.envs} emulators in all, {args.threads} threads in all")
    print("| run | workers x (emulators, threads) | frames/s | vs single process |\n| --- | --- | ---: | ---: |")
    for kind in kinds:
        settings = kind_settings(kind, args)
        shape = f"{settings.get('workers', 1)} x ({settings['envs']}, {settings['threads']})"
        print(f"| {kind} | {shape} | {median[kind]:,.0f} | {median[kind] / median['single']:.2f} |")

    capacity, ms, frames_per_episode = learner_capacity(args)
    print(f"\nlearner: {ms:.1f} ms per episode ({frames_per_episode:,.0f} emulator frames; returns, advantages, "
          f"the passes over each batch, the updates) -> one learner thread absorbs {capacity:,.0f} frames/s, "
          f"{capacity / median['single']:.1f}x what this machine's emulators make")


if __name__ == "__main__":
    main()
