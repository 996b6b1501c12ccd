"""What each ``Uppercase=`` slot builds, checked before anything named there is called.

A name resolves to a class, a built object or a constructor function; before the engine calls it, it must be
of its slot's kind: an ``nn.Module`` for Eyes, Model and the other parts, a torch ``Dataset`` for Dataset, an
``Optimizer`` for Optim, an ``LRScheduler`` for Scheduler, a gymnasium ``Env`` for Env and a ``BaseAgent``
for Agent. So ``Eyes=subprocess.Popen +eyes.args=[touch,x]`` is refused in one line, never run. A function
is a constructor only when it is the user's own (MyFile.py, code) or declares that it returns the slot's kind
(``torchvision.models.resnet18 -> ResNet``).
"""

from __future__ import annotations

import importlib
import inspect
import typing
from typing import Any

from ML.errors import UserError

_PARTS = "an nn.Module (CNN, MLP, nn.Linear, MyFile.Net...)"
#: slot → (module, class, what the slot takes)
KINDS: dict[str, tuple[str, str, str]] = {
    **dict.fromkeys(("Eyes", "Model", "Trunk", "Pool", "Aug", "Discriminator"), ("torch.nn", "Module", _PARTS)),
    **dict.fromkeys(("Dataset", "TestDataset"),
                    ("torch.utils.data", "Dataset", "a torch Dataset (Digits, MNIST, MyFile.MyDataset...)")),
    "Optim": ("torch.optim", "Optimizer", "a torch Optimizer (Adam, SGD, torch.optim.AdamW...)"),
    "Scheduler": ("torch.optim.lr_scheduler", "LRScheduler",
                  "a learning-rate scheduler (CosineAnnealingLR, torch.optim.lr_scheduler.StepLR...)"),
    "Env": ("gymnasium", "Env", "a gymnasium Env (Classic, Atari, DMC, MyFile.MyEnv...)"),
    "Agent": ("ML.agents.base", "BaseAgent", "an agent (a subclass of ML.agents.base.BaseAgent: DQNAgent...)"),
}


def slot_of(label: str) -> str:
    """``Eyes`` for the labels ``Eyes``, ``Eyes.1`` and ``Eyes=CNN``."""
    return label.partition("=")[0].split(".")[0]


def _name(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__name__)}"


def _returns(function: Any) -> Any:
    try:
        return typing.get_type_hints(function).get("return")
    except (NameError, TypeError, AttributeError, SyntaxError):  # unresolvable annotations: "not declared"
        return None


def check(obj: Any, label: str, own_code: bool = False) -> Any:
    """``obj`` if it may fill the slot ``label`` names; a one-line ``UserError`` otherwise. ``own_code``: ``obj``
    comes from the user's own code (MyFile.py, ``ML.launch(...)``), where any function is a constructor."""
    kind = KINDS.get(slot_of(label))
    if kind is None:
        return obj
    module, attr, takes = kind
    base = getattr(importlib.import_module(module), attr)
    slot = slot_of(label)
    if inspect.isclass(obj):
        if issubclass(obj, base):
            return obj
        raise UserError(f"{label} is the class {_name(obj)}: {slot} takes {takes}")
    if isinstance(obj, base):
        return obj
    if own_code and callable(obj):
        return obj
    if inspect.isroutine(obj):
        returns = _returns(obj)
        if inspect.isclass(returns) and issubclass(returns, base):
            return obj
        raise UserError(f"{label} names a function that is not declared to return {takes}; a module path must "
                        f"name a class or a constructor function; wrap other code in a function of MyFile.py")
    raise UserError(f"{label} is a {type(obj).__name__} object: {slot} takes {takes}")
