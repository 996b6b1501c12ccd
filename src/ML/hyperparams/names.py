"""The names registry: what a bare name means before anything is imported.

Both the module-path resolver (``paths``) and the direct-code parser (``code``) read it, so neither needs
the other to know what ``CNN``, ``nn`` or ``MyFile.attr`` is. Built-ins are ``"module:attribute"`` strings,
imported only when named, so start-up stays fast.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from types import ModuleType
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
    "FullRainbowNetwork": "ML.blocks.rainbow:FullRainbowNetwork",
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
    "DrQAtariAug": "ML.blocks.vision:DrQAtariAug",
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
    "RainbowAgent": "ML.agents.rainbow:RainbowAgent",
    "SPRAgent": "ML.agents.spr:SPRAgent",
    "RandomAgent": "ML.agents.random:RandomAgent",
    "DrQV2Agent": "ML.agents.drqv2:DrQV2Agent",
    "PPOAgent": "ML.agents.ppo:PPOAgent",
    "SACAgent": "ML.agents.sac:SACAgent",
    "GANAgent": "ML.agents.gan:GANAgent",
    "TogetherAgent": "ML.agents.together:TogetherAgent",
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

# UnifiedML's original module paths (ML.Blocks.Architectures.Vision.ResNet18.ResNet18), so recipes copied
# from it resolve: a path under this prefix names the built-in of its last component.
LEGACY_PREFIXES = ("ML.Blocks.Architectures.", "ML.Blocks.", "Blocks.Architectures.")

ALIASES = {"nn": "torch.nn", "F": "torch.nn.functional", "DCGAN": "ML.blocks.gan",
            "optim": "torch.optim"}


#: the libraries a checkpoint's config may import without trust: the engine and the ones it is built on
TRUSTED_ROOTS = ("ML", "torch", "torchvision")
_UNTRUSTED: ContextVar[str | None] = ContextVar("untrusted", default=None)


class Unresolved(UserError):
    """A name that names nothing here (a checkpoint's objects passed in code elsewhere are such names)."""


class UntrustedCode(UserError):
    """A checkpoint's config names code outside the engine's libraries, and the user did not say to trust it."""


@contextmanager
def untrusted(source: str) -> Iterator[None]:
    """While inside, names from ``source`` (a checkpoint's config) import only ``TRUSTED_ROOTS``: a MyFile
    name, a file path or another module path is refused before it is imported."""
    token = _UNTRUSTED.set(source)
    try:
        yield
    finally:
        _UNTRUSTED.reset(token)


def _installed(root: str) -> bool:
    """``root`` is a top-level module that could be imported (found without running it)."""
    try:
        return importlib.util.find_spec(root) is not None
    except (ImportError, ValueError):
        return False


def require_trust(root: str | None, label: str) -> None:
    """Refuse, while inside ``untrusted``, to import module ``root`` (``None``: a file) for ``label``, unless it
    is an engine library, the running script (``__main__``, code already running) or nothing importable (which
    then fails to resolve)."""
    source = _UNTRUSTED.get()
    if source is None or (root is not None and (root in TRUSTED_ROOTS or root == "__main__" or not _installed(root))):
        return
    raise UntrustedCode(f"{source} names {label}, code outside ML and torch: building it runs that code; load it "
                        "with trust=True (ML.load_agent(path, trust=True), trust_code=true on the command line) "
                        "only if you trust where the file came from")


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
        raise Unresolved(f"cannot resolve {spec!r}: file {file} does not exist")
    require_trust(None, spec)
    main = sys.modules.get("__main__")
    main_file = getattr(main, "__file__", None)
    module: ModuleType | None
    if main is not None and main_file and Path(main_file).resolve() == file.resolve():
        module = main  # `python Run.py` naming Run.model: use the running script, do not re-import it
    else:
        directory = str(file.parent.resolve())
        if directory not in sys.path:
            sys.path.insert(0, directory)
        module = sys.modules.get(file.stem)
        if module is None or Path(getattr(module, "__file__", "") or "").resolve() != file.resolve():
            spec_ = importlib.util.spec_from_file_location(file.stem, file)
            if spec_ is None or spec_.loader is None:
                raise Unresolved(f"cannot resolve {spec!r}: {file} is not a Python file")
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
        raise Unresolved(f"cannot resolve {spec!r}: {file} has no attribute {'.'.join(attrs)!r}") from None


def builtin(name: str) -> Any:
    """The object a built-in short name (``CNN``, ``Adam``...) stands for."""
    module, attr = BUILTINS[name].split(":")
    return getattr(importlib.import_module(module), attr)


def local_file(root: str) -> Path | None:
    """``MyFile.py`` in the working directory, when ``root`` (``MyFile``) names one."""
    path = Path.cwd() / f"{root}.py"
    return path if path.is_file() else None
