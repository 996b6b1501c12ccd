"""Typed settings: each part of the engine declares, once, the config keys it reads.

A part's settings are a frozen dataclass subclassing :class:`Settings`, defined next to the code that reads
them. Its fields are the config keys it owns (a field holding a dict owns that whole section, ``replay``
owns ``replay.*``); ``from_config`` reads exactly those keys and nothing else. The resolved config (what
run.json records and resume compares) stays the one source: settings are typed views of it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

__all__ = ["Settings", "claimed_keys"]

S = TypeVar("S", bound="Settings")


@dataclasses.dataclass(frozen=True)
class Settings:
    """Base of every part's settings: the fields name the top-level config keys the part reads."""

    registry: ClassVar[list[type[Settings]]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Settings.registry.append(cls)

    @classmethod
    def claims(cls) -> frozenset[str]:
        """The top-level config keys this part reads (its field names)."""
        return frozenset(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_config(cls: type[S], config: Mapping[str, Any]) -> S:
        """Read this part's keys from a resolved config; a key the config lacks takes the field's default."""
        present = {f.name: config[f.name] for f in dataclasses.fields(cls) if f.name in config}
        return cls(**present)


def claimed_keys() -> frozenset[str]:
    """Every top-level key some imported part's settings read."""
    return frozenset().union(*(s.claims() for s in Settings.registry))
