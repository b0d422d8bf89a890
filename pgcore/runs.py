"""Run directories: config.json, progress.csv and atomic, pickle-free checkpoints.

A checkpoint is one `.npz` file holding named arrays plus a JSON document (stored
as a uint8 array named `__meta__`), written to a temporary file, fsynced and
renamed over the old one, so a crash at any moment leaves the last good one. It is
read with `allow_pickle=False`, so loading never runs code from the file.
"""
import csv
import io
import json
import math
import os
import platform
import sys
import tempfile
import zipfile

import numpy as np

PROGRESS_COLUMNS = ["episode", "frames", "steps", "reward", "running_reward", "wall_s", "steps_per_s"]
CHECKPOINT_NAME = "checkpoint.npz"
META_KEY = "__meta__"
_UMASK = os.umask(0)
os.umask(_UMASK)


class RunError(Exception):
    """A run directory, config or checkpoint that cannot be used (the CLI prints it, exit 2)."""


def check_whole_numbers(config, names, low):
    """Raises ValueError naming the first of `names` that is not an int >= low (bools refused)."""
    for name in names:
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be a whole number >= {low}, not {value!r}")


def progress_bar(config, episodes_done):
    """tqdm over episodes (up to max_episodes when there is one); it shows nothing when config.quiet."""
    from tqdm import tqdm
    return tqdm(total=config.max_episodes or None, initial=episodes_done, unit="ep", dynamic_ncols=True,
                disable=config.quiet)


def running_mean(previous, value):
    """The logged running reward: 0.99 of the previous one plus 0.01 of the new value (the first as is)."""
    return value if previous is None else 0.99 * previous + 0.01 * value


def check_resume_meta(meta, counter_types, reward_bounds=(-math.inf, math.inf)):
    """The counters (name -> type, each >= 0), running reward and RNG state of a checkpoint,
    checked; raises ValueError naming the problem."""
    counters = meta.get("counters")
    if not isinstance(counters, dict):
        raise ValueError("no counters")
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
    (shape None: any 1-d length).

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
        if not shape_ok or array.dtype != np.dtype(dtype):
            wanted = "(any length,)" if shape is None else tuple(shape)
            raise RunError(f"checkpoint {path}: {name} has shape {array.shape} and dtype {array.dtype}, "
                           f"expected {wanted} {np.dtype(dtype)}")
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

    import pgcore
    return {"cpu": cpu, "cpu_count": os.cpu_count(), "python": sys.version.split()[0], "numpy": np.__version__,
            "ale_py": ale_py.__version__, "gymnasium": gymnasium.__version__, "pgcore": pgcore.__version__,
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
        with open(path_ := self.path, newline="") as f:
            text = f.read()
        lines = text.splitlines()
        header = lines[0].split(",") if lines else []
        # A file written before newer columns existed is kept, its rows padded with 0 for them.
        if header != self.columns[: len(header)] or len(header) < len(PROGRESS_COLUMNS):
            raise RunError(f"{path_} does not start with the progress.csv header")
        padding = ["0"] * (len(self.columns) - len(header))
        complete = lines[1:] if text.endswith("\n") else lines[1:-1]  # drop a torn last line
        rows = []
        for line in complete:
            row = line.split(",")
            try:
                if int(row[0]) > keep_episodes:
                    break  # after the checkpoint: these episodes will be played again
            except ValueError:
                raise RunError(f"{path_} has a malformed row: {line[:80]!r}") from None
            if len(row) != len(header):
                raise RunError(f"{path_} has a malformed row: {line[:80]!r}")
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
