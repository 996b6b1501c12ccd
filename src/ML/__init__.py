"""UnifiedML: define an ML task from the command line, code or YAML recipes, and train it.

``ML.launch(...)`` trains and returns the agent; ``ML.load_agent(path)`` loads a saved one.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["launch", "load_agent", "__version__"]


def launch(*args: Any, **kwargs: Any) -> Any:
    """Train a task. Priority: command line (sys.argv) > these arguments > recipe (``task=``)."""
    from ML.entry import launch as _launch

    return _launch(*args, **kwargs)


def load_agent(path: str, trust: bool = False) -> Any:
    """The agent saved at ``path`` (a checkpoint, a run directory, or keywords naming one).

    The checkpoint's tensors load without running code; its config names the classes that rebuild the agent.
    Names outside ML, torch and torchvision (MyFile.Net, a package of yours) are imported, so run, only with
    ``trust=True``: give it for files you made or trust (docs/security.md)."""
    from ML.checkpoints import load_agent as _load

    return _load(path, trust=trust)
