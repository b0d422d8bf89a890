"""pgcore-play: watch a trained policy play any task, print the scores."""
import numpy as np

from pgcore import runs, tasks
from pgcore.agent import Agent
from pgcore.backends import load_backend


def play(task, checkpoint, episodes, seed, sample=False, gif_path=None, sticky=None, game=None):
    """Scores or returns of `episodes` episodes of the policy in `checkpoint` (a run directory or a
    checkpoint file; None: the policy shipped for the task, for Atari the `game`'s), greedy unless `sample` (--sample: the
    task's evaluate with deterministic=False). A task that prints each episode (Pong: each game's
    score as it ends) does so; one that takes them (Pong) may record the first episode in a GIF
    (`gif_path`) and play with `sticky` as its repeat_action_probability instead of the run's."""
    runs.check_whole_number("episodes", episodes, 1)
    runs.check_whole_number("seed", seed, 0)
    agent = Agent.pretrained(task, game) if checkpoint is None else Agent.load(checkpoint)
    if agent.task != task:
        raise runs.RunError(f"{checkpoint} holds a {agent.task} policy, not {task}")
    spec = tasks.get(task)
    frames = [] if gif_path else None

    def announce(episode, score):
        print(f"{spec.episode_word} {episode + 1}: {spec.score_word} {score:+.0f}", flush=True)

    scores = spec.evaluate(agent.play_config(sticky), agent.params, episodes, seed, deterministic=not sample,
                           kernels=load_backend(agent.config.backend), frames=frames,
                           on_episode=announce if spec.print_each_episode else None)
    if gif_path:
        write_gif(gif_path, frames)
    return np.asarray(scores)


def write_gif(path, frames, every=2, duration_ms=40):
    from PIL import Image

    images = [Image.fromarray(frame) for frame in frames[::every]]
    images[0].save(path, save_all=True, append_images=images[1:], duration=duration_ms, loop=0, optimize=True)
