"""Namespace shards: N operator Deployments split the namespaces between them. Pure.

A namespace belongs to shard ``fnv1a32(name) % N``: a stable hash, so every shard
agrees without talking to the others, each namespace has exactly one shard for a
given N, and a namespace never moves while N stays the same. Changing N moves
about (N-1)/N of them, which is why the docs say to change it with all shards
stopped (docs/faq.md).

A shard indexes every ImageStream it may read (a trigger of its own may follow a
stream in any namespace), but only its own namespaces' workloads, BuildConfigs
and ImageTriggers: those are what it writes, and most of the memory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193


def fnv1a32(data: bytes) -> int:
    value = _FNV_OFFSET
    for byte in data:
        value = ((value ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
    return value


def shard_of(namespace: str, count: int) -> int:
    return fnv1a32(namespace.encode()) % count


@dataclass(frozen=True, slots=True)
class Shard:
    index: int
    count: int

    def serves(self, namespace: str) -> bool:
        return shard_of(namespace, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse(text: str) -> Shard | None:
    """``"I/N"`` (0 <= I < N); "" is no sharding. Raises ValueError with the reason."""
    if not text.strip():
        return None
    match = _SPEC.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not INDEX/COUNT, e.g. 0/3")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or index >= count:
        raise ValueError(f"{text!r}: the index must be 0 to {max(count - 1, 0)} of {count}")
    return Shard(index, count)
