"""Our own writes that the watch has not shown us yet. Pure bookkeeping.

Two readers need them: intake, to recognise the echo of our own write when the
watch brings it back (and drop it before any planning), and the planner, which
must see a target as it will be once our write lands, or an event arriving in
between would plan the same change twice. The writer records; the index's
newer state prunes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from imagestream_trigger.kinds import Container

# (kind, namespace, name)
TargetId = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class Written:
    """One container image we set: what it was, and what we made it."""

    before: str
    after: str


@dataclass
class Overlay:
    # target -> container key -> our write
    images: dict[TargetId, dict[str, Written]] = field(default_factory=dict)

    def record(self, target: TargetId, writes: Mapping[str, Written]) -> None:
        self.images.setdefault(target, {}).update(writes)

    def written(self, target: TargetId) -> Mapping[str, Written]:
        return self.images.get(target, {})

    def is_echo(
        self, target: TargetId, before: Iterable[Container], after: Iterable[Container]
    ) -> bool:
        """Whether the only difference between two states is images we wrote ourselves."""
        ours = self.images.get(target)
        if not ours:
            return False
        old = {(c.key, c.index, c.init): c.image for c in before}
        new = {(c.key, c.index, c.init): c.image for c in after}
        if old.keys() != new.keys():
            return False
        changed = [(key[0], image) for key, image in new.items() if old[key] != image]
        return bool(changed) and all(
            key in ours and ours[key].after == image for key, image in changed
        )

    def observe(self, target: TargetId, containers: Iterable[Container]) -> None:
        """The index now shows ``containers``: forget the writes it has caught up with.

        A write is done with once the container shows any image but the one it had
        before our write: ours (the echo), or someone else's (theirs wins, and the
        planner sees it). A container that disappeared takes its entry with it.
        """
        ours = self.images.get(target)
        if not ours:
            return
        now = {c.key: c.image for c in containers}
        for key in list(ours):
            if key not in now or now[key] != ours[key].before:
                del ours[key]
        if not ours:
            del self.images[target]

    def discard(self, target: TargetId, writes: Mapping[str, Written]) -> None:
        """A write that failed: drop its entries (those still as recorded)."""
        ours = self.images.get(target)
        if not ours:
            return
        for key, write in writes.items():
            if ours.get(key) == write:
                del ours[key]
        if not ours:
            del self.images[target]

    def forget(self, target: TargetId) -> None:
        self.images.pop(target, None)

    def apply(self, target: TargetId, containers: tuple[Container, ...]) -> tuple[Container, ...]:
        """The containers as they will be once our writes show up in the index."""
        ours = self.images.get(target)
        if not ours:
            return containers
        return tuple(
            dataclasses.replace(c, image=ours[c.key].after)
            if c.key in ours and ours[c.key].before == c.image
            else c
            for c in containers
        )

    def __len__(self) -> int:
        return len(self.images)
