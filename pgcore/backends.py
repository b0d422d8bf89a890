"""The backend choice: the kernels module that the trainers, the Ray workers and `play` call."""
import os


def load_backend(name):
    """The kernels module of a backend: "cython" (pgcore.kernels) or "numpy" (pgcore.reference)."""
    # libgomp reads this when it loads: its idle threads must not spin between kernels and
    # steal the emulators' cores (set unless the user chose otherwise).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if name == "numpy":
        from pgcore import reference
        return reference
    from pgcore import kernels
    return kernels
