"""pgcore's modules import one another without a cycle.

Every `import pgcore...`, `from pgcore import x`, `from pgcore.x import y` (and relative form) in
every module of the package, at any depth (inside functions too: a lazy import is an edge all
the same), is an edge of the graph; `from pgcore import x` is an edge to pgcore.x when x is a
module, else to the package (pgcore/__init__). A module's own parent package, which Python
imports first, is not counted: every module would then be in a cycle with pgcore/__init__.

The modules are found next to `pgcore.__file__`, so this checks the installed package (a wheel)
as well as a source tree; the compiled kernels (.so, from src/*.pyx) have no Python source and
import nothing of pgcore, so they cannot be in a cycle and are left out.
"""
import ast
import importlib.machinery
import os

import pgcore

PACKAGE = "pgcore"
COMPILED = {"_nn", "_policy", "_returns", "_optim", "_atari", "_sparse", "_openmp"}  # from src/*.pyx: no Python source


def package_modules(directory):
    """module name -> its .py file, for the package in `directory`."""
    modules = {}
    for name in sorted(os.listdir(directory)):
        if name.endswith(".py"):
            stem = name[:-3]
            modules[PACKAGE if stem == "__init__" else f"{PACKAGE}.{stem}"] = os.path.join(directory, name)
    return modules


def compiled_modules(directory):
    """The names of the package's compiled modules: those built here, those a source tree's
    src/*.pyx builds (it may not be built yet), and COMPILED."""
    built = {name.split(".")[0] for name in os.listdir(directory)
             if any(name.endswith(suffix) for suffix in importlib.machinery.EXTENSION_SUFFIXES)}
    src = os.path.join(directory, os.pardir, "src")
    sources = {name[:-4] for name in os.listdir(src) if name.endswith(".pyx")} if os.path.isdir(src) else set()
    return {f"{PACKAGE}.{stem}" for stem in built | sources | COMPILED}


def imported_modules(tree, module, modules):
    """The modules of the package (names in `modules`) that the parsed source of `module` imports,
    at any depth of its syntax tree."""
    package = module if module == PACKAGE else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import x, from .x import y
                parts = package.split(".")
                base = parts[:len(parts) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                # from pgcore import kernels: the module pgcore.kernels; from pgcore import Agent: pgcore
                submodule = f"{source}.{alias.name}"
                found.add(submodule if submodule in modules else source)
    found.discard(module)
    return {name for name in found if name in modules}


def import_graph(directory):
    """module -> the set of pgcore modules it imports, for every .py module in `directory`."""
    sources = package_modules(directory)
    modules = sources.keys() | compiled_modules(directory)
    graph = {}
    for module, path in sources.items():
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), filename=path)
        # the compiled modules import nothing of pgcore: they cannot be in a cycle
        graph[module] = imported_modules(tree, module, modules) & sources.keys()
    return graph


def find_cycle(graph):
    """A cycle of `graph` (module -> imported modules) as a list [a, b, ..., a], or None."""
    state = {}  # module -> "open" (on the current path) or "done"
    path = []

    def visit(node):
        state[node] = "open"
        path.append(node)
        for child in sorted(graph.get(node, ())):
            if state.get(child) == "open":
                return path[path.index(child):] + [child]
            if child not in state:
                cycle = visit(child)
                if cycle:
                    return cycle
        path.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_modules_of_pgcore_import_one_another_without_a_cycle():
    graph = import_graph(os.path.dirname(os.path.abspath(pgcore.__file__)))
    assert {"pgcore", "pgcore.agent", "pgcore.pong", "pgcore.runs"} <= graph.keys(), sorted(graph)
    assert "pgcore.runs" in graph["pgcore.agent"], "the graph misses a plain `from pgcore import runs`"
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def _graph_of(tmp_path, sources):
    directory = tmp_path / PACKAGE
    directory.mkdir()
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "_unbuilt.pyx").write_text("")  # a source tree's kernel, not built yet
    for name, text in sources.items():
        (directory / f"{name}.py").write_text(text)
    return import_graph(str(directory))


def test_the_graph_counts_every_form_of_import_and_finds_a_cycle(tmp_path):
    """The checker itself: lazy, aliased, relative and package imports are edges, and a cycle
    through a function-level import is reported with its modules."""
    graph = _graph_of(tmp_path, {
        "__init__": "from pgcore._version import __version__\nfrom pgcore.a import A\n",
        "_version": "__version__ = '0'\n",
        "a": "import os\nfrom pgcore import b, _version\n",
        "b": "def f():\n    from pgcore.c import g\n    return g\n",
        "c": "def g():\n    if True:\n        import pgcore.a as a\n    return a\n",
        "d": "import pgcore\nfrom . import _version\nfrom .c import g\n",
        "e": "from pgcore import __version__\n",
        "f": "from pgcore import _nn, kernels, _unbuilt\nimport pgcore._atari as _atari\n",
        "kernels": "",
    })
    assert graph["pgcore"] == {"pgcore._version", "pgcore.a"}
    assert graph["pgcore.a"] == {"pgcore.b", "pgcore._version"}, "from pgcore import MODULE: an edge to the module"
    assert graph["pgcore.b"] == {"pgcore.c"} and graph["pgcore.c"] == {"pgcore.a"}, "imports inside functions count"
    assert graph["pgcore.d"] == {"pgcore", "pgcore._version", "pgcore.c"}
    assert graph["pgcore.e"] == {"pgcore"}, "from pgcore import NAME: an edge to pgcore/__init__"
    assert graph["pgcore.f"] == {"pgcore.kernels"}, "a compiled module is a module, with no source to follow"
    assert find_cycle(graph) == ["pgcore.a", "pgcore.b", "pgcore.c", "pgcore.a"]
    del graph["pgcore.c"]
    assert find_cycle(graph) is None
    assert find_cycle({"pgcore": {"pgcore.x"}, "pgcore.x": {"pgcore"}}) == ["pgcore", "pgcore.x", "pgcore"]
