"""How the kernels are laid out: one docstring per kernel (its twin's), the sparse net in its own
compiled module, and compiled entries that trust their checked arguments yet never write out of
bounds, even when an argument overlaps an array they write."""
import pydoc

import numpy as np
import pytest

import pgcore.kernels as K
import pgcore.reference as R

from helpers import assert_script_prints_ok

KERNELS = [name for name in K.__all__ if callable(getattr(K, name))]


def test_every_public_kernel_has_a_twin():
    assert len(KERNELS) >= 24 and "OPENMP_ENABLED" not in KERNELS
    missing = [name for name in KERNELS if not callable(getattr(R, name, None))]
    assert not missing, missing


@pytest.mark.parametrize("name", KERNELS)
def test_a_kernel_and_its_twin_share_one_docstring(name):
    kernel, twin = getattr(K, name), getattr(R, name)
    assert twin.__doc__ and twin.__doc__.strip(), f"pgcore.reference.{name} has no docstring"
    assert kernel.__doc__ == twin.__doc__
    for function in (kernel, twin):  # help() shows the whole text
        shown = pydoc.render_doc(function, renderer=pydoc.plaintext)
        assert all(line.strip() in shown for line in twin.__doc__.splitlines()), name


def test_the_sparse_net_has_its_own_compiled_module():
    import pgcore._atari as atari
    import pgcore._sparse as sparse

    assert callable(sparse.sparse_mlp_forward) and callable(sparse.sparse_mlp_backward)
    assert not hasattr(atari, "sparse_mlp_forward") and not hasattr(atari, "sparse_mlp_backward")
    assert {"pong_preprocess", "pong_difference", "pong_sparse_difference", "pong_step"} <= set(dir(atari))
    assert "pgcore._sparse" in K._COMPILED


def test_the_sparse_net_module_runs_both_dtypes():
    import pgcore._sparse as sparse

    starts, indices, signs = np.array([0, 2, 3]), np.array([1, 7, 7], np.int16), np.array([1, -1, 1], np.int8)
    for dtype in (np.float32, np.float64):
        w1 = np.arange(8 * 3, dtype=dtype).reshape(8, 3) - 5
        w2 = np.ones((3, 1), dtype)
        h, logits = sparse.sparse_mlp_forward(starts, indices, signs, w1, w2, 1)
        want = np.maximum(np.array([w1[1] - w1[7], w1[7]]), 0)
        assert h.dtype == dtype and np.array_equal(h, want) and np.array_equal(logits, want @ w2)


# Arguments that overlap an array the kernel writes: the checks pass (the values are valid when
# read), and the kernel must still write only where those checked values say. Run in a child
# process, so that a write out of bounds (a crash) fails the test instead of killing pytest.
OVERLAPS = r"""
import numpy as np
import pgcore
import pgcore.kernels as K
import pgcore.reference as R
from pgcore.pong import SparseEpisodes

D = 6400
for threads in (1, 2):
    pgcore.set_num_threads(threads)

    # pong_difference: rows is a view of previous's row 0, as intp: [0, 1]. Frame 0 rewrites
    # previous[0] (all of its first kept row is an object), which makes the caller's rows[1] a
    # huge number: the kernel must keep indexing with the rows that were checked.
    results = []
    for module in (K, R):
        previous = np.zeros((2, D), np.uint8)
        previous[0, 8] = 1
        rows = previous.view(np.intp)[0, :2]
        assert rows.tolist() == [0, 1]
        frames = np.full((2, 210, 160, 3), 144, np.uint8)
        frames[:, 35, :, 0] = 236
        difference = module.pong_difference(frames, previous, rows)
        results.append((difference, previous.copy()))
    assert all(np.array_equal(a, b) for a, b in zip(*results))

    # pong_step: rows is the episode store's own lengths, [1, 3, 0, 2]. Env 1's step writes
    # lengths[1] = 4, which the caller's rows[1] then says: an env that does not exist.
    results = []
    for module in (K, R):
        episodes = SparseEpisodes(4, np.float64, steps=8, capacity=4 * D)
        for array in (episodes.indices, episodes.signs, episodes.logits, episodes.actions):
            array[...] = 0  # (np.empty: compared whole below)
        episodes.lengths[:] = [1, 3, 0, 2]
        previous = np.zeros((4, D), np.uint8)
        rng = np.random.default_rng(0)
        w1, w2 = rng.standard_normal((D, 5)), rng.standard_normal(5)
        frames = np.full((4, 210, 160, 3), 144, np.uint8)
        frames[:, 35:195, :, 0][rng.random((4, 160, 160)) < 0.01] = 236
        actions = module.pong_step(frames, previous, episodes.lengths, np.zeros(4, bool), w1, w2,
                                   rng.random(4), episodes)
        results.append((actions, previous.copy(), *(a.copy() for a in vars(episodes).values()
                                                     if isinstance(a, np.ndarray))))
    assert np.array_equal(results[0][2], [2, 4, 1, 3])  # each env took one step
    for a, b in zip(*results):
        assert np.allclose(a, b, rtol=1e-12, atol=1e-12), (a, b)
print("ok")
"""


def test_arguments_that_overlap_the_outputs_move_no_write(tmp_path):
    assert_script_prints_ok(OVERLAPS, tmp_path)


def test_the_checks_the_compiled_code_relies_on_raise_the_twins_errors():
    """What pgcore._validate checks for pong_step and sparse_mlp_backward (the compiled code no longer
    checks it again): negative first free indices, non-contiguous gradients and uniforms."""
    from pgcore.pong import SparseEpisodes

    rng = np.random.default_rng(0)
    w1, w2 = rng.standard_normal((6400, 4)).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    frames = np.full((1, 210, 160, 3), 144, np.uint8)
    for module in (K, R):
        episodes = SparseEpisodes(1, np.float32, steps=2, capacity=6400)
        episodes.starts[0, 0] = -1
        with pytest.raises(ValueError, match="room"):
            module.pong_step(frames, np.zeros((1, 6400), np.uint8), [0], np.array([False]), w1, w2,
                             np.array([0.5]), episodes)
        episodes.starts[0, 0] = 0
        strided = np.array([0.5, 0.0])[::2]  # a non-contiguous input is accepted (copied)
        module.pong_step(frames, np.zeros((1, 6400), np.uint8), [0], np.array([False]), w1, w2, strided, episodes)
        assert episodes.lengths[0] == 1
        starts, indices, signs = np.array([0, 1]), np.array([3], np.int16), np.array([1], np.int8)
        wide = np.zeros((6400, 8), np.float32)
        with pytest.raises(ValueError, match="grad_w1 is updated in place and must be C-contiguous"):
            module.sparse_mlp_backward(starts, indices, signs, np.ones(1, np.float32), w1, w2, wide[:, ::2],
                                       np.zeros(4, np.float32))
        with pytest.raises(ValueError, match="grad_w2 is updated in place and must be C-contiguous"):
            module.sparse_mlp_backward(starts, indices, signs, np.ones(1, np.float32), w1, w2, np.zeros_like(w1),
                                       np.zeros(8, np.float32)[::2])
