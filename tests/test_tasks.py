"""The task interface (pgcore.task.Task) and its registry (pgcore.tasks): every task implements it,
the Agent, the command line and pgcore-play reach tasks only through the registry, and a policy
loads and plays from its config alone (no environment made: an inverted-pendulum policy plays
without MuJoCo)."""
import ast
import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest

import pgcore
from pgcore import control, task, tasks

PGCORE = os.path.dirname(os.path.abspath(pgcore.__file__))


def test_every_registered_task_implements_the_interface():
    assert list(tasks.REGISTRY) == list(pgcore.TASKS) and len(tasks.REGISTRY) == 8
    for name, spec in tasks.REGISTRY.items():
        assert isinstance(spec, task.Task) and spec.name == name and spec.description
        config = spec.default_config()
        spec.check_config(config)
        assert config.task == name and dataclasses.is_dataclass(config)
        shapes = spec.param_shapes(config)
        fixed = spec.fixed_arrays(config)
        assert set(spec.policy_shapes(config)) <= set(shapes) | set(fixed) and not set(fixed) & set(shapes)
        params = spec.initial_params(config)
        assert {k: v.shape for k, v in params.items()} == {k: tuple(v) for k, v in shapes.items()} | {
            name: shape for name, (shape, _) in fixed.items()}
        assert all(params[name].dtype == dtype for name, (_, dtype) in fixed.items())
        assert set(spec.checkpoint_arrays(config)) >= set(shapes) | set(fixed)
        assert spec.config_from_saved(dataclasses.asdict(config)) == config
    with pytest.raises(ValueError, match="already registered"):
        tasks.register(tasks.get("pong"))
    with pytest.raises(pgcore.SettingError, match="known tasks: pong, atari, frozenlake"):
        tasks.get("frozen-lake")


def _code_names(path):
    """The string constants (docstrings left out), names, attributes and imported modules of a module."""
    tree = ast.parse(open(path).read())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and node.body
                  and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            found.append(node.value)
        elif isinstance(node, ast.Name):
            found.append(node.id)
        elif isinstance(node, ast.Attribute):
            found.append(node.attr)
        elif isinstance(node, ast.ImportFrom):
            found += [node.module or ""] + [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
    return found


@pytest.mark.parametrize("module", ["agent.py", "cli.py", "play.py"])
def test_the_agent_the_cli_and_play_name_no_task(module):
    """They reach the tasks through pgcore.tasks: no task's name or module in their code."""
    words = {name.lower() for name in tasks.REGISTRY} | {"pong", "control", "distributed"}
    for text in _code_names(os.path.join(PGCORE, module)):
        assert not words & set(text.lower().replace("-", " ").replace(".", " ").replace("'", " ").split()), \
            f"{module} names a task: {text!r}"


def test_the_task_sizes_are_the_environments():
    """The TaskSpec sizes a policy is made from (no environment) are the environments' spaces."""
    for name, spec in control.TASKS.items():
        if spec.family == "gaussian" and not _mujoco_installed():
            continue
        for map_name in (("4x4", "8x8") if isinstance(spec.observations, dict) else ("4x4",)):
            config = control.default_config(name, map=map_name)
            env = control.make_env(config)
            try:
                observation, action = control.spaces(config)
                real = (env.observation_space, env.action_space)
                if spec.family == "tabular":
                    assert observation.n == real[0].n
                else:
                    assert observation.shape == real[0].shape
                if spec.family == "gaussian":
                    assert action.shape == real[1].shape
                    np.testing.assert_array_equal(action.low, real[1].low)
                    np.testing.assert_array_equal(action.high, real[1].high)
                else:
                    assert action.n == real[1].n
                shapes = control.param_shapes(config)
                assert {k: v.shape for k, v in control.make_policy(config, None, env).init_params(
                    np.random.default_rng(0), np.float64).items()} == shapes, name
            finally:
                env.close()


def _mujoco_installed():
    import importlib.util
    return importlib.util.find_spec("mujoco") is not None


PLAY_WITHOUT_MUJOCO = """
import sys
sys.modules["mujoco"] = None  # `import mujoco` fails: gymnasium cannot make a MuJoCo environment
import numpy as np
import pgcore
try:
    import gymnasium
    gymnasium.make("InvertedPendulum-v5")
    raise SystemExit("MuJoCo was not blocked")
except Exception as error:
    assert "mujoco" in repr(error).lower() or isinstance(error, ImportError), repr(error)
agent = pgcore.Agent.load(sys.argv[1])
print(agent.predict(np.array([0.1, 0.0, -0.2, 0.05]))[0].tolist())
print(agent.predict(np.zeros((3, 4)))[0].tolist())
print({k: v.shape for k, v in pgcore.Agent("inverted-pendulum", seed=1).params.items()})
"""


def test_an_inverted_pendulum_policy_loads_and_plays_without_mujoco(tmp_path):
    agent = pgcore.Agent("inverted-pendulum", seed=0)
    agent._params = {"theta": np.random.default_rng(0).normal(size=(5, 1))}  # a policy that does not act 0
    path = agent.save(tmp_path / "policy.npz")
    result = subprocess.run([sys.executable, "-c", PLAY_WITHOUT_MUJOCO, path], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path)  # away from the checkout: the installed pgcore
    assert result.returncode == 0, result.stderr[-3000:]
    single, batch, shapes = result.stdout.splitlines()
    loaded = pgcore.Agent.load(path)
    assert eval(single) == loaded.predict(np.array([0.1, 0.0, -0.2, 0.05]))[0].tolist()
    assert eval(batch) == loaded.predict(np.zeros((3, 4)))[0].tolist()
    assert shapes == "{'theta': (5, 1)}"
    far, _ = loaded.predict(np.full(4, 1e3))
    assert np.all(np.abs(far) <= 3.0), "the action is clipped to the action space"


def test_the_agent_predicts_through_the_tasks_player():
    """Agent.predict is the task's player: Pong's checks its frames, the others' their observations."""
    with pytest.raises(ValueError, match="Pong frames"):
        pgcore.Agent.pretrained().predict(np.zeros((80, 80), np.uint8))
    agent = pgcore.Agent("taxi", seed=0)
    assert 0 <= agent.predict(3)[0] < 6 and agent.predict(np.arange(4))[0].shape == (4,)
    with pytest.raises(ValueError, match="observation"):
        agent.predict(500)


DESIGN = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "docs", "DESIGN.md")


@pytest.mark.skipif(not os.path.isfile(DESIGN), reason="docs/ is not beside the tests (run them from a checkout)")
def test_the_example_task_of_the_design_doc_registers_trains_and_plays(tmp_path):
    """docs/DESIGN.md's "Adding a task" example, registered: its flags, checks and defaults come from
    its config's fields, it trains inside a runs.Run (resuming too) and learns to guess heads."""
    text = open(DESIGN).read()
    section = text[text.index("## Adding a task"):]
    code = section[section.index("```python\n") + len("```python\n"):section.index("```\n", section.index("```python"))]
    namespace = {"__name__": "coin_example"}
    exec(compile(code, "DESIGN.md: Adding a task", "exec"), namespace)
    coin = namespace["CoinTask"]()
    tasks.register(coin)
    try:
        from pgcore import agent, cli, kernels, runs
        assert "| `--heads P` | probability of heads (default 0.8) |" in cli.settings_tables()
        config = coin.make_config(max_episodes=256, batch_episodes=16, lr=0.1, run_dir=str(tmp_path), quiet=True)
        coin.check_config(config)
        with pytest.raises(pgcore.SettingError, match=r"heads must be a number in \[0, 1\]"):
            coin.check_config(dataclasses.replace(config, heads=1.5))
        runs.prepare_run_dir(config.run_dir, resume=False)
        counters, stopped_by = coin.train(config, kernels)
        assert counters["episode"] == 256 and counters["updates"] == 16 and stopped_by is None
        opened = agent.open_checkpoint(tmp_path, for_training=True)
        assert opened.config == config and opened.arrays["w"][0, 0] > opened.arrays["w"][0, 1], "heads is likelier"
        more = dataclasses.replace(opened.config, max_episodes=288)
        assert coin.train(more, kernels, opened.meta, opened.arrays)[0]["episode"] == 288
        assert coin.evaluate(config, opened.arrays, 1000, seed=0).mean() > 0.7
        assert coin.player(config, opened.arrays, kernels, np.random.default_rng(0)).predict(0) == (0, None)
    finally:
        del tasks.REGISTRY["coin"]
