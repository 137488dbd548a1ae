"""A JSON object kept as its compact text, for what is stored long and read seldom. Pure.

An ImageTrigger's status (its targets, its history of ten images, its build records) is
kept twice per ImageTrigger: as the watch last brought it, and as we last wrote it. As
decoded dicts and lists each took several KiB; as text about a quarter of that, and it is
read once per reconcile pass of its ImageTrigger.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any


class FrozenJson(Mapping[str, Any]):
    """An immutable JSON object. ``thaw()`` decodes it into a fresh dict: readers that look
    at more than one key thaw it once. Reading it as a Mapping works too (each access
    decodes), so code that does not know the difference stays correct."""

    __slots__ = ("text",)

    def __init__(self, value: Mapping[str, Any]) -> None:
        self.text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)

    def thaw(self) -> dict[str, Any]:
        decoded: dict[str, Any] = json.loads(self.text)
        return decoded

    def __getitem__(self, key: str) -> Any:
        return self.thaw()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.thaw())

    def __len__(self) -> int:
        return len(self.thaw())

    def __repr__(self) -> str:
        return f"FrozenJson({self.text})"


def thawed(value: Any) -> Any:
    """``value`` decoded if it is a ``FrozenJson``, else as it is."""
    return value.thaw() if isinstance(value, FrozenJson) else value
