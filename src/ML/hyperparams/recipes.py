"""Find recipe YAML files and merge their ``imports:`` (with ``self``) into one nested dict."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from ML.errors import UserError

BUILTIN = Path(__file__).resolve().parent.parent / "recipes"


def search_dirs() -> list[Path]:
    """Where ``task=NAME`` looks, in order: the working directory, ./recipes/, the built-in recipes."""
    cwd = Path.cwd()
    return [cwd, cwd / "recipes", BUILTIN]


def find(name: str) -> Path:
    candidates = [name] if name.endswith((".yaml", ".yml")) else [f"{name}.yaml", f"{name}.yml"]
    for directory in search_dirs():
        for candidate in candidates:
            path = directory / candidate
            if path.is_file():
                return path
    known = sorted(p.stem for p in BUILTIN.glob("*.yaml") if not p.stem.startswith("_"))
    raise UserError(
        f"unknown recipe {name!r}: no {candidates[0]} in the working directory, ./recipes/ or the "
        f"built-in recipes ({', '.join(known)})"
    )


def read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise UserError(f"malformed YAML in recipe {path}{where}: {problem}; fix the file") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"recipe {path} must be a mapping of key: value, not {type(data).__name__}")
    return data


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Deep merge: nested mappings merge key by key, anything else replaces."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value) if isinstance(value, (dict, list)) else value
    return out


def load(name: str, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A recipe with its imports merged in order; ``self`` marks where its own keys go (last by default)."""
    path = find(name)
    if path in _chain:
        cycle = " -> ".join(p.stem for p in (*_chain, path))
        raise UserError(f"recipe imports form a cycle ({cycle}); remove one of the imports")
    own = read(path)
    imports = own.pop("imports", []) or []
    if isinstance(imports, str):
        imports = [imports]
    if "self" not in imports:
        imports = [*imports, "self"]
    merged: dict[str, Any] = {}
    for item in imports:
        merged = merge(merged, own if item == "self" else load(str(item), (*_chain, path)))
    return merged
