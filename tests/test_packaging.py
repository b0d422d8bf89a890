"""How pgcore behaves as an installed package: a source tree without its compiled kernels says
how to build them."""
import glob
import os
import shutil
import subprocess
import sys

import pgcore

IMPORT_FROM_COPY = """
import sys
sys.path.insert(0, sys.argv[1])
# an editable install's finder would find the real package's compiled modules: leave it out
sys.meta_path[:] = [finder for finder in sys.meta_path if "editable" not in repr(finder).lower()]
import pgcore
assert pgcore.__file__.startswith(sys.argv[1]), pgcore.__file__
import pgcore.reference  # the NumPy twins need nothing compiled
try:
    import pgcore.kernels
except ImportError as error:
    print("ImportError:", error)
else:
    print("imported")
"""


def test_an_unbuilt_source_tree_says_how_to_build_the_kernels(tmp_path):
    package = tmp_path / "pgcore"
    package.mkdir()
    for source in glob.glob(os.path.join(os.path.dirname(pgcore.__file__), "*.py")):
        shutil.copy(source, package)
    result = subprocess.run([sys.executable, "-c", IMPORT_FROM_COPY, str(tmp_path)], capture_output=True,
                            text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    message = result.stdout.strip()
    assert message.startswith("ImportError:") and "not built" in message and "pip install" in message, message
    assert str(package) in message and len(message.splitlines()) == 1


def test_the_version_is_written_once():
    """pgcore/_version.py holds it: the installed package's metadata (pyproject.toml reads it from
    there, dynamic) and pgcore.__version__ agree, and pyproject.toml does not write it again."""
    import importlib.metadata

    assert importlib.metadata.version("pgcore") == pgcore.__version__
    pyproject = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "pyproject.toml")
    if os.path.isfile(pyproject):  # a source checkout (CI runs the tests from one)
        try:
            import tomllib
        except ImportError:  # Python 3.10
            return
        with open(pyproject, "rb") as f:
            project = tomllib.load(f)
        assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
        assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "pgcore._version.__version__"}
