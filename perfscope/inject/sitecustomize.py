# Loaded by every Python process started under `perfscope run` (its folder leads PYTHONPATH).
# It starts recording in the process the supervisor launched, takes its own folder off sys.path so
# the script sees the path it would see under plain `python`, and then runs the sitecustomize this
# one shadows, if there is one.
import os
import sys


def _perfscope_boot() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    try:
        from perfscope.runtime.bootstrap import boot
    except ImportError:
        return  # perfscope is not installed in this interpreter: the run goes on unrecorded
    boot()


def _chain_shadowed_sitecustomize() -> None:
    me = sys.modules.pop("sitecustomize", None)
    try:
        import sitecustomize  # noqa: F401  (the next one on sys.path, if any)
    except ImportError:
        if me is not None:
            sys.modules["sitecustomize"] = me


_perfscope_boot()
_chain_shadowed_sitecustomize()
