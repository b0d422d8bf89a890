"""pgcore-bench: every compiled kernel against its NumPy twin, at realistic sizes.

Prints a table (kernel, size, NumPy us, pgcore us, speed-up) headed by the machine:
CPU, thread count, BLAS library and its kernel (threadpoolctl). Times are medians
of repeated timings taken in this one run; the speed-up is their ratio.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

import pgcore
from pgcore import kernels, reference
from pgcore.runs import cpu_name


def pong_frames(n, seed=0):
    """n real Pong RGB frames (n, 210, 160, 3) from ale-py under random up/down play."""
    import gymnasium
    import ale_py

    gymnasium.register_envs(ale_py)
    env = gymnasium.make("ALE/Pong-v5")
    rng = np.random.default_rng(seed)
    frame, _ = env.reset(seed=seed)
    frames = []
    for _ in range(60):  # skip the serve, when the field is empty
        frame, *_ = env.step(int(rng.integers(2, 4)))
    while len(frames) < n:
        frame, _, terminated, truncated, _ = env.step(int(rng.integers(2, 4)))
        frames.append(frame)
        if terminated or truncated:
            frame, _ = env.reset()
    env.close()
    return np.stack(frames)


def breakout_frames(n, seed=0):
    """(n consecutive frames of Breakout under random play, (n, 105, 80) uint8 gray, as the Atari trainer
    sees them; its action count)."""
    from pgcore import agent, atari

    config = agent.make_config("atari", game="breakout")
    return atari.random_frames(config, steps=n, n_envs=1, seed=seed), config.logit_count()


def pong_difference_frames(n, seed=0):
    """(n, 6400) float32 difference frames of consecutive real Pong frames: ternary, ~0.4% nonzero."""
    processed = reference.pong_preprocess(pong_frames(n + 1, seed))
    return processed[1:] - processed[:-1]


IN_PLACE = {"rmsprop_step", "rmsprop_rows_step", "adam_step", "pong_difference", "pong_sparse_difference",
            "sparse_mlp_backward", "atari_sparse_levels"}


class TrainerSteps:
    """pong_step as the trainer calls it: 8 of 16 envs come back with their next real frames
    (so each difference frame has its real ~26 nonzero pixels), episodes emptied when full."""

    def __init__(self, module, dtype, seed=0):
        from pgcore.pong import SparseEpisodes

        self.module = module
        self.frames = pong_frames(8 * 33, seed).reshape(33, 8, 210, 160, 3)
        self.previous = np.zeros((16, 6400), np.uint8)
        self.rows = np.arange(0, 16, 2)
        self.fresh = np.zeros(8, bool)
        self.uniforms = np.random.default_rng(seed).random((33, 8))
        # room for a net with the frame input too; a store for each logit count (one, or three actions)
        self.stores = {logits: SparseEpisodes(16, dtype, inputs=2 * 6400, logits=logits) for logits in (1, 3)}
        self.calls = 0

    def __call__(self, w1, w2):
        k = self.calls % 33
        self.calls += 1
        episodes = self.stores[w2.shape[1] if w2.ndim == 2 else 1]
        if k == 0:
            episodes.lengths[:] = 0
            episodes.make_room(self.rows)
        return self.module.pong_step(self.frames[k], self.previous, self.rows, self.fresh, w1, w2, self.uniforms[k],
                                     episodes)


class AtariSteps:
    """atari_step as a trainer would call it on Breakout's frames (105 x 80, 16 levels): 8 of 16
    envs come back with their next real frames, episodes emptied when full."""

    def __init__(self, module, dtype, seed=0):
        from pgcore.atari import background_of
        from pgcore.pong import SparseEpisodes

        self.module = module
        frames, self.n_actions = breakout_frames(8 * 33, seed=seed)
        self.background = background_of(frames, 4)
        self.frames = frames.reshape(33, 8, *frames.shape[1:])
        self.previous = np.zeros((16, frames.shape[1] * frames.shape[2]), np.uint8)
        self.rows = np.arange(0, 16, 2)
        self.fresh = np.zeros(8, bool)
        self.uniforms = np.random.default_rng(seed).random((33, 8))
        self.episodes = SparseEpisodes(16, dtype, inputs=2 * self.previous.shape[1], logits=self.n_actions)
        self.calls = 0

    def __call__(self, w1, w2):
        k = self.calls % 33
        self.calls += 1
        if k == 0:
            self.episodes.lengths[:] = 0
            self.episodes.make_room(self.rows)
        return self.module.atari_step(self.frames[k], self.background, self.previous, self.rows, self.fresh, w1, w2,
                                      self.uniforms[k], self.episodes)


def make_cases(dtype=np.float32, seed=0):
    """(kernel name, size label, args builder) for each benchmarked call."""
    rng = np.random.default_rng(seed)

    def normal(*shape):
        return rng.standard_normal(shape).astype(dtype)

    def rmsprop_args():
        return normal(1_280_000), normal(1_280_000), np.abs(normal(1_280_000)), 1e-4

    def rmsprop_rows_args(n_rows=12800, width=200, touched=2000):
        """The Pong trainer's w1 with the frame input (12800, 200) and a batch that saw `touched` of its
        rows (the gradient nonzero there only), rows last brought up to date 0 to 9 steps before.
        Each call consumes the gradient, so a timing's repeated calls step with a zero one: the same
        work, but the touched rows' cache decays by 0.99 a call, to subnormal float32 (slow) only
        after ~8,700 calls, far more than a default timing makes."""
        rows = rng.choice(n_rows, touched, replace=False)
        grad = np.zeros((n_rows, width), dtype)
        grad[rows] = normal(touched, width)
        return (normal(n_rows, width), grad, np.abs(normal(n_rows, width)), rows, rng.integers(0, 10, n_rows),
                1e-4)

    def pong_batch(n):
        cache = {}

        def build():
            if "x" not in cache:
                cache["x"] = pong_difference_frames(n).astype(dtype)
            return cache["x"]
        return build

    pong16, pong4096 = pong_batch(16), pong_batch(4096)

    def breakout_levels_args():
        from pgcore.atari import background_of

        frames, _ = breakout_frames(64, seed=seed)
        return frames[-8:], background_of(frames, 4), np.zeros((16, 105 * 80), np.uint8), np.arange(0, 16, 2)
    w1, w2 = normal(6400, 200) / 80, normal(200) / 14

    def mlp_backward_args(x):
        h, _ = reference.mlp_forward(x, w1, w2)
        return x, h, normal(len(x)), w2

    def sparse_rows(n):
        return reference._sparse_rows(pong4096()[:n].astype(np.int8))

    def sparse_backward_args(w2=w2):
        grad_logits = normal(*(4096,) + w2.shape[1:])
        return (*sparse_rows(4096), grad_logits, w1, w2, np.zeros_like(w1), np.zeros_like(w2))

    three_w2 = normal(200, 3) / 14  # a net with three actions (--actions 3): down, up, stay

    wide_w1 = normal(2 * 6400, 200) / 110  # a net that sees the frame as well (--frame-input)

    def sparse_backward_args_given_h(w1=w1, w2=w2, n=4096):
        """The trainer's learner: the backward of a batch it just ran the forward of, h passed on."""
        starts, indices, signs = sparse_rows(n)
        h, _ = kernels.sparse_mlp_forward(starts, indices, signs, w1, w2)
        return (starts, indices, signs, normal(*(n,) + w2.shape[1:]), w1, w2, np.zeros_like(w1), np.zeros_like(w2),
                h)

    def sparse_backward_args_with_frame():
        processed = reference.pong_preprocess(pong_frames(4097))
        x = np.hstack((processed[1:] - processed[:-1], processed[1:])).astype(np.int8)
        return (*reference._sparse_rows(x), normal(4096), wide_w1, w2, np.zeros_like(wide_w1), np.zeros_like(w2))

    return [
        ("softmax", "10000 x 6, tau 0.5", lambda: (normal(10000, 6), 0.5)),
        ("log_softmax", "10000 x 6, tau 0.5", lambda: (normal(10000, 6), 0.5)),
        ("softmax_policy_grad", "10000 x 6", lambda: (normal(10000, 6), rng.integers(0, 6, 10000),
                                                      normal(10000), 0.5)),
        ("softmax_policy_grad", "10000 x 6, entropy bonus", lambda: (normal(10000, 6), rng.integers(0, 6, 10000),
                                                                     normal(10000), 0.5, 0.3)),
        ("sigmoid_policy_grad", "100000", lambda: (normal(100_000), rng.integers(0, 2, 100_000), normal(100_000))),
        ("clipped_sigmoid_policy_grad", "100000", lambda: (normal(100_000), normal(100_000),
                                                           rng.integers(0, 2, 100_000), normal(100_000), 0.2)),
        ("clipped_softmax_policy_grad", "100000 x 3", lambda: (normal(100_000, 3), normal(100_000, 3),
                                                               rng.integers(0, 3, 100_000), normal(100_000), 0.2)),
        ("relu", "4096 x 200", lambda: (normal(4096, 200),)),
        ("relu_backward", "4096 x 200", lambda: (normal(4096, 200), normal(4096, 200))),
        ("linear_backward", "4096 x 200 -> 64", lambda: (normal(4096, 200), normal(4096, 64), normal(200, 64))),
        ("mlp_forward", "16 x 6400 x 200, dense", lambda: (normal(16, 6400), w1, w2)),
        ("mlp_forward", "16 x 6400 x 200, Pong frames", lambda: (pong16(), w1, w2)),
        ("mlp_backward", "4096 x 6400 x 200, dense", lambda: mlp_backward_args(normal(4096, 6400))),
        ("mlp_backward", "4096 x 6400 x 200, Pong frames", lambda: mlp_backward_args(pong4096())),
        ("discounted_returns", "T=100000, resets", lambda: (normal(100_000), 0.99, rng.random(100_000) < 0.01)),
        ("discounted_returns", "20000 x 16, dones", lambda: (normal(20_000, 16), 0.99,
                                                             rng.random((20_000, 16)) < 0.01)),
        ("gae_advantages", "20000 x 16, dones", lambda: (normal(20_000, 16), normal(20_000, 16), 0.99, 0.95,
                                                         rng.random((20_000, 16)) < 0.01)),
        ("standardize", "100000", lambda: (normal(100_000),)),
        ("squared_error", "100000", lambda: (normal(100_000), normal(100_000))),
        ("gaussian_policy_grad", "10000 x 32 -> 4", lambda: (normal(32, 4), normal(10000, 32), normal(10000, 4),
                                                             normal(10000), 0.5)),
        ("rmsprop_step", "1.28M params", rmsprop_args),
        ("rmsprop_rows_step", "12800 x 200, 2000 rows", rmsprop_rows_args),
        ("adam_step", "1.28M params", lambda: (normal(1_280_000), normal(1_280_000), normal(1_280_000),
                                               np.abs(normal(1_280_000)), 10, 1e-3)),
        ("pong_preprocess", "16 frames", lambda: (pong_frames(16),)),
        ("pong_difference", "8 of 16 envs (a trainer step)", lambda: (pong_frames(8), np.zeros((16, 6400), np.uint8),
                                                                      np.arange(0, 16, 2))),
        ("pong_sparse_difference", "8 of 16 envs (a trainer step)",
         lambda: (pong_frames(8), np.zeros((16, 6400), np.uint8), np.arange(0, 16, 2))),
        ("pong_sparse_difference", "8 of 16 envs, with the frame",
         lambda: (pong_frames(8), np.zeros((16, 6400), np.uint8), np.arange(0, 16, 2), None, True)),
        ("sparse_mlp_forward", "4096 Pong frames x 200", lambda: (*sparse_rows(4096), w1, w2)),
        ("sparse_mlp_forward", "4096 Pong frames x 200, 3 actions", lambda: (*sparse_rows(4096), w1, three_w2)),
        ("sparse_mlp_backward", "4096 Pong frames x 200, into the batch gradient", sparse_backward_args),
        ("sparse_mlp_backward", "4096 Pong frames x 200, with the frame", sparse_backward_args_with_frame),
        ("sparse_mlp_backward", "4096 Pong frames x 200, 3 actions", lambda: sparse_backward_args(three_w2)),
        ("sparse_mlp_backward", "4096 Pong frames x 200, 3 actions, h given", lambda: sparse_backward_args_given_h(
            w2=three_w2)),
        ("sparse_mlp_backward", "512 Pong frames x 64, h given (value net)", lambda: sparse_backward_args_given_h(
            w1=normal(6400, 64) / 80, w2=normal(64) / 8, n=512)),
        ("pong_step", "8 of 16 envs, H 200 (a trainer step)", lambda: (w1, w2)),
        ("pong_step", "8 of 16 envs, H 200, with the frame", lambda: (wide_w1, w2)),
        ("pong_step", "8 of 16 envs, H 200, 3 actions", lambda: (w1, three_w2)),
        ("atari_sparse_levels", "8 Breakout frames, 105 x 80", breakout_levels_args),
        ("atari_step", "8 of 16 envs, Breakout 105 x 80, H 200", lambda: (normal(2 * 105 * 80, 200) / 40,
                                                                          normal(200, 4) / 14)),
    ]


STEPPERS = {"pong_step": TrainerSteps, "atari_step": AtariSteps}


def time_call(function, args, min_seconds=0.2, repeats=7):
    """Median seconds per call over `repeats` timings of enough calls to fill min_seconds."""
    function(*args)
    start = time.perf_counter()
    function(*args)
    once = max(time.perf_counter() - start, 1e-7)
    number = max(1, int(min_seconds / repeats / once))
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            function(*args)
        samples.append((time.perf_counter() - start) / number)
    return statistics.median(samples)


def machine_description():
    from threadpoolctl import threadpool_info
    import scipy.linalg.cython_blas  # noqa: F401  (load SciPy's BLAS, the one our kernels call)

    cpu = cpu_name()
    blas = "; ".join(f"{p['internal_api']} {p['version']} {p.get('architecture', '?')} ({os.path.basename(p['filepath'])})"
                     for p in threadpool_info() if p["user_api"] == "blas")
    overrides = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
    return (f"CPU: {cpu}, {os.cpu_count()} logical cores; threads: {pgcore.get_num_threads()}; "
            f"OpenMP: {'yes' if kernels.OPENMP_ENABLED else 'no'}; numpy {np.__version__}; BLAS: {blas}"
            + (f"; env {overrides}" if overrides else ""))


def bench_parser():
    parser = argparse.ArgumentParser(prog="pgcore-bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"pgcore {pgcore.__version__}")
    parser.add_argument("--threads", type=int, default=None, help="thread count (default: all cores)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--only", default=None, help="run only kernels whose name contains this text")
    parser.add_argument("--seconds", type=float, default=0.3, help="time spent per measurement (default 0.3)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    return parser


def parse_args(argv=None):
    """A pgcore-bench command line as a Namespace, without benchmarking: exits (SystemExit, code 2)
    as pgcore-bench does on a bad flag."""
    parser = bench_parser()
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be at least 1, not {args.threads}")
    return args


def main(argv=None):
    args = parse_args(argv)
    pgcore.set_num_threads(args.threads or pgcore.get_num_threads())

    print(machine_description(), f"dtype: {args.dtype}", sep="\n")
    header = ("kernel", "size", "NumPy us", "pgcore us", "speed-up")
    rows = []
    line = "| {} | {} | {} | {} | {} |" if args.markdown else "{:<22} {:<34} {:>12} {:>12} {:>9}"
    print(line.format(*header))
    if args.markdown:
        print("| --- | --- | ---: | ---: | ---: |")
    for name, size, build in make_cases(np.dtype(args.dtype)):
        if args.only and args.only not in name:
            continue
        call_args = build()
        twin, kernel = getattr(reference, name), getattr(kernels, name)
        if name in STEPPERS:  # each backend steps its own envs through real frames
            steps = STEPPERS[name]
            twin, kernel = steps(reference, np.dtype(args.dtype)), steps(kernels, np.dtype(args.dtype))
        if name in IN_PLACE:  # in place: give each backend its own state
            numpy_s = time_call(twin, tuple(a.copy() if isinstance(a, np.ndarray) else a for a in call_args),
                                args.seconds)
        else:
            numpy_s = time_call(twin, call_args, args.seconds)
        pgcore_s = time_call(kernel, call_args, args.seconds)
        rows.append((name, size, numpy_s, pgcore_s))
        print(line.format(name, size, f"{numpy_s * 1e6:,.1f}", f"{pgcore_s * 1e6:,.1f}",
                          f"{numpy_s / pgcore_s:,.1f}x"), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
