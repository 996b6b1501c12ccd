"""Command-line tokens (``key=value``, ``+key=value``) to override entries; values parse as YAML."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from ML.errors import UserError

_KEY = re.compile(r"^(\+?)([A-Za-z_][\w\-]*(?:\.[\w\-]+)*)=(.*)$", re.S)
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


@dataclass(frozen=True)
class Override:
    """One ``key=value`` setting; ``new`` is True for ``+key=value`` (a key no recipe declares)."""

    path: tuple[str, ...]
    value: Any
    new: bool = False

    @property
    def key(self) -> str:
        return ".".join(self.path)


def parse_value(text: str) -> Any:
    """YAML semantics, plus the numbers YAML 1.1 leaves as strings (``1e-3``)."""
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as e:
        raise UserError(f"cannot parse value {text!r} as YAML ({str(e).splitlines()[0]}); quote it") from None
    if isinstance(value, str) and _NUMBER.match(value):
        value = float(value) if any(c in value for c in ".eE") else int(value)
    return value


def parse_token(token: str) -> Override:
    match = _KEY.match(token)
    if not match:
        raise UserError(f"cannot read argument {token!r}: write key=value (or +key=value to add a new key)")
    plus, key, text = match.groups()
    return Override(tuple(key.split(".")), parse_value(text), bool(plus))


def parse_tokens(tokens: list[str]) -> list[Override]:
    return [parse_token(t) for t in tokens]


def from_kwargs(kwargs: dict[str, Any]) -> list[Override]:
    """Code keyword arguments; dotted keys may also come as strings ('eyes.depth=5')."""
    return [Override(tuple(k.split(".")), v, False) for k, v in kwargs.items()]
