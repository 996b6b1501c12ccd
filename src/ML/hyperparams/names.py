"""The names registry: what a bare name means before anything is imported.

Both the module-path resolver (``paths``) and the direct-code parser (``code``) read it, so neither needs
the other to know what ``CNN``, ``nn`` or ``MyFile.attr`` is. Built-ins are ``"module:attribute"`` strings,
imported only when named, so start-up stays fast.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from ML.errors import UserError

# Built-in short names -> "module:attribute".
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
    "MuJoCo": "ML.envs.mujoco:MuJoCo",
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
    "PPOAgent": "ML.agents.ppo:PPOAgent",
    "SACAgent": "ML.agents.sac:SACAgent",
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
LEGACY_PREFIXES = ("ML.Blocks.Architectures.", "ML.Blocks.", "Blocks.Architectures.")

ALIASES = {"nn": "torch.nn", "F": "torch.nn.functional", "DCGAN": "ML.blocks.gan",
            "optim": "torch.optim"}


def import_module(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and (module == e.name or module.startswith(e.name + ".")):
            return None  # the module itself is missing: let the caller try the next form
        raise UserError(f"importing {module!r} failed: {e}; install the missing package") from None


def getattrs(obj: Any, names: list[str]) -> Any:
    for name in names:
        if name.startswith("_"):
            raise AttributeError(name)
        obj = getattr(obj, name)
    return obj


def from_file(file: Path, attrs: list[str], spec: str) -> Any:
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
            except SyntaxError as e:  # any other exception is a bug in the file: its traceback shows where
                del sys.modules[file.stem]
                raise UserError(f"{file} line {e.lineno}: {e.msg}; fix the file") from None
            except ImportError as e:
                del sys.modules[file.stem]
                raise UserError(f"running {file} failed: {e}; install the missing package") from None
            except BaseException:
                del sys.modules[file.stem]
                raise
    try:
        return getattrs(module, attrs)
    except AttributeError:
        raise UserError(f"cannot resolve {spec!r}: {file} has no attribute {'.'.join(attrs)!r}") from None


def builtin(name: str) -> Any:
    """The object a built-in short name (``CNN``, ``Adam``...) stands for."""
    module, attr = BUILTINS[name].split(":")
    return getattr(importlib.import_module(module), attr)


def local_file(root: str) -> Path | None:
    """``MyFile.py`` in the working directory, when ``root`` (``MyFile``) names one."""
    path = Path.cwd() / f"{root}.py"
    return path if path.is_file() else None
