"""Resolve an ``Uppercase=`` value to a Python object.

A value may be: an object passed in code (used as given); a built-in short name (``MLP``, ``Digits``,
``Classic``, ``DQNAgent``, ``Adam``...); a dot path relative to the working directory (``MyFile.model``);
a file path (``./MyFile.py.model``, ``dir/file.py.Class``); or a full module path
(``ML.blocks.architectures.CNN``, ``torch.nn.Linear``, ``nn.Linear``); UnifiedML's original paths
(``ML.Blocks.Architectures.Vision.ResNet18.ResNet18``, ``DCGAN.Generator``); or direct code with a call's
parentheses (``nn.Linear(64,10)``), built by the safe parser in ``ML.hyperparams.code`` (never ``eval``).

A module path or MyFile name imports and runs that code, as Hydra's ``_target_`` does: a recipe is trusted
like code. What a name resolves to must be of its slot's kind before anything calls it (``slots``); a
checkpoint's config, rebuilt by ``ML.load_agent``, imports nothing outside the engine's libraries unless
trusted (``names.untrusted``).
"""

from __future__ import annotations

import inspect
import typing
from pathlib import Path
from typing import Any

from ML.errors import UserError
from ML.hyperparams import code, names, slots
from ML.hyperparams.names import BUILTINS


def resolve(spec: Any, slot: str = "") -> Any:
    """The object an ``Uppercase=`` value names, checked to be of its slot's kind (``ML.hyperparams.slots``)
    before anything calls it; objects passed in code are the user's own, returned as given."""
    if not isinstance(spec, str):
        return spec
    text = spec.strip()
    label = f"{slot}={text}" if slot else text
    if text in BUILTINS:
        return slots.check(names.builtin(text), label)
    if text.startswith(names.LEGACY_PREFIXES) and text.rsplit(".", 1)[-1] in BUILTINS:
        return resolve(text.rsplit(".", 1)[-1], slot)
    if code.looks_like_code(text):  # direct code: nn.Linear(64,10), parsed safely (never eval)
        return slots.check(code.evaluate(text), label)
    if ".py." in text or text.endswith(".py"):  # file path form: ./MyFile.py.model
        file, _, attrs = text.partition(".py")
        found = names.from_file(Path(file + ".py"), [a for a in attrs.split(".") if a], label)
        return slots.check(found, label, own_code=True)
    parts = text.split(".")
    if len(parts) >= 2:
        local = names.local_file(parts[0])
        if local is not None:
            return slots.check(names.from_file(local, parts[1:], label), label, own_code=True)
        head = names.ALIASES.get(parts[0], parts[0])
        dotted = head.split(".") + parts[1:]
        names.require_trust(dotted[0], label)  # a checkpoint's config imports only the engine's own libraries
        for cut in range(len(dotted) - 1, 0, -1):
            module = names.import_module(".".join(dotted[:cut]))
            if module is not None:
                try:
                    found = names.getattrs(module, dotted[cut:])
                except AttributeError:
                    break
                return slots.check(_constructor(found, label) if slots.slot_of(label) not in slots.KINDS
                                   else found, label)
    known = ", ".join(sorted(BUILTINS))
    raise names.Unresolved(
        f"cannot resolve {label!r}: not a built-in name ({known}), not MyFile.attr with MyFile.py in "
        f"{Path.cwd()}, not path/to/file.py.attr, and not an importable module path"
    )


def check_parts(config: dict[str, Any]) -> None:
    """Every ``Uppercase=`` name of a config checked for its slot's kind before a run starts, parts the task
    does not build included (``Discriminator=os.system`` on a classifier is refused, not ignored). A name
    that resolves to nothing is left to the part that builds it, which says so in its own words."""
    for slot in slots.KINDS:
        value = config.get(slot)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and not code.looks_like_code(item):
                try:
                    resolve(item, slot)
                except names.Unresolved:
                    pass


def _constructor(obj: Any, label: str) -> Any:
    """A module path's object, if it builds something: a class, a non-callable object, or a function whose
    return annotation is a class (``torchvision.models.resnet18 -> ResNet``). ``torch.load``,
    ``os.system``, ``subprocess.run`` and other functions that do something rather than build an object
    are refused; a user's own function goes in MyFile.py (``Model=MyFile.make``)."""
    if inspect.isclass(obj) or not callable(obj):
        return obj
    try:
        returns = typing.get_type_hints(obj).get("return")
    except (NameError, TypeError, AttributeError, SyntaxError):  # unresolvable annotations: "not declared"
        returns = None
    if inspect.isclass(returns) and returns is not type(None) and returns is not typing.Any:
        return obj
    raise UserError(f"{label} names a function that is not declared to return an object (a class): a module path "
                    "must name a class or a constructor function; wrap other code in a function of MyFile.py")
