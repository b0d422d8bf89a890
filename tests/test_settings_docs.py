"""Every setting is defined once, in its config field: the flags of pgcore-train, the checks that
raise SettingError, --help with the defaults, and the settings tables of docs/API.md come from it.

The tables in docs/API.md (between the settings markers) must be what `pgcore.cli.settings_tables`
makes: after changing a setting, `python -m pgcore.cli --api-tables docs/API.md` rewrites them.
"""
import dataclasses
import math
import re
from pathlib import Path

import pytest

from pgcore import agent, cli, runs, settings, tasks

API = Path(__file__).resolve().parent.parent / "docs" / "API.md"


@pytest.mark.skipif(not API.is_file(), reason="docs/API.md is not beside the tests (run them from a checkout)")
def test_the_settings_tables_of_api_md_are_the_generated_ones():
    text = API.read_text()
    assert text.count(cli.API_BEGIN) == 1 and text.count(cli.API_END) == 1, "the settings markers of docs/API.md"
    written = text[text.index(cli.API_BEGIN) + len(cli.API_BEGIN) + 1:text.index(cli.API_END)]
    assert written == cli.settings_tables(), (
        "docs/API.md's settings tables differ from the settings' fields: run "
        "`python -m pgcore.cli --api-tables docs/API.md`")
    assert cli.api_doc_with_tables(text) == text


def test_the_tables_have_a_row_for_every_flag_of_every_task():
    table = cli.settings_tables()
    for task in tasks.REGISTRY.values():
        for opt in task.options():
            if opt.metadata["flag"] is not None:
                assert f"| `{opt.flag}" in table, (task.name, opt.flag)
    for flag in ("--resume RUN_DIR", "--print-config", "--list-presets"):
        assert f"`{flag}`" in table
    assert "| `--hidden N` | cartpole, acrobot | the MLP's hidden units (default 32) |" in table
    assert "Default: 3, or 2 with the fast, reinforce or classic preset." in table  # Pong's --actions, by preset


def test_every_setting_carries_its_help_and_checks():
    """Each field: a help text; a whole number has a minimum, a real number bounds, a text choices
    (or a task's own check: Pong's ray, Atari's game), a bool a switch; a flag unique to its setting."""
    flags = {}
    for task in tasks.REGISTRY.values():
        for opt in task.options():
            meta = opt.metadata
            assert meta["help"], (task.name, opt.name)
            if opt.name in ("task", "run_dir", "ray", "preset", "game"):
                continue
            if opt.type is bool:
                assert meta["switch"] in settings.SWITCHES, opt.name
            elif opt.type is int:
                assert meta["minimum"] is not None or meta["choices"], opt.name
            elif opt.type is float:
                assert meta["bounds"] is not None, opt.name
            else:
                assert meta["choices"], opt.name
            if meta["flag"] is not None:
                assert flags.setdefault(opt.flag, opt.name) == opt.name, opt.flag


def _out_of_bounds(opt):
    """A value just outside the bounds of a setting's field (None if it has none to leave)."""
    meta = opt.metadata
    if opt.type is bool:
        return "yes"
    if meta["choices"]:
        return "none of them"
    if meta["minimum"] is not None:
        return meta["minimum"] - 1
    if meta["bounds"] is not None:
        low, high, low_open = meta["bounds"]
        return low if low_open else (low - 1 if math.isfinite(high) else -math.inf)
    return None


@pytest.mark.parametrize("task", list(tasks.REGISTRY))
def test_the_checks_are_the_fields_bounds(task):
    """Each setting a task takes, set just outside its field's bounds, is refused naming it; at
    the bounds it is not."""
    spec = tasks.get(task)
    for opt in spec.options():
        if opt.name not in {field.name for field in dataclasses.fields(spec.config_class)} or opt.name == "task":
            continue
        bad = _out_of_bounds(opt)
        if bad is None:
            continue
        config = dataclasses.replace(spec.default_config(), **{opt.name: bad})
        with pytest.raises(runs.SettingError) as error:
            spec.check_config(config)
        assert error.value.setting == opt.name, (opt.name, bad, str(error.value))


@pytest.mark.parametrize("task", list(tasks.REGISTRY))
def test_task_help_shows_each_flag_with_the_tasks_own_default(task):
    text = re.sub(r"\s+", "", cli.train_parser(task).format_help())  # (argparse wraps lines at hyphens too)
    spec = tasks.get(task)
    for opt in spec.options():
        if opt.metadata["flag"] is None or (opt.type is bool and opt.metadata["switch"] != "both"):
            continue
        assert re.sub(r"\s+", "", cli._with_default(opt.help, spec.default_text(opt.name))) in text, (task, opt.name)


def test_the_defaults_in_help_are_the_configs():
    cartpole, pong = tasks.get("cartpole"), tasks.get("pong")
    assert cartpole.default_text("lr") == "0.01" and cartpole.default_text("baseline") == "off"
    assert tasks.get("taxi").default_text("baseline") == "on"
    assert pong.default_text("threads") == "every core" and pong.default_text("preset") == "frame"
    assert pong.default_text("gae_start_frames") == ("5000000, or 0 with the rollouts, fast, reinforce or classic "
                                                     "preset, or 20000000 with the gae preset")
    assert cli._task_defaults("hidden") == "pong: 200; atari: 200; the other tasks: 32"
    assert settings.grouped_text({"a": "1", "b": "2", "c": "2"}) == "1 for a, 2 otherwise"


@pytest.mark.parametrize("preset", ["frame", "gae", "fast", "reinforce", "classic"])
def test_list_presets_prints_the_flags_each_preset_resolves_to(preset, capsys):
    """The flags --list-presets prints for a preset, given instead of it, make the preset's config."""
    assert cli.train_main(["pong", "--list-presets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    index = next(i for i, line in enumerate(lines) if re.match(rf"{preset}\b", line))
    flags = lines[index + 1].split() if lines[index + 1].strip() != "(the defaults)" else []
    given = cli.given_settings(cli.parse_train_args(["pong", *flags]))
    assert agent.make_config("pong", **given) == agent.make_config("pong", preset=preset)
    assert "(the default)" in lines[0] and lines[0].startswith("frame")


def test_list_presets_of_a_task_without_presets_is_an_error(capsys):
    assert cli.train_main(["cartpole", "--list-presets"]) == 2
    assert "no presets" in capsys.readouterr().err


def test_pong_config_defaults_are_the_frame_recipe_and_the_presets_data_over_it():
    from pgcore import pong

    assert pong.PongConfig(threads=1) == pong.make_config("frame", threads=1) == pong.make_config(threads=1)
    assert pong.PRESETS["frame"] == {}
    fast = pong.make_config("fast")
    assert (fast.actions, fast.advantage, fast.gae_start_frames, fast.frame_input) == (2, "returns", 0, False)
    assert (fast.rollout_steps, fast.lr_decay_frames) == (0, 0)
    # --advantage returns over the rollouts preset plays whole games, unless --rollout-steps is given
    assert pong.make_config("rollouts", advantage="returns").rollout_steps == 0
    assert pong.make_config("rollouts", advantage="returns", rollout_steps=64).rollout_steps == 64
    # a checkpoint saved before a setting existed ran with the defaults of its time
    old = {name: value for name, value in dataclasses.asdict(fast).items()
           if name not in ("actions", "frame_input", "gae_start_frames", "advantage", "epochs", "minibatches",
                           "rollout_steps", "lr_decay_frames")}
    assert pong.config_from_saved(old) == dataclasses.replace(fast, epochs=1, minibatches=1)
    assert pong.config_from_saved(dataclasses.asdict(pong.make_config(threads=3))) == pong.make_config(threads=3)


def test_help_after_a_preset_shows_that_presets_defaults(capsys):
    """pgcore-train pong --preset classic --help: the defaults are the classic preset's."""
    with pytest.raises(SystemExit):
        cli.train_main(["pong", "--preset", "classic", "--help"])
    text = re.sub(r"\s+", " ", capsys.readouterr().out)
    assert "--lr X learning rate, in (0, 1]; may change on --resume (default 0.0001)" in text
    assert "cannot change on resume. Default: 2." in text  # --actions
    with pytest.raises(SystemExit):
        cli.train_main(["pong", "--help"])
    assert "(default 0.001, or 0.0001 with the classic preset)" in re.sub(r"\s+", " ", capsys.readouterr().out)
