"""Run directories: config.json, progress.csv and atomic, pickle-free checkpoints.

A checkpoint is one `.npz` file holding named arrays plus a JSON document (stored
as a uint8 array named `__meta__`), written to a temporary file, fsynced and
renamed over the old one, so a crash at any moment leaves the last good one. It is
read with `allow_pickle=False`, so loading never runs code from the file.
"""
import contextlib
import contextvars
import csv
import dataclasses
import fcntl
import gzip
import io
import json
import math
import os
import platform
import signal
import sys
import tempfile
import time
import warnings
import zipfile

import numpy as np

from pgcore import _threads
from pgcore._version import __version__

PROGRESS_COLUMNS = ["episode", "frames", "steps", "reward", "running_reward", "wall_s", "steps_per_s"]
CHECKPOINT_NAME = "checkpoint.npz"
LOCK_NAME = "train.lock"  # held by the process training in a run directory (run_dir_lock)
META_KEY = "__meta__"
_UMASK = os.umask(0)
os.umask(_UMASK)


class RunError(Exception):
    """A run directory, config or checkpoint that cannot be used (the CLI prints it, exit 2)."""


class SettingError(ValueError):
    """A setting out of its bounds; `setting` names it, so the CLI can name its flag."""

    def __init__(self, setting, message):
        super().__init__(message)
        self.setting = setting


def _is_real(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_whole_number(name, value, low):
    """Raises SettingError unless `value` is an integer >= low (bools refused)."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
        raise SettingError(name, f"{name} must be a whole number >= {low}, not {value!r}")


def check_whole_numbers(config, names, low):
    """Raises SettingError naming the first of `names` that is not an integer >= low."""
    for name in names:
        check_whole_number(name, getattr(config, name), low)


def check_number(name, value, low, high, low_open=False):
    """Raises SettingError unless `value` is a finite number in [low, high] (or (low, high] when
    low_open)."""
    if (not _is_real(value) or not math.isfinite(value) or not (low < value if low_open else low <= value)
            or not value <= high):
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high == math.inf else ']'}"
        raise SettingError(name, f"{name} must be a number in {interval}, not {value!r}")


def check_numbers(config, bounds):
    """`bounds` maps a setting to (low, high, low_open); raises SettingError naming the first
    setting that is not a finite number in [low, high] (or (low, high] when low_open)."""
    for name, (low, high, low_open) in bounds.items():
        check_number(name, getattr(config, name), low, high, low_open)


def check_choice(config, name, choices):
    check_one_of(name, getattr(config, name), choices)


def check_one_of(name, value, choices):
    """Raises SettingError unless `value` is one of `choices`."""
    if value not in choices:
        raise SettingError(name, f"{name} must be one of {', '.join(map(str, choices))}, not {value!r}")


def check_bool(name, value):
    """Raises SettingError unless `value` is True or False."""
    if not isinstance(value, bool):
        raise SettingError(name, f"{name} must be True or False, not {value!r}")


def available_memory():
    """Bytes of memory a new allocation can use now (MemAvailable plus free swap), or None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            fields = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f if line.strip()}
        return fields["MemAvailable"] + fields.get("SwapFree", 0)
    except (OSError, KeyError, ValueError, IndexError):
        return None


def check_memory(setting, value, needed_bytes):
    """Raises SettingError naming `setting` when a run needs more memory than the machine has free."""
    available = available_memory()
    if available is not None and needed_bytes > available:
        raise SettingError(setting, f"{setting}={value!r} needs about {needed_bytes / 2**30:,.1f} GiB of memory; "
                                    f"{available / 2**30:,.1f} GiB are available")


def progress_bar(config, episodes_done):
    """tqdm over episodes (up to max_episodes when there is one); it shows nothing when config.quiet."""
    from tqdm import tqdm
    return tqdm(total=config.max_episodes or None, initial=episodes_done, unit="ep", dynamic_ncols=True,
                disable=config.quiet)


def running_mean(previous, value):
    """The logged running reward: 0.99 of the previous one plus 0.01 of the new value (the first as is)."""
    return value if previous is None else 0.99 * previous + 0.01 * value


def check_resume_meta(meta, counter_types, reward_bounds=(-math.inf, math.inf), added_later=None):
    """The counters (name -> type, each >= 0), running reward and RNG state of a checkpoint,
    checked; raises ValueError naming the problem. Counters in `added_later` (name -> start
    value) may be missing, from checkpoints older than them: they are filled in."""
    counters = meta.get("counters")
    if not isinstance(counters, dict):
        raise ValueError("no counters")
    for name, start in (added_later or {}).items():
        counters.setdefault(name, start)
    for name, kind in counter_types.items():
        value = counters.get(name)
        if not isinstance(value, kind) or isinstance(value, bool) or value < 0:
            raise ValueError(f"counter {name} is {value!r}")
    running = counters.get("running_reward", "missing")
    low, high = reward_bounds
    if running is not None and (not isinstance(running, (int, float)) or isinstance(running, bool)
                                or not low <= running <= high):
        raise ValueError(f"running_reward is {running!r}")
    try:
        np.random.default_rng().bit_generator.state = meta["rng"]
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"RNG state unusable ({error})") from None


def atomic_write_bytes(path, data):
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)


def save_checkpoint(path, arrays, meta):
    """Writes `arrays` (name -> ndarray, no object dtypes) and `meta` (JSON-able) atomically."""
    buffer = io.BytesIO()
    payload = {name: np.asarray(value) for name, value in arrays.items()}
    for name, value in payload.items():
        if value.dtype.hasobject:
            raise TypeError(f"checkpoint array {name} has an object dtype")
    payload[META_KEY] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(buffer, **payload)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path, expected=None):
    """Returns (arrays, meta). `expected` maps array names to (shape, dtype) to check
    (shape None: any 1-d length; dtype None: any float dtype).

    Any problem (missing, truncated, not an npz, pickled objects, wrong shapes or
    dtypes, bad JSON) raises RunError with a one-line message naming the file.
    """
    if not os.path.isfile(path):
        raise RunError(f"checkpoint not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as error:
        raise RunError(f"corrupt checkpoint {path}: {error.__class__.__name__}: {error}") from None
    if META_KEY not in arrays:
        raise RunError(f"corrupt checkpoint {path}: no metadata")
    try:
        meta = json.loads(arrays.pop(META_KEY).tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunError(f"corrupt checkpoint {path}: metadata is not JSON ({error})") from None
    if not isinstance(meta, dict):
        raise RunError(f"corrupt checkpoint {path}: metadata is not a JSON object")
    for name, (shape, dtype) in (expected or {}).items():
        if name not in arrays:
            raise RunError(f"corrupt checkpoint {path}: array {name} is missing")
        array = arrays[name]
        shape_ok = array.ndim == 1 if shape is None else array.shape == tuple(shape)
        dtype_ok = array.dtype.kind == "f" if dtype is None else array.dtype == np.dtype(dtype)
        if not shape_ok or not dtype_ok:
            wanted = "(any length,)" if shape is None else tuple(shape)
            raise RunError(f"checkpoint {path}: {name} has shape {array.shape} and dtype {array.dtype}, "
                           f"expected {wanted} {'float' if dtype is None else np.dtype(dtype)}")
        if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
            raise RunError(f"corrupt checkpoint {path}: {name} holds non-finite values")
    return arrays, meta


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def machine_info():
    cpu = cpu_name()
    import ale_py
    import gymnasium

    return {"cpu": cpu, "cpu_count": os.cpu_count(), "python": sys.version.split()[0], "numpy": np.__version__,
            "ale_py": ale_py.__version__, "gymnasium": gymnasium.__version__, "pgcore": __version__,
            "platform": platform.platform()}


def write_json(path, document):
    atomic_write_bytes(path, (json.dumps(document, indent=2, sort_keys=True) + "\n").encode())


def read_json(path):
    try:
        with open(path) as f:
            document = json.load(f)
    except FileNotFoundError:
        raise RunError(f"{path} not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RunError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise RunError(f"{path} does not hold a JSON object")
    return document


def prepare_run_dir(path, resume):
    """Creates (or, resuming, checks) a run directory we can write to."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise RunError(f"cannot create run directory {path}: {error.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise RunError(f"run directory {path} is not writable")
    if not resume and os.path.exists(os.path.join(path, CHECKPOINT_NAME)):
        raise RunError(f"{path} already holds a run; use --resume {path} to continue it, or another --run-dir")


@contextlib.contextmanager
def run_dir_lock(path):
    """Holds an exclusive lock on the run directory `path` (its train.lock, which says the
    holder's pid) while a trainer writes there. A second trainer, say a --resume started while
    the run still goes, would rewrite its config.json and progress.csv under it and lose rows: it
    gets a RunError instead. The lock (flock) goes with the process, however that ends."""
    lock_path = os.path.join(path, LOCK_NAME)
    with open(lock_path, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip()
            raise RunError(f"{path} is in use by another training process{f' (pid {holder})' if holder else ''}: "
                           "wait for it to stop, or stop it, then resume") from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def read_progress_rows(path):
    """(header, rows) of the progress.csv file `path`, as text: each a list of its comma-separated
    fields. A torn last line (one being written, or cut short by a crash: no newline yet) is left
    out; a path ending in .gz is read through gzip. The one place progress.csv is read:
    `read_progress` and `ProgressLog` start from it."""
    with (gzip.open if path.endswith(".gz") else open)(path, "rt", newline="") as f:
        text = f.read()
    lines = text.splitlines()
    header = lines[0].split(",") if lines else []
    complete = lines[1:] if text.endswith("\n") else lines[1:-1]
    return header, [line.split(",") for line in complete]


def _row_text(row):
    return ",".join(row)[:80]


def progress_path(run_dir):
    """The path of the progress.csv of the run in `run_dir`, or of its gzipped copy
    progress.csv.gz (as published runs have) when there is no plain one; None when neither is."""
    path = os.path.join(run_dir, "progress.csv")
    for candidate in (path, path + ".gz"):
        if os.path.isfile(candidate):
            return candidate
    return None


def read_progress(run_dir):
    """The progress.csv of the run in `run_dir` as columns: name -> array, one entry per finished
    episode, int64 where every value is a whole number, else float64 (a torn last line is left
    out). A run without progress.csv may have it gzipped, progress.csv.gz (as published runs
    do). Raises RunError when there is neither, it lacks a column of PROGRESS_COLUMNS, or a row is
    malformed."""
    path = progress_path(run_dir)
    if path is None:
        raise RunError(f"no progress.csv in {run_dir}")
    header, rows = read_progress_rows(path)
    missing = set(PROGRESS_COLUMNS) - set(header)
    if missing:
        raise RunError(f"{path} lacks the columns {sorted(missing)}")
    for row in rows:
        if len(row) != len(header):
            raise RunError(f"{path} has a malformed row: {_row_text(row)!r}")
    columns = {}
    for index, name in enumerate(header):
        values = np.array([row[index] for row in rows])
        try:
            columns[name] = values.astype(np.int64)
        except ValueError:
            try:
                columns[name] = values.astype(np.float64)
            except ValueError:
                raise RunError(f"{path} has a malformed {name} column") from None
    return columns


class ProgressLog:
    """progress.csv, one row per finished episode, flushed row by row.

    Resuming keeps the rows up to the checkpoint's episode count and drops any
    later ones (or a torn last line), so no row is ever duplicated.
    """

    def __init__(self, path, extra_columns=(), keep_episodes=None):
        self.path = path
        self.columns = PROGRESS_COLUMNS + list(extra_columns)
        rows = []
        if keep_episodes is not None and os.path.exists(path):
            rows = self._read_rows(keep_episodes)
        atomic_write_bytes(path, self._render([self.columns] + rows))
        self.file = open(path, "a", newline="")
        self.writer = csv.writer(self.file)

    def _read_rows(self, keep_episodes):
        path_ = self.path
        header, complete = read_progress_rows(path_)
        # A file written before newer columns existed is kept, its rows padded with 0 for them.
        if header != self.columns[: len(header)] or len(header) < len(PROGRESS_COLUMNS):
            raise RunError(f"{path_} does not start with the progress.csv header")
        padding = ["0"] * (len(self.columns) - len(header))
        rows = []
        for row in complete:
            try:
                if int(row[0]) > keep_episodes:
                    break  # after the checkpoint: these episodes will be played again
            except ValueError:
                raise RunError(f"{path_} has a malformed row: {_row_text(row)!r}") from None
            if len(row) != len(header):
                raise RunError(f"{path_} has a malformed row: {_row_text(row)!r}")
            rows.append(row + padding)
        return rows

    @staticmethod
    def _render(rows):
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(rows)
        return out.getvalue().encode()

    def append(self, values):
        self.writer.writerow(values)
        self.file.flush()

    def close(self):
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()


class StopRequest:
    """Turns SIGINT (Ctrl-C) and SIGTERM into a flag the loop checks between steps, so an
    episode's bookkeeping and an update are never cut in half; a second signal stops at once."""

    def __init__(self):
        self.signal_name = None
        self.previous = {}
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                self.previous[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread: signals stay as they are
                pass

    def _handle(self, signum, frame):
        if self.signal_name is not None:
            raise KeyboardInterrupt
        self.signal_name = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous = {}


def seed_streams(seed):
    """The run's three independent random streams: parameters, actions, environments."""
    return np.random.SeedSequence(seed).spawn(3)


# Every trainer's counters; a checkpoint's are checked against these types on resume.
COUNTER_TYPES = {"episode": int, "frames": int, "steps": int, "updates": int, "wall_s": (int, float), "segment": int}


def new_counters(extra=None):
    """A new run's counters: every trainer's, then `extra` (a trainer's own: name -> start value)."""
    return {"episode": 0, "frames": 0, "steps": 0, "updates": 0, "skipped_updates": 0, "running_reward": None,
            "wall_s": 0.0, "segment": 0} | dict(extra or {})


def new_meta(config, counter_types, checkpoint_format):
    """The metadata of a new run's first checkpoint (what `Run` saves as it starts): the config,
    new counters (one for each of `counter_types`, the task's), the action sampler's seeded state."""
    counters = new_counters()
    counters |= {name: 0 for name in counter_types if name not in counters}
    rng = np.random.default_rng(seed_streams(config.seed)[1])
    return {"config": dataclasses.asdict(config), "counters": counters, "rng": rng.bit_generator.state,
            "format": checkpoint_format}


# The callback of the runs made inside `episode_callback` (Agent.learn's `callback`).
_EPISODE_CALLBACK = contextvars.ContextVar("pgcore_episode_callback", default=None)


@contextlib.contextmanager
def episode_callback(callback):
    """Every `Run` made inside calls `callback(row)` after each finished episode (see Run): how
    `Agent.learn(callback=...)` reaches any task's trainer without the trainer passing it on."""
    if callback is not None and not callable(callback):
        raise SettingError("callback", f"callback must be callable (called with each episode's progress row), "
                                       f"not {callback!r}")
    token = _EPISODE_CALLBACK.set(callback)
    try:
        yield
    finally:
        _EPISODE_CALLBACK.reset(token)


def _row_value(value):
    """A progress row's value for a callback: a number (the trainers give some extra columns as text)."""
    return float(value) if isinstance(value, str) else value


class Run:
    """One segment of a training run: all that a trainer does besides collecting episodes and
    forming gradients, written once for every trainer.

    It starts the run's state (new, seeded from config.seed, or resumed from a checkpoint),
    sets the kernel thread count (and restores it on exit), turns Ctrl-C / SIGTERM into
    `stopped_by`, checks the limits, logs each finished episode (progress.csv and the progress
    bar), applies an update only when its gradient is finite, and checkpoints the trainer's state
    (`restore`) at the start of a new run, every `checkpoint_every` episodes or `checkpoint_minutes`
    of wall time (checked where the trainer calls `maybe_checkpoint`), and when the loop ends
    cleanly. An exception (a second Ctrl-C, a full disk) leaves the last good checkpoint as it was.

    A resumed run whose run directory holds no checkpoint yet (a saved file continued in a new
    directory) starts a new progress.csv, at the file's episode count, and saves as it starts.

    `callback` (default: the one of `episode_callback`) is called with each episode's progress
    row, a dict of progress.csv's columns, after the row is written. Returning False (exactly
    False) stops the run as Ctrl-C does (`stopped_by` "callback"): the loop ends at its next check
    (the trainer finishes the step or batch in progress) and the checkpoint is saved. An exception
    in it stops the run the same way and is raised again once the checkpoint is saved. Either way
    the callback is not called again.

        with runs.Run(config, "pgcore-x-1", kernel_threads=1, resume_meta=meta, resume_arrays=arrays) as run:
            state = run.restore(lambda: {...a new run's arrays, seeded by run.seeds[0]...})
            while run.running():
                ...collect with run.rng; run.apply_update(grads, step); run.finish_episode(reward)...
                run.maybe_checkpoint()
        return run.counters, run.stopped_by
    """

    def __init__(self, config, checkpoint_format, *, kernel_threads, resume_meta=None, resume_arrays=None,
                 extra_counters=None, extra_columns=(), callback=None):
        self.config, self.format, self.kernel_threads = config, checkpoint_format, kernel_threads
        self.resumed = resume_meta is not None
        self.arrays = resume_arrays
        self.seeds = seed_streams(config.seed)
        self.callback = _EPISODE_CALLBACK.get() if callback is None else callback
        self.callback_done = False    # it asked to stop (or raised): not called again
        self.callback_error = None    # what it raised, raised again after the final checkpoint
        self.callback_stopped = False
        counters = new_counters(extra_counters)
        if self.resumed:
            self.rng = np.random.default_rng()
            self.rng.bit_generator.state = resume_meta["rng"]
            counters |= resume_meta["counters"]  # counters added since the checkpoint keep their start value
            counters["segment"] += 1
        else:
            self.rng = np.random.default_rng(self.seeds[1])
        self.counters = counters
        self.checkpoint_path = os.path.join(config.run_dir, CHECKPOINT_NAME)
        # resumed in its own run directory, or (no checkpoint there yet) from a file, in a new one
        self.continued_here = self.resumed and os.path.isfile(self.checkpoint_path)
        self.progress = ProgressLog(os.path.join(config.run_dir, "progress.csv"), ["updates", *extra_columns],
                                    keep_episodes=counters["episode"] if self.continued_here else None)
        self.state = None
        self.saved_episode = counters["episode"]

    def __enter__(self):
        self.stop = StopRequest()
        self.previous_threads = _threads.get_num_threads()
        _threads.set_num_threads(self.kernel_threads)
        self.bar = progress_bar(self.config, self.counters["episode"])
        self.segment_start = self.saved_at = time.perf_counter()
        return self

    def __exit__(self, exc_type, exc, traceback):
        self.bar.close()
        try:
            if exc_type is None and self.state is not None:
                self.save()
        finally:
            self.progress.close()
            self.stop.__exit__()
            _threads.set_num_threads(self.previous_threads)
        if exc_type is None and self.callback_error is not None:
            raise self.callback_error  # the checkpoint is saved: nothing is lost

    @property
    def stopped_by(self):
        """None, or what asked the run to stop: the signal ("Ctrl-C", "SIGTERM"), or "callback"."""
        return "callback" if self.callback_stopped else self.stop.signal_name

    def restore(self, new_state):
        """The trainer's state, name -> array (parameters, optimizer state, ...): the checkpoint's
        arrays when resuming, else `new_state()`. Checkpoints save this dict, so the trainer
        updates its arrays in place or puts new ones in it. A new run saves its first checkpoint
        here, so a kill at any moment after this leaves a run to resume."""
        self.state = dict(self.arrays) if self.resumed else new_state()
        if not self.continued_here:
            self.save()
        return self.state

    def running(self):
        """False once a limit is reached or a stop was requested."""
        config, counters = self.config, self.counters
        limit_reached = ((config.max_frames and counters["frames"] >= config.max_frames)
                         or (config.max_episodes and counters["episode"] >= config.max_episodes)
                         or (config.max_minutes and self.wall() >= 60 * config.max_minutes))
        return not limit_reached and self.stopped_by is None

    def wall(self):
        """Seconds of training over every segment so far."""
        return self.counters["wall_s"] + time.perf_counter() - self.segment_start

    def apply_update(self, grads, step):
        """Calls `step()` and counts an update if every array in `grads` is finite; otherwise
        counts a skipped update and warns: one bad batch must not poison the parameters."""
        if all(np.isfinite(grad).all() for grad in grads):
            step()
            self.counters["updates"] += 1
            return True
        self.counters["skipped_updates"] += 1
        warnings.warn(f"episode {self.counters['episode']}: the batch gradient is not finite; the update is skipped",
                      RuntimeWarning, stacklevel=2)
        return False

    def finish_episode(self, reward, wall=None, extra=()):
        """Counts an episode and logs its row (`wall`: when it finished, default now; `extra`:
        the values of the trainer's extra columns)."""
        counters = self.counters
        counters["episode"] += 1
        counters["running_reward"] = running_mean(counters["running_reward"], reward)
        wall = self.wall() if wall is None else wall
        row = [counters["episode"], counters["frames"], counters["steps"], reward, round(counters["running_reward"], 6),
               round(wall, 3), round(counters["steps"] / max(wall, 1e-9), 1), counters["updates"], *extra]
        self.progress.append(row)
        self.bar.update(1)
        self.bar.set_postfix(running=f"{counters['running_reward']:.2f}",
                             fps=f"{counters['frames'] / max(wall, 1e-9):,.0f}", refresh=False)
        if self.callback is not None and not self.callback_done:
            self._call_back(dict(zip(self.progress.columns, map(_row_value, row))))

    def _call_back(self, row):
        """Calls the callback with a progress row; False, or an exception, stops the run."""
        try:
            stop = self.callback(row) is False
        except Exception as error:  # raised again once the checkpoint is saved (__exit__)
            self.callback_error, stop = error, True
        if stop:
            self.callback_done = True
            self.callback_stopped = self.stopped_by is None  # a signal that came first keeps its name

    def maybe_checkpoint(self):
        """Saves if `checkpoint_every` episodes or `checkpoint_minutes` have passed since the last save."""
        config = self.config
        episodes_due = config.checkpoint_every and self.counters["episode"] - self.saved_episode >= config.checkpoint_every
        time_due = config.checkpoint_minutes and time.perf_counter() - self.saved_at >= 60 * config.checkpoint_minutes
        if episodes_due or time_due:
            self.save()

    def save(self):
        """Writes the checkpoint atomically: the trainer's arrays, the config, counters and RNG state."""
        self.counters["wall_s"] = self.wall()
        self.segment_start = time.perf_counter()
        meta = {"config": dataclasses.asdict(self.config), "counters": self.counters,
                "rng": self.rng.bit_generator.state, "format": self.format}
        save_checkpoint(self.checkpoint_path, self.state, meta)
        self.saved_episode, self.saved_at = self.counters["episode"], time.perf_counter()
