"""The registry of tasks: every `pgcore.task.Task` that pgcore-train, pgcore-play, `pgcore.Agent`
and the settings tables of docs/API.md know, by name.

Adding a task is one module (its config, trainer, player and Task subclass: see
pgcore/task.py and docs/DESIGN.md, "Adding a task") and one `register(...)` line below. This is
the one module besides the tasks' own that imports them. A task registered later (from a user's
own module) is a task of the Agent and of the CLI's parsers made after it, as these are.
"""
import functools

from pgcore import atari, control, pong, runs

REGISTRY = {}  # name -> Task, in registration order (the order --help and the docs list them)


def register(*tasks):
    """Adds tasks (Task instances) to the registry; a name already taken is an error."""
    for task in tasks:
        if task.name in REGISTRY:
            raise ValueError(f"a task named {task.name!r} is already registered")
        REGISTRY[task.name] = task


register(pong.TASK, atari.TASK)
register(*control.CONTROL_TASKS)


def names():
    return tuple(REGISTRY)


def get(name):
    """The task named `name`; SettingError naming the known ones otherwise."""
    if name not in REGISTRY:
        raise runs.SettingError("task", f"unknown task {name!r}; known tasks: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def shipping():
    """The tasks registered now that ship installed policies (Task.shipped_policies), in order."""
    return [task for task in REGISTRY.values() if task.shipped_policies()]


def of(config):
    """The task of a config (its `task` field)."""
    return get(config.task)


def name_in_checkpoint(meta):
    """The task a checkpoint's or policy file's metadata names: the one its config records, else the
    one whose format it has (files written before configs recorded their task); None if neither
    (it may name a task that is not registered: `get` refuses it)."""
    saved = meta.get("config")
    if not isinstance(saved, dict):
        return None
    if "task" in saved:
        return saved["task"]
    fmt = str(meta.get("format", ""))
    return next((task.name for task in REGISTRY.values() if fmt in (task.checkpoint_format, *task.policy_formats)),
                None)


def setting_tasks():
    """setting name -> the names of the tasks that take it (every setting of every task but
    `task` and `run_dir`, which the Agent's task and learn() fix), for the tasks registered now."""
    return _setting_tasks(tuple(REGISTRY.values()))


@functools.lru_cache(maxsize=8)
def _setting_tasks(registered):
    table = {}
    for task in registered:
        for opt in task.options():
            table.setdefault(opt.name, []).append(task.name)
    return {name: tuple(takers) for name, takers in table.items() if name not in ("task", "run_dir")}


def descriptions():
    """name -> one line, of every registered task (pgcore.TASKS, pgcore-train --help)."""
    return {name: task.description for name, task in REGISTRY.items()}


def groups():
    """docs group -> its tasks, in registration order (tasks documented in one table)."""
    table = {}
    for task in REGISTRY.values():
        table.setdefault(task.docs_group or task.name, []).append(task)
    return table
