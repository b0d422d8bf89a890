"""The user-facing text: README.md, CONTRIBUTING.md, CHANGELOG.md and docs/ stay short, current and true.

Every `pgcore-*` command line written in them is parsed by the real parsers (so a renamed or removed
flag fails here), the README's Python example runs (with a smaller training budget), and words that
only their writer could place (project history, absolute paths of a machine) are kept out.
The checks need the repository's files beside the tests; CI runs them from a checkout.
"""
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from pgcore import bench, cli

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
if not (REPO / "README.md").is_file() or not DOCS.is_dir():
    pytest.skip("README.md and docs/ are not beside the tests (run them from a checkout)", allow_module_level=True)

USER_TEXT = sorted([REPO / "README.md", REPO / "CONTRIBUTING.md", REPO / "CHANGELOG.md", *DOCS.rglob("*.md")])

# Words of the project's history, and paths of one machine: a reader cannot place them.
FORBIDDEN = {
    "an issue number": re.compile(r"\bissues? #?\d+", re.IGNORECASE),
    "'today's'": re.compile(r"\btoday'?s\b", re.IGNORECASE),
    "'the review'": re.compile(r"\bthe review\b", re.IGNORECASE),
    "a work session": re.compile(r"\b(this|last|next|previous|earlier|later|that|one) sessions?\b", re.IGNORECASE),
    "an absolute path": re.compile(r"(?<![\w.])/(?:work|tmp|home|root|Users|opt)/"),
}

COMMANDS = ("pgcore-train", "pgcore-play", "pgcore-plot", "pgcore-bench")
# Placeholders the docs write in place of a value, and a value that parses in their place.
PLACEHOLDERS = {"S": "0", "N": "1", "M": "1", "K": "1", "X": "0.5", "P": "0.25", "TASK": "pong", "G": "Pong",
                "DIR": "runs/x", "RUN_DIR": "runs/x", "PATH": "runs/x", "FILE": "x.gif", "PNG": "x.png",
                "HOST:PORT": "127.0.0.1:6379", "HEAD_IP:6379": "127.0.0.1:6379", "NAME": "frame"}


def test_the_readme_is_a_front_door():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; keep it at most 200 (details go to docs/)"


PYTHON_BLOCKS = [(page, number, block) for page in ("README.md", "docs/API.md", "docs/guide.md")
                 for number, block in enumerate(re.findall(r"```python\n(.*?)```", (REPO / page).read_text(), re.DOTALL))]


def test_the_readme_has_one_python_example():
    assert [page for page, _, _ in PYTHON_BLOCKS].count("README.md") == 1


@pytest.mark.parametrize("page, number, code", PYTHON_BLOCKS, ids=[f"{page}-{number}" for page, number, _ in PYTHON_BLOCKS])
def test_every_python_example_runs(page, number, code, tmp_path):
    """A Python block of README.md, docs/API.md or docs/guide.md, run as it is written but with its
    training budgets made smaller (every `max_episodes=N` becomes N // 50), in a fresh directory, in a
    subprocess: it trains briefly, saves, loads and resumes, and plays Pong with the shipped policy."""
    code = re.sub(r"max_episodes=(\d+)", lambda match: f"max_episodes={max(1, int(match.group(1)) // 50)}", code)
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def test_license_and_contributing_exist():
    assert "MIT License" in (REPO / "LICENSE").read_text()
    assert (REPO / "CONTRIBUTING.md").is_file() and (REPO / "CHANGELOG.md").is_file()


def test_docs_stay_small():
    size = sum(path.stat().st_size for path in DOCS.rglob("*") if path.is_file())
    assert size <= 3 * 1024 * 1024, f"docs/ holds {size / 2**20:.1f} MiB; at most 3 MiB (raw pilot data stays in git history)"


@pytest.mark.parametrize("path", USER_TEXT, ids=lambda path: str(path.relative_to(REPO)))
def test_no_words_only_their_writer_can_place(path):
    found = [f"line {number}: {what}: {line.strip()[:100]}"
             for number, line in enumerate(path.read_text().splitlines(), 1)
             for what, pattern in FORBIDDEN.items() if pattern.search(line)]
    assert not found, "\n".join(found)


def test_the_forbidden_words_are_caught():
    for text in ("as issue 14 found", "today's recipe", "after the review", "this session", "see /work/main/x"):
        assert any(pattern.search(text) for pattern in FORBIDDEN.values()), text
    for text in ("the tissue 3", "a path runs/x", "docs/results.md"):
        assert not any(pattern.search(text) for pattern in FORBIDDEN.values()), text


def test_the_command_help_has_no_history(capsys):
    for argv in (["--help"], ["pong", "--help"]):
        with pytest.raises(SystemExit):
            cli.train_main(argv)
    text = capsys.readouterr().out
    found = [what for what, pattern in FORBIDDEN.items() if pattern.search(text)]
    assert not found and "REINFORCE on Atari Pong" not in text, found


def _relative_links(path):
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text()):
        if not re.match(r"[a-z]+:", target):
            yield target


@pytest.mark.parametrize("path", USER_TEXT, ids=lambda path: str(path.relative_to(REPO)))
def test_relative_links_resolve(path):
    broken = [target for target in _relative_links(path) if not (path.parent / target).exists()]
    assert not broken, f"{path.name} links to missing files: {broken}"


def _command_lines(path):
    """The pgcore-* command lines written in a page, in code blocks and in backticks, with their
    placeholders (S, N, DIR, ...) given values; synopses ([--flag], {a,b}, ...) are left out."""
    text = path.read_text()
    candidates = re.findall(r"`([^`\n]+)`", text)
    for block in re.findall(r"```[^\n]*\n(.*?)```", text, re.DOTALL):
        candidates += block.replace("\\\n", " ").splitlines()
    for candidate in candidates:
        for part in re.split(r"&&|\|\||;", candidate.split(" #")[0]):
            words = part.split()
            if len(words) < 2 or words[0] not in COMMANDS:  # a command's bare name in a sentence
                continue
            if any(mark in part for mark in ("[", "{", "...", "<")):
                continue
            yield " ".join(PLACEHOLDERS.get(word, word) for word in words)


DOC_COMMANDS = sorted({(str(path.relative_to(REPO)), line) for path in USER_TEXT for line in _command_lines(path)})


def test_the_pages_have_command_lines():
    pages = {page for page, _ in DOC_COMMANDS}
    assert {"README.md", "docs/guide.md"} <= pages and len(DOC_COMMANDS) >= 30, DOC_COMMANDS


@pytest.mark.parametrize("page, line", DOC_COMMANDS)
def test_every_documented_command_parses(page, line, tmp_path, monkeypatch, capsys):
    """A documented pgcore-train line makes its config (--print-config: the settings' checks, no
    training); a --resume line and the other commands parse with their real parsers."""
    monkeypatch.chdir(tmp_path)
    command, *argv = shlex.split(line)
    if "--help" in argv or "--version" in argv:
        parse = {"pgcore-train": cli.parse_train_args, "pgcore-play": cli.parse_play_args,
                 "pgcore-plot": cli.parse_plot_args, "pgcore-bench": bench.parse_args}[command]
        with pytest.raises(SystemExit) as stop:
            parse(argv)
        assert stop.value.code == 0, capsys.readouterr().err
    elif command == "pgcore-train" and "--resume" not in argv:
        assert cli.train_main(argv + ["--print-config"]) == 0, capsys.readouterr().err
        assert not list(tmp_path.iterdir()), "--print-config wrote files"
    elif command == "pgcore-train":
        cli.parse_train_args(argv)
    elif command == "pgcore-play":
        cli.parse_play_args(argv)
    elif command == "pgcore-plot":
        cli.parse_plot_args(argv)
    else:
        bench.parse_args(argv)
