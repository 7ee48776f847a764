"""A read-only dict that still pickles (specs travel to station worker processes)."""

from __future__ import annotations

from typing import Any, NoReturn


class FrozenDict(dict):
    """dict that refuses mutation after construction."""

    def _readonly(self, *_: Any, **__: Any) -> NoReturn:
        raise TypeError("this mapping belongs to a frozen spec and cannot change")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _readonly  # type: ignore[assignment]
    __ior__ = _readonly  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items())))


def freeze(value: Any) -> Any:
    """Deeply convert dicts to FrozenDict and lists to tuples."""
    if isinstance(value, dict):
        return FrozenDict({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """The inverse of freeze: plain dicts and lists (for JSON and MLflow)."""
    if isinstance(value, dict):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(v) for v in value]
    return value
