"""Name-to-object lookup shared by activations, losses, optimisers, schedules and initialisers."""

from __future__ import annotations

from typing import Any


def lookup(kind: str, table: dict[str, Any], value: Any, base: type | None = None) -> Any:
    """Return ``value`` if it is already an instance of ``base``, else build it from its name.

    Unknown names raise ValueError listing the valid ones, so a typo tells the user what to write.
    """
    if base is not None and isinstance(value, base):
        return value
    if isinstance(value, str):
        key = value.lower().replace("-", "_")
        if key in table:
            return table[key]()
        valid = ", ".join(sorted(table))
        plural = kind + ("es" if kind.endswith("s") else "s")
        raise ValueError(f"unknown {kind} {value!r}; valid {plural} are: {valid}")
    expected = base.__name__ if base is not None else "str"
    raise TypeError(f"{kind} must be a name or a {expected} instance, got {type(value).__name__}")
