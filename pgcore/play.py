"""pgcore-play: watch a trained policy play (Pong, or one of the other tasks), print the scores."""
import os

import numpy as np

from pgcore import runs
from pgcore.pong import DOWN, UP, INPUT_SIZE

PACKAGED_POLICY = os.path.join(os.path.dirname(__file__), "data", "pong.npz")


def load_policy(checkpoint):
    """(w1, w2, config dict) from a checkpoint file, a run directory, or the packaged policy."""
    if checkpoint is None:
        if not os.path.isfile(PACKAGED_POLICY):
            raise runs.RunError("no --checkpoint given and this install ships no trained policy")
        checkpoint = PACKAGED_POLICY
    if os.path.isdir(checkpoint):
        checkpoint = os.path.join(checkpoint, runs.CHECKPOINT_NAME)
    arrays, meta = runs.load_checkpoint(checkpoint)
    w1, w2 = arrays.get("w1"), arrays.get("w2")
    if (w1 is None or w2 is None or w1.ndim != 2 or w1.shape[0] != INPUT_SIZE or w2.shape != (w1.shape[1],)
            or w1.dtype.kind != "f" or w2.dtype != w1.dtype):
        raise runs.RunError(f"{checkpoint} does not hold a Pong policy (w1 (6400, H), w2 (H,))")
    if not (np.all(np.isfinite(w1)) and np.all(np.isfinite(w2))):
        raise runs.RunError(f"corrupt checkpoint {checkpoint}: non-finite weights")
    dtype = np.float32 if w1.dtype == np.float16 else w1.dtype  # float16 is a storage format only
    return w1.astype(dtype), w2.astype(dtype), meta.get("config", {})


def play_pong(checkpoint, episodes, seed, sample, gif_path):
    import gymnasium
    import ale_py

    from pgcore import kernels

    w1, w2, config = load_policy(checkpoint)
    gymnasium.register_envs(ale_py)
    env = gymnasium.make("ALE/Pong-v5", frameskip=int(config.get("frameskip", 4)),
                         repeat_action_probability=float(config.get("sticky", 0.25)))
    rng = np.random.default_rng(seed)
    scores, gif_frames = [], []
    try:
        for game in range(episodes):
            frame, _ = env.reset(seed=seed + game)
            previous = None
            score, done = 0.0, False
            while not done:
                current = kernels.pong_preprocess(frame).astype(w1.dtype)
                x = current - previous if previous is not None else np.zeros_like(current)
                previous = current
                _, logit = kernels.mlp_forward(x, w1, w2)
                p_up = 1 / (1 + np.exp(-float(logit)))
                up = rng.random() < p_up if sample else p_up > 0.5
                frame, reward, terminated, truncated, _ = env.step(UP if up else DOWN)
                score += reward
                done = terminated or truncated
                if gif_path and game == 0:
                    gif_frames.append(frame)
            scores.append(score)
            print(f"game {game + 1}: score {score:+.0f}", flush=True)
    finally:
        env.close()
    if gif_path:
        write_gif(gif_path, gif_frames)
    return scores


def write_gif(path, frames, every=2, duration_ms=40):
    from PIL import Image

    images = [Image.fromarray(frame) for frame in frames[::every]]
    images[0].save(path, save_all=True, append_images=images[1:], duration=duration_ms, loop=0, optimize=True)


def play_control(task, checkpoint, episodes, seed, sample):
    """Returns of `episodes` evaluation episodes of a control task's checkpoint (greedy unless `sample`)."""
    from pgcore import control

    if os.path.isdir(checkpoint):
        checkpoint = os.path.join(checkpoint, runs.CHECKPOINT_NAME)
    _, meta = runs.load_checkpoint(checkpoint)
    saved = meta.get("config")
    if not isinstance(saved, dict) or saved.get("task") != task:
        found = saved.get("task") if isinstance(saved, dict) else None
        raise runs.RunError(f"{checkpoint} holds a {found or 'pong or unknown'} policy, not {task}")
    try:
        config = control.ControlConfig(**saved)
        control.check_config(config)
    except (TypeError, ValueError) as error:
        raise runs.RunError(f"corrupt checkpoint {checkpoint}: bad config ({error})") from None
    expected = {k: (shape, config.dtype) for k, shape in control.param_shapes(config).items()}
    arrays, _ = runs.load_checkpoint(checkpoint, expected)
    returns = control.evaluate(config, {k: arrays[k] for k in expected}, episodes, seed, greedy=not sample)
    return list(returns)
