"""A run whose disk fills up mid-run (needs root: it mounts a 1 MiB tmpfs as the run directory).

`pgcore-train pong` with a tiny network writes a checkpoint every episode; each is ~0.6 MiB and
the new one is written beside the old before the rename, so the second write runs out of space.
The run must end with a one-line error and exit code 2, and the checkpoint left on the file
system must still load, with its progress.csv in step. (Remounting the run directory read-only
mid-run is refused by Linux while progress.csv is open for writing, so that case is not tried.)

Usage: sudo python benchmarks/reliability/full_disk.py
"""
import os
import subprocess
import sys
import tempfile

from pgcore import runs

SMALL = ["--envs", "2", "--hidden", "8", "--batch-episodes", "1", "--sync", "--quiet", "--checkpoint-every", "1",
         "--max-episodes", "200"]


def train(run_dir):
    script = os.path.join(os.path.dirname(sys.executable), "pgcore-train")
    return subprocess.Popen([script, "pong", "--run-dir", run_dir, *SMALL], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def check_left_behind(run_dir):
    arrays, meta = runs.load_checkpoint(os.path.join(run_dir, runs.CHECKPOINT_NAME))
    with open(os.path.join(run_dir, "progress.csv")) as f:
        rows = f.read().splitlines()[1:]
    episodes = meta["counters"]["episode"]
    assert episodes >= 1 and len(rows) >= episodes, (episodes, len(rows))
    return episodes, len(rows)


def scenario(name, size):
    mount = tempfile.mkdtemp(prefix=f"pgcore-{name}-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", mount], check=True)
    try:
        run_dir = os.path.join(mount, "run")
        process = train(run_dir)
        _, stderr = process.communicate(timeout=300)
        episodes, rows = check_left_behind(run_dir)
        lines = stderr.strip().splitlines()
        ok = process.returncode == 2 and len(lines) == 1 and "Traceback" not in stderr
        print(f"{name}: exit {process.returncode}, stderr {lines!r}; checkpoint loads (episode {episodes}), "
              f"progress.csv {rows} rows -> {'OK' if ok else 'FAILED'}", flush=True)
        return ok
    finally:
        subprocess.run(["umount", mount], check=True)
        os.rmdir(mount)


def main():
    if os.geteuid() != 0:
        print("needs root (it mounts a tmpfs)", file=sys.stderr)
        return 2
    return 0 if scenario("full-disk", "1m") else 1


if __name__ == "__main__":
    sys.exit(main())
