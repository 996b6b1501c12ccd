"""Resolve an ``Uppercase=`` value to a Python object.

A value may be: an object passed in code (used as given); a built-in short name (``MLP``, ``Digits``,
``Classic``, ``DQNAgent``, ``Adam``...); a dot path relative to the working directory (``MyFile.model``);
a file path (``./MyFile.py.model``, ``dir/file.py.Class``); or a full module path
(``ML.blocks.architectures.CNN``, ``torch.nn.Linear``, ``nn.Linear``); the source document's paths
(``ML.Blocks.Architectures.Vision.ResNet18.ResNet18``, ``DCGAN.Generator``); or direct code with a call's
parentheses (``nn.Linear(64,10)``), built by the safe parser in ``ML.hyperparams.code`` (never ``eval``).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from ML.errors import UserError

# Built-in short names -> "module:attribute" (imported lazily, so start-up stays fast).
BUILTINS: dict[str, str] = {
    # architectures
    "Identity": "ML.blocks.architectures:Identity",
    "MLP": "ML.blocks.architectures:MLP",
    "CNN": "ML.blocks.architectures:CNN",
    "Encoder": "ML.blocks.vision:Encoder",
    "DrQEncoder": "ML.blocks.vision:Encoder",
    "NatureCNN": "ML.blocks.vision:NatureCNN",
    "AtariCNN": "ML.blocks.vision:NatureCNN",
    "ResNet": "ML.blocks.resnet:ResNet",
    "ResNet18": "ML.blocks.resnet:ResNet18",
    "ResNet34": "ML.blocks.resnet:ResNet34",
    "Transformer": "ML.blocks.transformer:Transformer",
    "ViT": "ML.blocks.transformer:ViT",
    "Generator": "ML.blocks.gan:Generator",
    "Discriminator": "ML.blocks.gan:Discriminator",
    "Normalize": "ML.blocks.resnet:Normalize",
    # augmentations
    "RandomShiftsAug": "ML.blocks.vision:RandomShiftsAug",
    "RandomCropFlip": "ML.blocks.resnet:RandomCropFlip",
    # environments (RL suites and datasets-as-environments)
    "Classic": "ML.envs.classic:Classic",
    "Atari": "ML.envs.atari:Atari",
    "DMC": "ML.envs.dmc:DMC",
    # datasets
    "Digits": "ML.envs.datasets:Digits",
    "MNIST": "ML.envs.datasets:MNIST",
    "FashionMNIST": "ML.envs.datasets:FashionMNIST",
    "CIFAR10": "ML.envs.datasets:CIFAR10",
    "ImageFolder": "ML.envs.datasets:ImageFolder",
    # agents
    "ClassifierAgent": "ML.agents.classifier:ClassifierAgent",
    "DQNAgent": "ML.agents.dqn:DQNAgent",
    "RandomAgent": "ML.agents.random:RandomAgent",
    "DrQV2Agent": "ML.agents.drqv2:DrQV2Agent",
    "GANAgent": "ML.agents.gan:GANAgent",
    "DCGAN": "ML.agents.gan:GANAgent",
    # optimisers
    "Adam": "torch.optim:Adam",
    "AdamW": "torch.optim:AdamW",
    "SGD": "torch.optim:SGD",
    "RMSprop": "torch.optim:RMSprop",
    # learning-rate schedulers (stepped once per update; scheduler.* are their arguments)
    "CosineAnnealingLR": "torch.optim.lr_scheduler:CosineAnnealingLR",
    "OneCycleLR": "torch.optim.lr_scheduler:OneCycleLR",
    "StepLR": "torch.optim.lr_scheduler:StepLR",
    "MultiStepLR": "torch.optim.lr_scheduler:MultiStepLR",
    "ExponentialLR": "torch.optim.lr_scheduler:ExponentialLR",
    "LinearLR": "torch.optim.lr_scheduler:LinearLR",
}

# The source document's module paths (ML.Blocks.Architectures.Vision.ResNet18.ResNet18), so recipes copied
# from it resolve: a path under this prefix names the built-in of its last component.
_LEGACY_PREFIXES = ("ML.Blocks.Architectures.", "ML.Blocks.", "Blocks.Architectures.")

_ALIASES = {"nn": "torch.nn", "F": "torch.nn.functional", "DCGAN": "ML.blocks.gan",
            "optim": "torch.optim"}


def _import(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and (module == e.name or module.startswith(e.name + ".")):
            return None  # the module itself is missing: let the caller try the next form
        raise UserError(f"importing {module!r} failed: {e}; install the missing package") from None


def _getattrs(obj: Any, names: list[str]) -> Any:
    for name in names:
        if name.startswith("_"):
            raise AttributeError(name)
        obj = getattr(obj, name)
    return obj


def _from_file(file: Path, attrs: list[str], spec: str) -> Any:
    if not file.is_file():
        raise UserError(f"cannot resolve {spec!r}: file {file} does not exist")
    main = sys.modules.get("__main__")
    if main is not None and getattr(main, "__file__", None) and Path(main.__file__).resolve() == file.resolve():
        module = main  # `python Run.py` naming Run.model: use the running script, do not re-import it
    else:
        directory = str(file.parent.resolve())
        if directory not in sys.path:
            sys.path.insert(0, directory)
        module = sys.modules.get(file.stem)
        if module is None or Path(getattr(module, "__file__", "") or "").resolve() != file.resolve():
            spec_ = importlib.util.spec_from_file_location(file.stem, file)
            module = importlib.util.module_from_spec(spec_)
            sys.modules[file.stem] = module
            try:
                spec_.loader.exec_module(module)
            except Exception as e:
                del sys.modules[file.stem]
                raise UserError(f"running {file} failed: {type(e).__name__}: {e}") from None
    try:
        return _getattrs(module, attrs)
    except AttributeError:
        raise UserError(f"cannot resolve {spec!r}: {file} has no attribute {'.'.join(attrs)!r}") from None


def resolve(spec: Any, slot: str = "") -> Any:
    """The object an ``Uppercase=`` value names; non-strings are returned as given."""
    if not isinstance(spec, str):
        return spec
    text = spec.strip()
    label = f"{slot}={text}" if slot else text
    if text in BUILTINS:
        module, attr = BUILTINS[text].split(":")
        return getattr(importlib.import_module(module), attr)
    if text.startswith(_LEGACY_PREFIXES) and text.rsplit(".", 1)[-1] in BUILTINS:
        return resolve(text.rsplit(".", 1)[-1], slot)
    from ML.hyperparams import code

    if code.looks_like_code(text):  # direct code: nn.Linear(64,10), parsed safely (never eval)
        return code.evaluate(text)
    if ".py." in text or text.endswith(".py"):  # file path form: ./MyFile.py.model
        file, _, attrs = text.partition(".py")
        return _from_file(Path(file + ".py"), [a for a in attrs.split(".") if a], label)
    parts = text.split(".")
    if len(parts) >= 2:
        local = Path.cwd() / (parts[0] + ".py")
        if local.is_file():
            return _from_file(local, parts[1:], label)
        head = _ALIASES.get(parts[0], parts[0])
        names = head.split(".") + parts[1:]
        for cut in range(len(names) - 1, 0, -1):
            module = _import(".".join(names[:cut]))
            if module is not None:
                try:
                    return _getattrs(module, names[cut:])
                except AttributeError:
                    break
    known = ", ".join(sorted(BUILTINS))
    raise UserError(
        f"cannot resolve {label!r}: not a built-in name ({known}), not MyFile.attr with MyFile.py in "
        f"{Path.cwd()}, not path/to/file.py.attr, and not an importable module path"
    )
