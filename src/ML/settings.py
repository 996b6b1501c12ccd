"""Typed settings: each part of the engine declares, once, the config keys it reads.

A part's settings are a frozen dataclass subclassing :class:`Settings`, defined next to the code that reads
them. Its fields are the config keys it owns (a field holding a dict owns that whole section, ``replay``
owns ``replay.*``); ``from_config`` reads exactly those keys and nothing else. The resolved config (what
run.json records and resume compares) stays the one source: settings are typed views of it.

Defaults live in ``recipes/_defaults.yaml`` only (the file users read, with a comment per key, that recipes
and the command line override): the fields have no defaults of their own, and a key a partial config (one
built in code) lacks is read from that file. tests/test_settings.py checks that every field is a key of it and
every key of it is some part's field.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from ML.hyperparams import recipes

__all__ = ["Settings", "claimed_keys", "defaults"]

S = TypeVar("S", bound="Settings")


@functools.cache
def _defaults() -> dict[str, Any]:
    return recipes.read(recipes.BUILTIN / "_defaults.yaml")


def defaults() -> dict[str, Any]:
    """``_defaults.yaml``: every key's default, the one place defaults live (a copy; change it freely)."""
    return dict(_defaults())


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
        """Read this part's keys from a resolved config; a key a partial config lacks is ``_defaults.yaml``'s."""
        base = _defaults()
        return cls(**{f.name: config[f.name] if f.name in config else base[f.name] for f in dataclasses.fields(cls)})


def claimed_keys() -> frozenset[str]:
    """Every top-level key some imported part's settings read."""
    return frozenset().union(*(s.claims() for s in Settings.registry))
