"""End-to-end throughput: pgcore-train against the emulator alone and the classic loop (Pong; --game: any game).

Each measurement runs in its own process (so peak RSS is its own), for about
--seconds of wall time, and the kinds are interleaved over --repeats rounds; the
table gives medians and the ratios of medians, all from this one run:

  emulator   AtariVectorEnv alone, same settings (envs, threads, frameskip 4, sticky 0.25,
             async halves), random up/down actions: the ceiling
  cython     pgcore.pong.train with the compiled kernels, the fast preset's settings,
             steady state: frames/s between its first and last finished episode
  one-update the same with one update a batch (--epochs 1 --minibatches 1): what the
             learner's passes over each batch cost
  frame-input the same with --frame-input (12800 inputs: each frame as well as its difference)
  three-actions the same with --actions 3 (down, up or stay: a softmax over three logits)
  three-actions-gae the same with --actions 3 --advantage gae (a value net learns on every
             episode, whatever --gae-start-frames): the gae preset
  frame-gae  the same with --frame-input too: the frame preset
  rollouts   frame-gae learning from rollouts of 128 steps per emulator (--rollout-steps 128)
  numpy      the same trainer with --backend numpy (the NumPy twins)
  classic    a faithful single-env port of the classic NumPy "Pong from pixels" loop
             (float64, one np.dot per step, Python discount loop), same frameskip and sticky
  atari      with --game G: pgcore-train atari --game G, its default settings (the emulator
             kind then runs G's emulators as the trainer makes them, random actions of its
             minimal action set); --game takes only the kinds emulator and atari

usage: python benchmarks/speed/bench_train.py [--seconds 30] [--repeats 3] [--envs 16] [--threads 2]
       [--game G --kinds emulator,atari]
"""
import argparse
import dataclasses
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

# The trainer kinds: the fast preset (pong.make_config("fast")) with these settings over them. The presets
# train their value nets from the start, so three-actions-gae is the gae preset's cost at every frame
# and frame-gae the default's (the frame preset).
THREE_ACTIONS_GAE = {"actions": 3, "advantage": "gae"}
TRAINERS = {"cython": {}, "one-update": {"epochs": 1, "minibatches": 1}, "frame-input": {"frame_input": True},
            "three-actions": {"actions": 3}, "three-actions-gae": THREE_ACTIONS_GAE,
            "frame-gae": THREE_ACTIONS_GAE | {"frame_input": True},
            "rollouts": THREE_ACTIONS_GAE | {"frame_input": True, "rollout_steps": 128},
            "numpy": {"backend": "numpy"}}
KINDS = ("emulator", *TRAINERS, "classic", "atari")
GAME_KINDS = ("emulator", "atari")


def run_emulator(args):
    from pgcore import agent, atari, pong

    if args.game:
        config = agent.make_config("atari", game=args.game, envs=args.envs, threads=args.threads)
        envs, low, high = atari.make_envs(config), 0, config.logit_count()
    else:
        config = pong.make_config("fast", envs=args.envs, threads=args.threads)
        envs, low, high = pong.make_envs(config), 2, 4  # the trainer's emulators, as it makes them; up or down
    rng = np.random.default_rng(0)
    last = np.zeros(args.envs, dtype=np.int64)
    envs.reset(seed=0)
    frames, steps, start = 0, 0, None
    warmup_end = time.perf_counter() + 2
    while True:
        envs.send(rng.integers(low, high, size=envs.batch_size).astype(np.int32))
        _, _, _, _, info = envs.recv()
        ids, numbers = info["env_id"], info["frame_number"]
        if start is not None:
            frames += int((numbers - last[ids]).sum())
            steps += len(ids)
        last[ids] = numbers
        now = time.perf_counter()
        if start is None and now > warmup_end:
            start, start_cpu = now, time.thread_time()
        elif start is not None and now - start > args.seconds:
            break
    main_cpu_per_step = (time.thread_time() - start_cpu) / steps
    envs.close()
    return frames / (time.perf_counter() - start), main_cpu_per_step


def steady_state(max_frames, task="pong", **settings):
    """Runs `task`'s trainer for max_frames with `settings` (Pong's: over the fast preset's);
    returns its steady-state frames/s, from
    its first to its last finished episode (so start-up is left out, as it is for the emulator
    alone), and the CPU time of its main thread (all but the emulator threads) per agent step
    over the same span."""
    from pgcore import agent, pong, runs
    from pgcore.backends import load_backend

    marks = []  # (main-thread CPU s, wall s, frames, steps) at each finished episode
    finish_episode = runs.Run.finish_episode

    def marked(run, *a, **k):
        finish_episode(run, *a, **k)
        marks.append((time.thread_time(), time.perf_counter(), run.counters["frames"], run.counters["steps"]))

    runs.Run.finish_episode = marked
    with tempfile.TemporaryDirectory() as run_dir:
        limits = dict(max_frames=int(max_frames), checkpoint_every=0, checkpoint_minutes=0, quiet=True)
        config = dataclasses.replace(pong.make_config("fast", **limits, **settings) if task == "pong"
                                     else agent.make_config(task, **limits, **settings), run_dir=run_dir)
        with agent.session(config):  # Ray for a run on Ray workers (bench_ray.py), else nothing
            agent.train(config, load_backend(config.backend))
    if len(marks) < 2:
        raise SystemExit(f"{len(marks)} episode(s) finished in {max_frames:,.0f} frames: too few to time "
                         "(give more --seconds, or fewer --envs)")
    (cpu0, wall0, frames0, steps0), (cpu1, wall1, frames1, steps1) = marks[0], marks[-1]
    return (frames1 - frames0) / (wall1 - wall0), (cpu1 - cpu0) / (steps1 - steps0)


def run_trainer(args, kind):
    if kind == "atari":
        return steady_state(args.frames_hint * args.seconds, task="atari", game=args.game, envs=args.envs,
                            threads=args.threads)
    return steady_state(args.frames_hint * args.seconds, envs=args.envs, threads=args.threads, **TRAINERS[kind])


def run_classic(args):
    """The classic pg-pong loop (one env, float64, per-episode backward, RMSProp every 10 episodes)."""
    import gymnasium
    import ale_py

    gymnasium.register_envs(ale_py)
    H, D, gamma, decay, lr, batch_size = 200, 80 * 80, 0.99, 0.99, 1e-4, 10
    rng = np.random.default_rng(0)
    model = {"W1": rng.standard_normal((H, D)) / np.sqrt(D), "W2": rng.standard_normal(H) / np.sqrt(H)}
    grad_buffer = {k: np.zeros_like(v) for k, v in model.items()}
    rmsprop_cache = {k: np.zeros_like(v) for k, v in model.items()}

    def sigmoid(x):
        return 1.0 / (1.0 + np.exp(-x))

    def prepro(image):
        image = image[35:195][::2, ::2, 0]
        image[image == 144] = 0
        image[image == 109] = 0
        image[image != 0] = 1
        return image.astype(np.float64).ravel()

    def discount_rewards(r):
        discounted = np.zeros_like(r)
        running_add = 0
        for t in reversed(range(r.size)):
            if r[t] != 0:
                running_add = 0
            running_add = running_add * gamma + r[t]
            discounted[t] = running_add
        return discounted

    def policy_forward(x):
        h = np.dot(model["W1"], x)
        h[h < 0] = 0
        return sigmoid(np.dot(model["W2"], h)), h

    def policy_backward(eph, epdlogp, epx):
        dW2 = np.dot(eph.T, epdlogp).ravel()
        dh = np.outer(epdlogp, model["W2"])
        dh[eph <= 0] = 0
        return {"W1": np.dot(dh.T, epx), "W2": dW2}

    env = gymnasium.make("ALE/Pong-v5", frameskip=4, repeat_action_probability=0.25)
    observation, _ = env.reset(seed=0)
    prev_x, xs, hs, dlogps, drs = None, [], [], [], []
    episode_number, frames, start = 0, 0, None
    warmup_end = time.perf_counter() + 2
    last_frame = 0
    while True:
        cur_x = prepro(observation)
        x = cur_x - prev_x if prev_x is not None else np.zeros(D)
        prev_x = cur_x
        aprob, h = policy_forward(x)
        action = 2 if rng.random() < aprob else 3
        xs.append(x)
        hs.append(h)
        dlogps.append((1 if action == 2 else 0) - aprob)
        observation, reward, terminated, truncated, info = env.step(action)
        drs.append(reward)
        if start is not None:
            frames += info["frame_number"] - last_frame
        last_frame = info["frame_number"]
        if terminated or truncated:
            episode_number += 1
            epx, eph, epdlogp, epr = np.vstack(xs), np.vstack(hs), np.vstack(dlogps), np.vstack(drs)
            xs, hs, dlogps, drs = [], [], [], []
            discounted_epr = discount_rewards(epr)
            discounted_epr -= np.mean(discounted_epr)
            discounted_epr /= np.std(discounted_epr)
            grad = policy_backward(eph, epdlogp * discounted_epr, epx)
            for k in model:
                grad_buffer[k] += grad[k]
            if episode_number % batch_size == 0:
                for k, v in model.items():
                    g = grad_buffer[k]
                    rmsprop_cache[k] = decay * rmsprop_cache[k] + (1 - decay) * g**2
                    model[k] += lr * g / (np.sqrt(rmsprop_cache[k]) + 1e-5)
                    grad_buffer[k] = np.zeros_like(v)
            observation, _ = env.reset()
            prev_x = None
        now = time.perf_counter()
        if start is None and now > warmup_end:
            start = now
        elif start is not None and now - start > args.seconds:
            break
    return frames / (time.perf_counter() - start)


def measure_one(args):
    kind = args.one
    main_cpu = None  # main-thread CPU seconds per agent step
    if kind == "emulator":
        fps, main_cpu = run_emulator(args)
    elif kind == "classic":
        fps = run_classic(args)
    else:
        fps, main_cpu = run_trainer(args, kind)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"kind": kind, "frames_per_s": fps, "peak_rss_mib": peak_kib / 1024,
                      "main_cpu_us_per_step": None if main_cpu is None else main_cpu * 1e6}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--envs", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--game", default="", help="an Atari game (ale-py's name): the kinds emulator and atari "
                                                   "run it")
    parser.add_argument("--kinds", default=None, help="comma-separated subset of " + ",".join(KINDS)
                        + " (default: all but atari; with --game: emulator,atari)")
    parser.add_argument("--one", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--frames-hint", type=float, default=10000, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        return measure_one(args)

    kinds = [k for k in (args.kinds or ",".join(GAME_KINDS if args.game else KINDS[:-1])).split(",") if k]
    if args.game and set(kinds) - set(GAME_KINDS) or not args.game and "atari" in kinds:
        parser.error("--game G runs the kinds emulator and atari only, and atari needs --game")
    results = {k: [] for k in kinds}
    hint = 10000.0
    for round_ in range(args.repeats):
        for kind in kinds:
            command = [sys.executable, __file__, "--one", kind, "--seconds", str(args.seconds), "--envs", str(args.envs),
                       "--threads", str(args.threads), "--frames-hint", str(hint), "--game", args.game]
            child = subprocess.run(command, capture_output=True, text=True)
            if child.returncode:
                sys.exit(f"{kind} failed (exit {child.returncode}): {(child.stderr.strip().splitlines() or [''])[-1]}")
            result = json.loads(child.stdout.strip().splitlines()[-1])
            results[kind].append(result)
            if kind == "emulator":
                hint = result["frames_per_s"]  # the trainers run for about --seconds at this pace
            cpu = result["main_cpu_us_per_step"]
            print(f"round {round_ + 1}: {kind:<9} {result['frames_per_s']:>9,.0f} frames/s, "
                  f"peak RSS {result['peak_rss_mib']:,.0f} MiB"
                  + ("" if cpu is None else f", main thread {cpu:.1f} us CPU per agent step"), flush=True)
    median = {k: statistics.median(r["frames_per_s"] for r in v) for k, v in results.items()}
    rss = {k: max(r["peak_rss_mib"] for r in v) for k, v in results.items()}
    cpu = {k: statistics.median(r["main_cpu_us_per_step"] for r in v) for k, v in results.items() if k != "classic"}
    print(f"\nmedians of {args.repeats} rounds, {args.envs} envs, {args.threads} threads, ~{args.seconds:.0f} s each")
    print("| run | frames/s | vs emulator alone | vs classic loop | peak RSS MiB | trainer CPU us per agent step |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for kind in kinds:
        vs_emulator = f"{median[kind] / median['emulator']:.2f}" if "emulator" in median else "-"
        vs_classic = f"{median[kind] / median['classic']:.2f}" if "classic" in median else "-"
        # the trainer's own work: its main thread's CPU per step beyond what driving the emulators costs
        own = f"{cpu[kind] - cpu['emulator']:.1f}" if kind in cpu and kind != "emulator" and "emulator" in cpu else "-"
        print(f"| {kind} | {median[kind]:,.0f} | {vs_emulator} | {vs_classic} | {rss[kind]:,.0f} | {own} |")


if __name__ == "__main__":
    main()
