"""One registry for every pluggable kind: backbones, heads, losses, weightings, metrics, optimisers,
data sources and experiments.

A :class:`Registry` maps a name to an object (a class, a factory, a module) plus free-form metadata.
It refuses duplicate names, answers an unknown name with the closest known ones, and lists what it
holds. Entries can be *lazy*: registered as ``"package.module"`` or ``"package.module:attr"`` strings
and imported on first use, so that listing experiments does not import torch-heavy modules.

    BACKBONES = Registry("backbone")

    @BACKBONES.register("convnet", spatial_dims=(2, 3))
    def convnet(**kwargs): ...

    BACKBONES.get("convnet")            # the function
    BACKBONES.get("convnt")             # KeyError: Unknown backbone 'convnt'. Did you mean 'convnet'? ...
    BACKBONES.lookup("convnt")          # the same text as a ValueError (what user-facing getters raise)
    BACKBONES.meta("convnet")           # {"spatial_dims": (2, 3)}
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any, Iterator, TypeVar

T = TypeVar("T")

__all__ = ["Registry", "RegistryError"]


class RegistryError(KeyError):
    """An unknown or duplicate name; the message says what is available."""

    def __str__(self) -> str:  # KeyError quotes its message; print it as a sentence instead
        return str(self.args[0]) if self.args else ""


class Registry:
    """Named objects of one kind (``Registry("backbone")``), with metadata, lazy entries and listing."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Any] = {}
        self._meta: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ adding
    def register(self, name: str, obj: Any = None, *, replace: bool = False, **meta: Any):
        """Register ``obj`` under ``name``; without ``obj`` this is a decorator.

        ``obj`` may be a dotted path string (``"pkg.mod"`` or ``"pkg.mod:attr"``), imported on first
        :meth:`get`. A name already taken is refused unless ``replace=True``.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"A {self.kind} name must be a non-empty string, got {name!r}.")

        def add(value: T) -> T:
            if name in self._entries and not replace:
                raise RegistryError(
                    f"A {self.kind} named {name!r} is already registered; choose another name or pass replace=True."
                )
            self._entries[name] = value
            self._meta[name] = dict(meta)
            return value

        if obj is None:
            return add
        add(obj)
        return obj

    def unregister(self, name: str) -> None:
        """Remove ``name`` (tests use this to clean up a temporary entry)."""
        self._entries.pop(name, None)
        self._meta.pop(name, None)

    # ------------------------------------------------------------------ looking up
    def get(self, name: str) -> Any:
        """The object registered as ``name`` (importing a lazy entry); unknown names raise with suggestions."""
        if name not in self._entries:
            raise RegistryError(self._unknown_message(name))
        value = self._entries[name]
        if isinstance(value, str):
            module, _, attr = value.partition(":")
            value = importlib.import_module(module)
            if attr:
                value = getattr(value, attr)
            self._entries[name] = value
        return value

    def lookup(self, name: str) -> Any:
        """:meth:`get` for user-facing getters (``get_metric``, ``create_head`` ...): an unknown name raises
        ``ValueError`` (a wrong value, not a missing key) with the same did-you-mean text."""
        try:
            return self.get(name)
        except RegistryError as err:
            raise ValueError(str(err)) from None

    def meta(self, name: str) -> dict[str, Any]:
        """The metadata given at registration (a copy)."""
        if name not in self._entries:
            raise RegistryError(self._unknown_message(name))
        return dict(self._meta[name])

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self)} entries)"

    def _unknown_message(self, name: Any) -> str:
        close = difflib.get_close_matches(str(name), self.names(), n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return f"Unknown {self.kind} {name!r}.{hint} Available: {', '.join(self.names()) or '(none)'}."

