"""Sparse Pong inputs end to end: pong_sparse_difference, sparse_mlp_forward, sparse_mlp_backward
and the fused pong_step, each against its NumPy twin (float32/float64, 1 and 2 threads,
hypothesis shapes) and against the dense path (pong_difference, mlp_forward, mlp_backward);
empty frames, a frame with every pixel changed, and bad inputs."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import pgcore.kernels as K
import pgcore.reference as R
from pgcore import pong
from helpers import assert_close, assert_same_episodes, rtol_of

D = 6400
seeds = st.integers(0, 2**32 - 1)
BACKENDS = pytest.mark.parametrize("module", [K, R], ids=["kernels", "reference"])


def ternary_rows(rng, n, density, inputs=D):
    x = np.zeros((n, inputs), np.int8)
    mask = rng.random((n, inputs)) < density
    x[mask] = rng.choice(np.array([-1, 1], np.int8), size=int(mask.sum()))
    return x


def net(rng, hidden, dtype, inputs=D, logits=1):
    """w1 (inputs, hidden), w2 (hidden,) for one logit or (hidden, logits)."""
    w1 = (rng.standard_normal((inputs, hidden)) * 0.1).astype(dtype)
    w2 = rng.standard_normal((hidden,) if logits == 1 else (hidden, logits)).astype(dtype)
    return w1, w2


def frames_like_pong(rng, n, gray=False):
    """Frames of background with a few object pixels (paddles, ball) at random places: RGB, or
    grayscale as ale-py's grayscale=True gives them (background 87)."""
    frames = np.full((n, 210, 160) if gray else (n, 210, 160, 3), 87 if gray else 144, np.uint8)
    pixels = frames if gray else frames[..., 0]
    for frame in pixels:
        for _ in range(int(rng.integers(0, 4))):
            r, c = int(rng.integers(35, 190)), int(rng.integers(0, 150))
            frame[r:r + int(rng.integers(1, 16)), c:c + int(rng.integers(1, 8))] = 236
    return frames


# ---- pong_sparse_difference ----

@BACKENDS
@given(seed=seeds, batch=st.integers(0, 6), envs_extra=st.integers(0, 3), with_frame=st.booleans())
def test_sparse_difference_is_the_dense_difference(module, threads, seed, batch, envs_extra, with_frame):
    """The sparse rows are pong_difference's rows (then, with_frame, the new frames themselves)."""
    rng = np.random.default_rng(seed)
    n_envs = batch + envs_extra
    previous_dense = (rng.random((n_envs, D)) < 0.01).astype(np.uint8)
    previous_sparse = previous_dense.copy()
    rows = rng.permutation(n_envs)[:batch]
    fresh = rng.random(batch) < 0.3
    frames = frames_like_pong(rng, batch)
    dense = K.pong_difference(frames, previous_dense, rows, fresh)
    if with_frame:
        dense = np.hstack((dense, previous_dense[rows].astype(np.int8)))
    starts, indices, signs = module.pong_sparse_difference(frames, previous_sparse, rows, fresh, with_frame=with_frame)
    assert starts.dtype == np.int64 and indices.dtype == np.int16 and signs.dtype == np.int8
    assert starts.shape == (batch + 1,) and starts[0] == 0 and len(indices) == len(signs) == starts[-1]
    rebuilt = np.zeros_like(dense)
    for i in range(batch):
        row = indices[starts[i]:starts[i + 1]]
        assert np.all(np.diff(row) > 0), "indices rise within a row"
        rebuilt[i, row] = signs[starts[i]:starts[i + 1]]
    assert np.array_equal(rebuilt, dense)
    assert np.array_equal(previous_sparse, previous_dense)


@BACKENDS
def test_sparse_difference_of_empty_and_fully_changed_frames(module):
    background = np.full((1, 210, 160, 3), 144, np.uint8)
    objects = np.full((1, 210, 160, 3), 236, np.uint8)
    previous = np.zeros((1, D), np.uint8)
    starts, indices, signs = module.pong_sparse_difference(background, previous)
    assert starts.tolist() == [0, 0] and len(indices) == 0
    starts, indices, signs = module.pong_sparse_difference(objects, previous)
    assert starts.tolist() == [0, D] and np.array_equal(indices, np.arange(D)) and np.all(signs == 1)
    starts, indices, signs = module.pong_sparse_difference(background, previous)
    assert starts.tolist() == [0, D] and np.all(signs == -1)
    starts, _, _ = module.pong_sparse_difference(objects, previous, fresh=np.array([True]))
    assert starts.tolist() == [0, 0], "an episode's first frame has no motion"


@BACKENDS
def test_sparse_difference_with_the_frame(module):
    background = np.full((1, 210, 160, 3), 144, np.uint8)
    objects = np.full((1, 210, 160, 3), 236, np.uint8)
    previous = np.zeros((1, D), np.uint8)
    starts, indices, signs = module.pong_sparse_difference(objects, previous, fresh=np.array([True]), with_frame=True)
    assert starts.tolist() == [0, D] and np.array_equal(indices, D + np.arange(D)) and np.all(signs == 1), \
        "a first frame: no motion, but the frame is seen"
    starts, indices, signs = module.pong_sparse_difference(objects, previous, with_frame=True)
    assert starts.tolist() == [0, D] and np.array_equal(indices, D + np.arange(D)), "nothing moved: only the frame"
    starts, indices, signs = module.pong_sparse_difference(background, previous, with_frame=True)
    assert starts.tolist() == [0, D] and np.array_equal(indices, np.arange(D)) and np.all(signs == -1), \
        "everything vanished: an empty frame, all of it in the difference"
    with pytest.raises(TypeError, match="with_frame"):
        module.pong_sparse_difference(objects, previous, with_frame=1)


# ---- sparse_mlp_forward / sparse_mlp_backward ----

@given(seed=seeds, n=st.integers(0, 12), hidden=st.integers(1, 40),
       density=st.sampled_from([0.0, 0.004, 0.05, 1.0]), inputs=st.sampled_from([D, 2 * D]),
       n_logits=st.sampled_from([1, 3]))
def test_sparse_forward_and_backward_match_the_twin_and_the_dense_net(dtype, threads, seed, n, hidden, density,
                                                                        inputs, n_logits):
    rng = np.random.default_rng(seed)
    x = ternary_rows(rng, n, density, inputs)
    w1, w2 = net(rng, hidden, dtype, inputs, n_logits)
    columns = np.abs(w2.astype(np.float64)).reshape(hidden, n_logits)  # |w2| as (H, K)
    starts, indices, signs = R._sparse_rows(x)
    rtol = rtol_of(dtype)
    h_k, logits_k = K.sparse_mlp_forward(starts, indices, signs, w1, w2)
    h_r, logits_r = R.sparse_mlp_forward(starts, indices, signs, w1, w2)
    h_d, logits_d = R.mlp_forward(x.astype(dtype), w1, w2)
    # error bounds of the sums: rtol * (|x| @ |w1|), then through w2
    bound_h = 4 * rtol * (np.abs(x).astype(np.float64) @ np.abs(w1.astype(np.float64))) + 1e-30
    bound_logits = ((bound_h + 4 * rtol * np.abs(h_d)) @ columns).reshape((n,) + w2.shape[1:]) + 1e-30
    for h, logits, what in ((h_k, logits_k, "kernel"), (h_r, logits_r, "twin")):
        assert h.dtype == dtype and h.shape == (n, hidden) and logits.shape == (n,) + w2.shape[1:]
        assert_close(h, h_d, rtol=rtol, atol=bound_h, what=f"h ({what} vs dense)")
        assert_close(logits, logits_d, rtol=rtol, atol=bound_logits, what=f"logits ({what} vs dense)")

    grad_logits = rng.standard_normal(logits_k.shape).astype(dtype)
    start_w1 = rng.standard_normal(w1.shape).astype(dtype)
    start_w2 = rng.standard_normal(w2.shape).astype(dtype)
    dense_w1, dense_w2 = R.mlp_backward(x.astype(dtype), h_d, grad_logits, w2)
    abs_grads = np.abs(grad_logits.astype(np.float64)).reshape(n, n_logits)
    gh = (abs_grads @ columns.T) * (h_d > 0)
    bound_w1 = 4 * rtol * (np.abs(x).astype(np.float64).T @ gh + np.abs(start_w1)) + 1e-30
    bound_w2 = (4 * rtol * (np.abs(h_d.astype(np.float64)).T @ abs_grads) + 8 * rtol * (bound_h.T @ abs_grads)
                ).reshape(w2.shape) + 4 * rtol * np.abs(start_w2) + 1e-30
    for module in (K, R):
        grad_w1, grad_w2 = start_w1.copy(), start_w2.copy()
        module.sparse_mlp_backward(starts, indices, signs, grad_logits, w1, w2, grad_w1, grad_w2)
        assert_close(grad_w1, start_w1 + dense_w1, rtol=rtol, atol=bound_w1, what=f"grad_w1 ({module.__name__})")
        assert_close(grad_w2, start_w2 + dense_w2, rtol=rtol, atol=bound_w2, what=f"grad_w2 ({module.__name__})")


@pytest.mark.parametrize("inputs, n_logits", [(D, 1), (2 * D, 1), (D, 3), (97, 2), (16800, 6), (300, 18)],
                         ids=["difference", "with-frame", "three-logits", "two-logits", "atari-six", "eighteen"])
def test_sparse_backward_matches_finite_differences(inputs, n_logits):
    """d/dw of sum_i g_i . logits_i(w1, w2) in float64, over the rows of w1 the inputs select."""
    from helpers import central_differences

    rng = np.random.default_rng(3)
    pixels = np.sort(rng.choice(inputs, 10, replace=False))
    x = np.zeros((30, inputs), np.int8)
    x[:, pixels] = rng.integers(-1, 2, size=(30, 10))
    w1, w2 = net(rng, 6, np.float64, inputs, n_logits)
    while np.abs(x @ w1).min() < 1e-3 or not 0 < (x @ w1 > 0).mean() < 1:
        w1[pixels] = rng.standard_normal((10, 6))
    g = rng.standard_normal((30,) + w2.shape[1:])
    starts, indices, signs = R._sparse_rows(x)
    used = w1[pixels].copy()

    def objective():
        w1[pixels] = used
        return float(np.sum(g * (np.maximum(x @ w1, 0) @ w2)))
    numeric_w1, numeric_w2 = central_differences(objective, used), central_differences(objective, w2)
    for module in (K, R):
        grad_w1, grad_w2 = np.zeros_like(w1), np.zeros_like(w2)
        module.sparse_mlp_backward(starts, indices, signs, g, w1, w2, grad_w1, grad_w2)
        assert_close(grad_w1[pixels], numeric_w1, rtol=1e-6, atol=1e-7, what="grad_w1")
        assert_close(grad_w2, numeric_w2, rtol=1e-6, atol=1e-7, what="grad_w2")
        assert not np.any(np.delete(grad_w1, pixels, axis=0))


def random_rows_and_net(rng, dtype, n, hidden, per_row, ordered, inputs, n_logits):
    """Rows (random_sparse_rows), a net, grad_logits, and the gradients' start values."""
    w1, w2 = net(rng, hidden, dtype, inputs, n_logits)
    starts, indices, signs = random_sparse_rows(rng, n, per_row, inputs, ordered)
    grad_logits = rng.standard_normal((n,) + w2.shape[1:]).astype(dtype)
    start_w1, start_w2 = rng.standard_normal(w1.shape).astype(dtype), rng.standard_normal(w2.shape).astype(dtype)
    return (starts, indices, signs), w1, w2, grad_logits, start_w1, start_w2


@given(seed=seeds, n=st.one_of(st.integers(0, 12), st.sampled_from([256, 300])), hidden=st.integers(1, 40),
       per_row=st.sampled_from([0, 1, 30]), ordered=st.booleans(), inputs=st.sampled_from([D, 2 * D]),
       n_logits=st.sampled_from([1, 3]))
def test_sparse_backward_given_the_forwards_h(dtype, threads, seed, n, hidden, per_row, ordered, inputs, n_logits):
    """Given the h of sparse_mlp_forward, the compiled backward skips recomputing it and gives the
    same bits as without it (it recomputed h by the same operations in the same order), on one
    thread or two (256 rows and up split over threads); the twin, given the same h, agrees within
    the error bounds of the sums."""
    rng = np.random.default_rng(seed)
    rows, w1, w2, grad_logits, start_w1, start_w2 = random_rows_and_net(rng, dtype, n, hidden, per_row, ordered,
                                                                        inputs, n_logits)
    h, _ = K.sparse_mlp_forward(*rows, w1, w2)
    recomputed, given, twin = [(start_w1.copy(), start_w2.copy()) for _ in range(3)]
    K.sparse_mlp_backward(*rows, grad_logits, w1, w2, *recomputed)
    K.sparse_mlp_backward(*rows, grad_logits, w1, w2, *given, h=h)
    for a, b, what in zip(recomputed, given, ("grad_w1", "grad_w2")):
        assert a.tobytes() == b.tobytes(), f"{what}: the backward given h differs from the one recomputing it"
    R.sparse_mlp_backward(*rows, grad_logits, w1, w2, *twin, h=h)
    rtol = rtol_of(dtype)
    terms = R._sparse_matrix(rows[0], rows[1], np.ones_like(rows[2]), np.float64, inputs)  # |x|, repeats added
    abs_grads = np.abs(grad_logits.astype(np.float64)).reshape(n, n_logits)
    grad_h = (abs_grads @ np.abs(w2.astype(np.float64)).reshape(hidden, n_logits).T) * (h > 0)
    bound_w1 = 4 * rtol * (terms.T @ grad_h + np.abs(start_w1)) + 1e-30
    bound_w2 = (4 * rtol * (np.abs(h.astype(np.float64)).T @ abs_grads)).reshape(w2.shape)
    bound_w2 += 4 * rtol * np.abs(start_w2) + 1e-30
    assert_close(given[0], twin[0], rtol=rtol, atol=bound_w1, what="grad_w1 (kernel vs twin, h given)")
    assert_close(given[1], twin[1], rtol=rtol, atol=bound_w2, what="grad_w2 (kernel vs twin, h given)")


@BACKENDS
def test_sparse_backward_takes_h_as_given(module):
    """The h passed is what the backward uses, not checked against the rows (the caller's word):
    an h of zeros (every unit off) adds nothing; a strided h is copied; the forward's h of a w1
    other than the one passed gives another gradient (the documented misuse)."""
    rng = np.random.default_rng(5)
    rows, w1, w2, grad_logits, start_w1, start_w2 = random_rows_and_net(rng, np.float32, 20, 8, 30, True, 2 * D, 3)
    grad_w1, grad_w2 = start_w1.copy(), start_w2.copy()
    module.sparse_mlp_backward(*rows, grad_logits, w1, w2, grad_w1, grad_w2, h=np.zeros((20, 8), np.float32))
    assert np.array_equal(grad_w1, start_w1) and np.array_equal(grad_w2, start_w2)
    h, _ = module.sparse_mlp_forward(*rows, w1, w2)
    wide = np.zeros((20, 16), np.float32)
    wide[:, ::2] = h
    results = []
    for hidden in (h, wide[:, ::2], module.sparse_mlp_forward(*rows, 2 * w1 - 0.05, w2)[0]):
        grad_w1, grad_w2 = start_w1.copy(), start_w2.copy()
        module.sparse_mlp_backward(*rows, grad_logits, w1, w2, grad_w1, grad_w2, h=hidden)
        results.append((grad_w1, grad_w2))
    assert all(np.array_equal(a, b) for a, b in zip(results[0], results[1])), "a strided h: the same gradient"
    assert not np.array_equal(results[0][1], results[2][1]), "the h of another w1: another gradient"


@BACKENDS
def test_sparse_backward_bad_h(module):
    w1, w2 = net(np.random.default_rng(0), 4, np.float32)
    starts, indices, signs = np.array([0, 2, 3]), np.array([3, 9, 5], np.int16), np.array([1, -1, 1], np.int8)
    args = (starts, indices, signs, np.zeros(2, np.float32), w1, w2, np.zeros_like(w1), np.zeros_like(w2))
    h = np.ones((2, 4), np.float32)
    module.sparse_mlp_backward(*args, h=h)
    module.sparse_mlp_backward(*args, h=None)
    module.sparse_mlp_backward(*args, h)  # positional too
    for bad, error, message in ((np.ones((3, 4), np.float32), ValueError, r"h must have shape \(2, 4\)"),
                                (np.ones((2, 5), np.float32), ValueError, r"h must have shape \(2, 4\)"),
                                (np.ones((1, 4), np.float32), ValueError, r"h must have shape \(2, 4\)"),
                                (np.ones(8, np.float32), ValueError, "h must have 2 dimensions"),
                                (np.ones((2, 4, 1), np.float32), ValueError, "h must have 2 dimensions"),
                                (np.ones((2, 4)), TypeError, "h has dtype float64 but the other"),
                                (np.ones((2, 4), np.int64), TypeError, "h must have dtype float32 or float64"),
                                (np.ones((2, 4), bool), TypeError, "h must have dtype float32 or float64"),
                                ("h", TypeError, "h must have dtype")):
        with pytest.raises(error, match=message):
            module.sparse_mlp_backward(*args, h=bad)
    grad_w1 = np.ones_like(w1)
    with pytest.raises(ValueError, match="h must have shape"):
        module.sparse_mlp_backward(*args[:6], grad_w1, args[7], h=np.ones((3, 4), np.float32))
    assert np.all(grad_w1 == 1), "a bad h is refused before anything is written"


# ---- the row loop's versions (src/_sparse_rows.h) ----

@pytest.fixture
def row_loop_levels():
    """The versions of the sparse net's row loop this CPU runs (0 plain, 1 16-byte vectors, 2 AVX2),
    for _sparse (pong_step's _atari always runs its best); the best is restored after."""
    from pgcore import _sparse
    best = _sparse._row_loop_level(-1)
    yield best
    _sparse._row_loop_level(-1)


def random_sparse_rows(rng, n, per_row, inputs, ordered):
    """CSR rows of ~per_row nonzeros of `inputs`: sorted and distinct (a difference frame's), or in
    any order with repeats (which the kernels take too)."""
    counts = rng.integers(0, 2 * per_row + 1, n)
    starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    if ordered:
        indices = np.concatenate([np.sort(rng.choice(inputs, c, replace=False)) for c in counts] + [[]])
    else:
        indices = rng.integers(0, inputs, starts[-1])
    return starts, indices.astype(np.int16), rng.choice(np.array([-1, 1], np.int8), starts[-1])


@pytest.mark.parametrize("hidden", [1, 3, 8, 13, 31, 64, 104, 200, 203])
def test_every_row_loop_version_gives_the_same_bits(dtype, threads, hidden, row_loop_levels):
    """Every version of the row loop adds the same values in the same order: forward and backward
    give the same bits on every CPU, at every width (hidden sizes with and without a vector
    remainder, one pass or several), and match the twin."""
    from pgcore import _sparse
    rng = np.random.default_rng(hidden)
    rtol = rtol_of(dtype)
    for n_logits, ordered in ((1, True), (3, False)):
        w1, w2 = net(rng, hidden, dtype, 2 * D, n_logits)
        starts, indices, signs = random_sparse_rows(rng, 300, 30, 2 * D, ordered)
        grad_logits = rng.standard_normal((300,) + w2.shape[1:]).astype(dtype)
        start_w1, start_w2 = rng.standard_normal(w1.shape).astype(dtype), rng.standard_normal(w2.shape).astype(dtype)
        results = []
        for level in range(row_loop_levels + 1):
            assert _sparse._row_loop_level(level) == level
            h, logits = K.sparse_mlp_forward(starts, indices, signs, w1, w2)
            grad_w1, grad_w2 = start_w1.copy(), start_w2.copy()
            K.sparse_mlp_backward(starts, indices, signs, grad_logits, w1, w2, grad_w1, grad_w2)
            results.append((h, logits, grad_w1, grad_w2))
        for level, got in enumerate(results):
            for a, b, what in zip(results[0], got, ("h", "logits", "grad_w1", "grad_w2")):
                assert a.tobytes() == b.tobytes(), f"{what}: version {level} differs from the plain loop"
        # and the twin's, within the error bounds of the sums (as in the test above; a repeated
        # index is a term each time, which the twin's CSR product adds up first)
        h_r, logits_r = R.sparse_mlp_forward(starts, indices, signs, w1, w2)
        grad_w1, grad_w2 = start_w1.copy(), start_w2.copy()
        R.sparse_mlp_backward(starts, indices, signs, grad_logits, w1, w2, grad_w1, grad_w2)
        terms = R._sparse_matrix(starts, indices, np.ones_like(signs), np.float64, 2 * D)
        columns = np.abs(w2.astype(np.float64)).reshape(hidden, n_logits)
        abs_grads = np.abs(grad_logits.astype(np.float64)).reshape(300, n_logits)
        bound_h = 4 * rtol * (terms @ np.abs(w1.astype(np.float64)))
        bound_logits = ((bound_h + 4 * rtol * np.abs(h_r)) @ columns).reshape(logits_r.shape)
        bound_w1 = 4 * rtol * (terms.T @ (abs_grads @ columns.T) + np.abs(start_w1))
        bound_w2 = (4 * rtol * (np.abs(h_r).T @ abs_grads + bound_h.T @ abs_grads)).reshape(w2.shape)
        bound_w2 += 4 * rtol * np.abs(start_w2)
        for got, want, bound, what in zip(results[-1], (h_r, logits_r, grad_w1, grad_w2),
                                          (bound_h, bound_logits, bound_w1, bound_w2), ("h", "logits", "grad_w1",
                                                                                         "grad_w2")):
            assert_close(got, want, rtol=rtol, atol=bound + 1e-30, what=what)


@pytest.mark.parametrize("hidden, n_logits", [(200, 3), (200, 1), (64, 1)], ids=["policy-3", "policy-1", "value"])
def test_pong_step_logits_are_the_forward_bits(hidden, n_logits):
    """The trainer recomputes an episode's logits with sparse_mlp_forward and takes them for the
    ones pong_step acted on: they must be the same bits (the same row loop and dot in both modules)."""
    rng = np.random.default_rng(hidden + n_logits)
    w1, w2 = net(rng, hidden, np.float32, 2 * D, n_logits)
    previous = np.zeros((4, D), np.uint8)
    episodes = pong.SparseEpisodes(4, np.float32, inputs=2 * D, logits=n_logits)
    for _ in range(6):
        rows = rng.permutation(4)[:int(rng.integers(1, 5))]
        episodes.make_room(rows)
        K.pong_step(frames_like_pong(rng, len(rows)), previous, rows, np.zeros(len(rows), bool), w1, w2,
                    rng.random(len(rows)), episodes)
    for e in range(4):
        starts, indices, signs, logits, _, _ = episodes.episode(e)
        _, want = K.sparse_mlp_forward(starts, indices[:starts[-1]], signs[:starts[-1]], w1, w2)
        assert logits.shape == want.shape and logits.tobytes() == want.tobytes()


# ---- pong_step ----

def run_steps(module, seed, hidden, dtype, n_envs, steps, inputs=D, n_logits=1, gray=False):
    """A rollout of pong_step calls on random subsets of envs (RGB or gray frames); returns what it wrote."""
    rng = np.random.default_rng(seed)
    w1, w2 = net(np.random.default_rng(seed + 1), hidden, dtype, inputs, n_logits)
    previous = np.zeros((n_envs, D), np.uint8)
    episodes = pong.SparseEpisodes(n_envs, dtype, steps=2, capacity=inputs, inputs=inputs, logits=n_logits)
    actions = []
    for _ in range(steps):
        rows = rng.permutation(n_envs)[:int(rng.integers(1, n_envs + 1))]
        episodes.make_room(rows)
        actions.append(module.pong_step(frames_like_pong(rng, len(rows), gray), previous, rows,
                                        rng.random(len(rows)) < 0.2, w1, w2, rng.random(len(rows)), episodes))
    return actions, episodes, previous, w1, w2


@given(seed=seeds, hidden=st.integers(1, 24), n_envs=st.integers(1, 6), inputs=st.sampled_from([D, 2 * D]),
       n_logits=st.sampled_from([1, 3]), gray=st.booleans())
def test_pong_step_matches_its_twin(dtype, threads, seed, hidden, n_envs, inputs, n_logits, gray):
    got = run_steps(K, seed, hidden, dtype, n_envs, 8, inputs, n_logits, gray)
    want = run_steps(R, seed, hidden, dtype, n_envs, 8, inputs, n_logits, gray)
    for a, b in zip(got[0], want[0]):
        assert a.dtype == np.int32 and np.array_equal(a, b) and set(a) <= set(pong.ACTIONS[:max(2, n_logits)])
    assert np.array_equal(got[2], want[2]), "previous frames"
    assert_same_episodes(got[1], want[1], n_envs, dtype, atol=1e-5 * np.abs(got[4]).sum())


@pytest.mark.parametrize("with_frame, n_logits", [(False, 1), (True, 1), (False, 3)],
                         ids=["difference", "with-frame", "three-logits"])
def test_pong_step_is_difference_forward_and_sampling(threads, with_frame, n_logits):
    """Each env's episode holds its difference frames (then, with a 12800-row w1, the frames),
    logits and actions as the separate kernels give them: with one logit up where the uniform
    is below sigmoid(logit), with three the first action (down, up, stay) whose cumulative
    softmax probability passes the uniform."""
    rng = np.random.default_rng(7)
    w1, w2 = net(rng, 16, np.float32, 2 * D if with_frame else D, n_logits)
    frames = frames_like_pong(rng, 3)
    previous, previous_dense = np.zeros((5, D), np.uint8), np.zeros((5, D), np.uint8)
    previous[:] = previous_dense[:] = (rng.random((5, D)) < 0.01)
    rows, fresh, uniforms = np.array([4, 0, 2]), np.array([False, True, False]), rng.random(3)
    episodes = pong.SparseEpisodes(5, np.float32, inputs=len(w1), logits=n_logits)
    episodes.lengths[:] = [3, 0, 0, 0, 7]
    episodes.starts[4, :8] = np.arange(8) * 5
    episodes.starts[0, :4] = [0, 1, 2, 3]
    actions = K.pong_step(frames, previous, rows, fresh, w1, w2, uniforms, episodes)
    x = K.pong_difference(frames, previous_dense, rows, fresh)
    if with_frame:
        x = np.hstack((x, previous_dense[rows].astype(np.int8)))
    _, logits = K.mlp_forward(x, w1, w2)
    assert np.array_equal(previous, previous_dense)
    assert episodes.lengths.tolist() == [4, 0, 1, 0, 8]
    for i, (e, t) in enumerate(((4, 7), (0, 3), (2, 0))):
        starts, indices, signs, stored_logits, stored_actions, _ = episodes.episode(e)
        assert np.array_equal(indices[starts[t]:starts[t + 1]], np.flatnonzero(x[i]))
        assert np.array_equal(signs[starts[t]:starts[t + 1]], x[i][x[i] != 0])
        assert stored_logits[t] == pytest.approx(logits[i], rel=1e-5, abs=1e-6)
        if n_logits == 1:
            code = int(uniforms[i] < 1 / (1 + np.exp(-float(stored_logits[t]))))
        else:
            p = np.exp(stored_logits[t] - stored_logits[t].max(), dtype=np.float64)
            code = int(np.searchsorted(np.cumsum(p / p.sum())[:-1], uniforms[i], side="right"))
        assert stored_actions[t] == code and actions[i] == pong.ACTIONS[code]
    fresh_pixels = int(previous_dense[0].sum()) if with_frame else 0
    assert episodes.starts[0, 4] == 3 + fresh_pixels, "a fresh frame adds no motion"


def test_pong_step_with_every_pixel_changed():
    w1, w2 = net(np.random.default_rng(0), 4, np.float64)
    episodes = pong.SparseEpisodes(1, np.float64, steps=2, capacity=D)
    previous = np.zeros((1, D), np.uint8)
    for module in (K, R):
        episodes.lengths[:] = 0
        previous[:] = 0
        module.pong_step(np.full((1, 210, 160, 3), 236, np.uint8), previous, [0], np.array([False]), w1, w2,
                         np.array([0.5]), episodes)
        assert episodes.starts[0, 1] == D and np.array_equal(episodes.indices[0], np.arange(D))
        want = np.maximum(w1.sum(axis=0), 0) @ w2
        assert episodes.logits[0, 0] == pytest.approx(want, rel=1e-12)


@BACKENDS
def test_pong_step_bad_inputs(module):
    w1, w2 = net(np.random.default_rng(0), 4, np.float32)
    frames = np.full((2, 210, 160, 3), 144, np.uint8)
    previous = np.zeros((3, D), np.uint8)
    good = dict(frames=frames, previous=previous, rows=[0, 2], fresh=np.array([False, False]), w1=w1, w2=w2,
                uniforms=np.array([0.1, 0.9]))

    def call(episodes=None, **changes):
        args = good | changes
        return module.pong_step(args["frames"], args["previous"], args["rows"], args["fresh"], args["w1"],
                                args["w2"], args["uniforms"], episodes or pong.SparseEpisodes(3, np.float32))

    call()
    full = pong.SparseEpisodes(3, np.float32, steps=2, capacity=D)
    full.lengths[2] = 2
    with pytest.raises(ValueError, match="room"):
        call(full)
    crowded = pong.SparseEpisodes(3, np.float32, steps=2, capacity=D + 5)
    crowded.starts[0, 0] = 10  # fewer than 6400 free indices
    with pytest.raises(ValueError, match="room"):
        call(crowded)
    with pytest.raises(TypeError, match="episodes.logits"):
        call(pong.SparseEpisodes(3, np.float64))
    with pytest.raises(ValueError, match="uniforms"):
        call(uniforms=np.array([0.1]))
    with pytest.raises(ValueError, match="w1"):
        call(w1=w1[:100])
    with pytest.raises(ValueError, match="w1"):
        call(w1=np.vstack((w1, w1[:1])))
    wide = np.vstack((w1, w1))
    call(pong.SparseEpisodes(3, np.float32, inputs=2 * D), w1=wide)
    with pytest.raises(ValueError, match="room"):   # 12800 inputs need 12800 free indices
        call(pong.SparseEpisodes(3, np.float32, steps=2, capacity=D + 5), w1=wide)
    with pytest.raises(ValueError, match="w2"):
        call(w2=w2[:2])
    three = np.stack((w2, w2, w2), axis=1)
    call(pong.SparseEpisodes(3, np.float32, logits=3), w2=three)
    with pytest.raises(ValueError, match="w2"):
        call(w2=three[:, :2])      # two logits: one (a sigmoid) or three (a softmax)
    with pytest.raises(TypeError, match="episodes.logits must be a 3-d"):
        call(w2=three)             # the store keeps one logit a step
    with pytest.raises(TypeError, match="episodes.logits must be a 2-d"):
        call(pong.SparseEpisodes(3, np.float32, logits=3))
    with pytest.raises(ValueError, match="rows"):
        call(rows=[0, 0])
    with pytest.raises(ValueError, match="rows"):
        call(rows=[0, 3])
    with pytest.raises(ValueError, match="frames"):
        call(frames=np.zeros((2, 200, 160, 3), np.uint8))


@BACKENDS
def test_sparse_rows_bad_inputs(module):
    w1, w2 = net(np.random.default_rng(0), 4, np.float32)
    starts, indices, signs = np.array([0, 2]), np.array([3, 9], np.int16), np.array([1, -1], np.int8)
    module.sparse_mlp_forward(starts, indices, signs, w1, w2)
    with pytest.raises(ValueError, match="starts"):
        module.sparse_mlp_forward(np.array([0, 3]), indices, signs, w1, w2)
    with pytest.raises(ValueError, match="starts"):
        module.sparse_mlp_forward(np.array([1, 2]), indices, signs, w1, w2)
    with pytest.raises(ValueError, match="starts"):
        module.sparse_mlp_forward(np.array([0, 2, 1]), indices, signs, w1, w2)
    with pytest.raises(ValueError, match="indices"):
        module.sparse_mlp_forward(starts, np.array([3, 6400], np.int16), signs, w1, w2)
    wide = np.vstack((w1, w1))
    module.sparse_mlp_forward(starts, np.array([3, 6400], np.int16), signs, wide, w2)  # a frame pixel
    with pytest.raises(ValueError, match="indices"):
        module.sparse_mlp_forward(starts, np.array([3, 12800], np.int16), signs, wide, w2)
    with pytest.raises(ValueError, match="indices"):
        module.sparse_mlp_forward(starts, np.array([-1, 3], np.int16), signs, w1, w2)
    for bad_signs in ([1, 0], [2, 1], [-2, 1], [1, -128], [127, -1]):
        with pytest.raises(ValueError, match="signs"):
            module.sparse_mlp_forward(starts, indices, np.array(bad_signs, np.int8), w1, w2)
    module.sparse_mlp_forward(starts, indices, np.array([1, -1, 5], np.int8), w1, w2)  # past starts[-1]: unread
    with pytest.raises(TypeError, match="signs"):
        module.sparse_mlp_forward(starts, indices, np.array([1.0, -1.0]), w1, w2)
    with pytest.raises(TypeError, match="dtype"):
        module.sparse_mlp_forward(starts, indices, signs, w1, w2.astype(np.float64))
    grad_w1, grad_w2 = np.zeros_like(w1), np.zeros_like(w2)
    with pytest.raises(ValueError, match="grad_logits"):
        module.sparse_mlp_backward(starts, indices, signs, np.zeros(2, np.float32), w1, w2, grad_w1, grad_w2)
    with pytest.raises(ValueError, match="grad_w1"):
        module.sparse_mlp_backward(starts, indices, signs, np.zeros(1, np.float32), w1, w2, grad_w1[:, ::2], grad_w2)
