"""pgcore's version, in one place: `pgcore.__version__`, and the package's (pyproject.toml reads it
as `version = {attr = "pgcore._version.__version__"}`: keep it a literal)."""
__version__ = "0.1.0"
