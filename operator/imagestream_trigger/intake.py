"""Intake: each watch event updates its index and says which keys to reconcile. Pure.

A key is an ImageTrigger or an annotated workload: the units the work queue
deduplicates and the reconciler converges. What is no news is dropped here,
before any planning: a status-only update (records leave status out), a relist
that repeats what the index has, and the echo of our own write (a workload
whose only change is an image we just wrote, see ``inflight.Overlay``). The one
exception: a workload's rollout moving (its health record, rollout.py) is news
to the ImageTriggers with spec.rollout that target it, if we wrote it.

Each wake carries the source tags whose move caused it, so that the metrics
can tell "the tag moved and the target already had it" from a routine pass.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from imagestream_trigger.api import TargetKind
from imagestream_trigger.index import (
    Indexes,
    WorkloadInfo,
    buildconfig_info,
    object_ref,
    stream_info,
    trigger_info,
    workload_info,
)
from imagestream_trigger.inflight import Overlay
from imagestream_trigger.models import selector_matches
from imagestream_trigger.resolve import TagRef

IMAGETRIGGER = "ImageTrigger"
DELETED = "DELETED"


@dataclass(frozen=True, slots=True)
class Key:
    """What the queue holds: an ImageTrigger, or a workload with the OpenShift annotation."""

    kind: str  # "ImageTrigger" or a workload kind
    namespace: str
    name: str

    @property
    def is_trigger(self) -> bool:
        return self.kind == IMAGETRIGGER

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


NO_MOVES: frozenset[TagRef] = frozenset()
# A key to reconcile, and the source tags whose move caused it.
Wake = tuple[Key, frozenset[TagRef]]


class Intake:
    def __init__(
        self,
        indexes: Indexes,
        overlay: Overlay,
        *,
        native: bool,
        clock: Callable[[], float] = time.monotonic,
        on_moved: Callable[[TagRef, str], None] = lambda tag, reference: None,
        internal_registry: str = "",
    ) -> None:
        self.indexes = indexes
        # The integrated registry's hostname, for Local tags (resolve.resolve_tag).
        self.internal_registry = internal_registry
        self.overlay = overlay
        self.native = native
        self.clock = clock
        # Told of every tag move (the tag, its new reference): for logs and metrics.
        self.on_moved = on_moved

    # -- start-up and safety nets ----------------------------------------------------

    def load(self, kind: str, body: Mapping[str, Any]) -> None:
        """Index an object from the start-up listing: state, not news (no wake)."""
        i = self.indexes
        if kind == "ImageStream":
            i.streams.put(stream_info(body, internal_registry=self.internal_registry))
        elif kind == IMAGETRIGGER:
            i.triggers.put(trigger_info(body))
        elif kind == TargetKind.BuildConfig:
            i.buildconfigs.put(buildconfig_info(body))
        else:
            i.workloads.put(workload_info(TargetKind(kind), body, native=self.native))

    def everything(self) -> list[Wake]:
        """Every key there is: the level-triggered pass at start-up and at each resync."""
        wakes = [
            (Key(IMAGETRIGGER, t.ref.namespace, t.ref.name), NO_MOVES)
            for t in self.indexes.triggers
        ]
        wakes += [
            (Key(w.ref.kind, w.ref.namespace, w.ref.name), NO_MOVES)
            for w in self.indexes.workloads.annotated()
        ]
        return wakes

    def event(self, kind: str, event: str | None, body: Mapping[str, Any]) -> list[Wake]:
        """An event of any followed ``kind``: the handler of that kind."""
        if kind == "ImageStream":
            return self.stream(event, body)
        if kind == IMAGETRIGGER:
            return self.trigger(event, body)
        if kind == TargetKind.BuildConfig:
            return self.buildconfig(event, body)
        return self.workload(TargetKind(kind), event, body)

    def forget_missing(
        self,
        kind: str,
        present: Iterable[tuple[str, str]],
        namespace: str = "",
        *,
        among: set[tuple[str, str]] | None = None,
    ) -> list[Wake]:
        """After a relist of ``namespace`` ("" = all): what it lacks was deleted meanwhile.

        ``among``: only these objects may be forgotten (those indexed before the list
        was asked for; one created since may be missing from the answer, not gone).
        """
        known = self._known(kind)
        gone = known - set(present)
        if namespace:
            gone = {key for key in gone if key[0] == namespace}
        if among is not None:
            gone &= among
        wakes: list[Wake] = []
        for gone_namespace, name in sorted(gone):
            wakes += self.event(kind, DELETED, _stub(kind, gone_namespace, name))
        return wakes

    def known(self, kind: str) -> set[tuple[str, str]]:
        """(namespace, name) of every indexed object of ``kind``."""
        return self._known(kind)

    def _known(self, kind: str) -> set[tuple[str, str]]:
        i = self.indexes
        if kind == "ImageStream":
            return {(s.namespace, s.name) for s in i.streams}
        if kind == IMAGETRIGGER:
            return {(t.ref.namespace, t.ref.name) for t in i.triggers}
        if kind == TargetKind.BuildConfig:
            return {(b.ref.namespace, b.ref.name) for b in i.buildconfigs}
        return {(w.ref.namespace, w.ref.name) for w in i.workloads if w.ref.kind == kind}

    # -- events ----------------------------------------------------------------------

    def stream(self, event: str | None, body: Mapping[str, Any]) -> list[Wake]:
        """An ImageStream event: wake the followers of the tags that moved."""
        ref = object_ref(body)
        streams = self.indexes.streams
        if event == DELETED:
            # OpenShift leaves annotated workloads alone when a stream goes; the
            # ImageTriggers following it must say so in their status.
            if streams.delete(ref.namespace, ref.name) is None:
                return []
            return self._triggers_following(ref.namespace, ref.name)
        info = stream_info(body, internal_registry=self.internal_registry)
        previous = streams.get(ref.namespace, ref.name)
        before = previous.tags if previous is not None else {}
        now = self.clock()
        moved = {
            t
            for t, image in info.tags.items()
            if before.get(t, None) is None or before[t].reference != image.reference
        }
        seen = previous.moved_at if previous is not None else {}
        info = dataclasses.replace(
            info, moved_at={t: now if t in moved else seen.get(t, now) for t in info.tags}
        )
        streams.put(info)
        if previous == info:
            return []
        # (The start-up listing goes through ``load``: what it finds is state, not a move.)
        for tag in sorted(moved):
            self.on_moved(TagRef(ref.namespace, ref.name, tag), info.tags[tag].reference)
        changed = moved | (set(before) - set(info.tags))
        reshaped = previous is None or (
            previous.repositories != info.repositories
            or previous.allowed_namespaces != info.allowed_namespaces
        )
        causes = frozenset(TagRef(ref.namespace, ref.name, t) for t in moved)
        wakes: list[Wake] = []
        if self.native and changed:
            for kind, namespace, name in self.indexes.workloads.followers(ref.namespace, ref.name):
                workload = self.indexes.workloads.get(kind, namespace, name)
                if workload is not None and any(
                    t.watched
                    and t.source.namespace == ref.namespace
                    and t.source.stream == ref.name
                    and t.source.tag in changed
                    for t in workload.triggers
                ):
                    wakes.append((Key(kind, namespace, name), causes))
        for trigger in self.indexes.triggers.following(ref.namespace, ref.name):
            # A trigger with a tag policy follows the whole stream (its tag is ""): any tag
            # that moves, appears or goes may change what its policy picks.
            if trigger.source is not None and (
                reshaped or (trigger.source.tag in changed if trigger.source.tag else changed)
            ):
                wakes.append((Key(IMAGETRIGGER, trigger.ref.namespace, trigger.ref.name), causes))
        return wakes

    def workload(self, kind: TargetKind, event: str | None, body: Mapping[str, Any]) -> list[Wake]:
        """A Deployment, StatefulSet, DaemonSet or CronJob event."""
        ref = object_ref(body)
        workloads = self.indexes.workloads
        target = (str(kind), ref.namespace, ref.name)
        if event == DELETED:
            previous = workloads.delete(*target)
            self.overlay.forget(target)
            if previous is None:
                return []
            wakes = self._selecting(kind, ref.namespace, ref.name, [previous.labels])
            if previous.annotated:  # its reconcile finds it gone and forgets it
                wakes.append((Key(*target), NO_MOVES))
            return wakes
        info = workload_info(kind, body, native=self.native)
        previous = workloads.put(info)
        if previous == info:
            return self._rollout_news(kind, previous, info)
        echo = (
            previous is not None
            and dataclasses.replace(previous, containers=info.containers) == info
            and self.overlay.is_echo(target, previous.containers, info.containers)
        )
        self.overlay.observe(target, info.containers)
        if echo:
            return self._rollout_news(kind, previous, info)
        wakes = []
        if info.annotated or (previous is not None and previous.annotated):
            wakes.append((Key(*target), NO_MOVES))
        if (
            previous is None
            or previous.labels != info.labels
            or previous.containers != info.containers
        ):
            labels = [info.labels] if previous is None else [previous.labels, info.labels]
            wakes += self._selecting(kind, ref.namespace, ref.name, labels)
        return wakes

    def buildconfig(self, event: str | None, body: Mapping[str, Any]) -> list[Wake]:
        ref = object_ref(body)
        buildconfigs = self.indexes.buildconfigs
        kind = TargetKind.BuildConfig
        if event == DELETED:
            previous = buildconfigs.delete(ref.namespace, ref.name)
            if previous is None:
                return []
            return self._selecting(kind, ref.namespace, ref.name, [previous.labels])
        info = buildconfig_info(body)
        previous = buildconfigs.put(info)
        if previous == info:  # its status moved (a build started): our own doing
            return []
        labels = [info.labels] if previous is None else [previous.labels, info.labels]
        return self._selecting(kind, ref.namespace, ref.name, labels)

    def trigger(self, event: str | None, body: Mapping[str, Any]) -> list[Wake]:
        ref = object_ref(body)
        key = Key(IMAGETRIGGER, ref.namespace, ref.name)
        triggers = self.indexes.triggers
        if event == DELETED:
            return [(key, NO_MOVES)] if triggers.delete(ref.namespace, ref.name) else []
        info = trigger_info(body)
        previous = triggers.put(info)
        return [] if previous == info else [(key, NO_MOVES)]

    def _rollout_news(
        self, kind: TargetKind, previous: WorkloadInfo | None, info: WorkloadInfo
    ) -> list[Wake]:
        """A change no planner acts on (status, the echo of our write) is news to the
        ImageTriggers that follow this workload's rollout (spec.rollout), and to no one
        else. Cheap for the thousands of others: their health is unchanged, or they carry
        no record of ours, before any trigger is looked at."""
        if previous is None or previous.health == info.health or not info.last_applied:
            return []
        ref = info.ref
        return self._selecting(kind, ref.namespace, ref.name, [info.labels], rollout_only=True)

    # -- fan-out ---------------------------------------------------------------------

    def _triggers_following(self, namespace: str, stream: str) -> list[Wake]:
        return [
            (Key(IMAGETRIGGER, t.ref.namespace, t.ref.name), NO_MOVES)
            for t in self.indexes.triggers.following(namespace, stream)
        ]

    def _selecting(
        self,
        kind: TargetKind,
        namespace: str,
        name: str,
        labels: list[Mapping[str, str]],
        *,
        rollout_only: bool = False,
    ) -> list[Wake]:
        """ImageTriggers in ``namespace`` with a target naming or selecting this object
        (``rollout_only``: those with spec.rollout)."""
        wakes: list[Wake] = []
        for trigger in self.indexes.triggers.in_namespace(namespace):
            if trigger.spec is None or (rollout_only and trigger.spec.rollout is None):
                continue
            if any(
                target.kind == kind
                and (
                    target.name == name
                    or (
                        target.selector is not None
                        and any(selector_matches(target.selector, each) for each in labels)
                    )
                )
                for target in trigger.spec.targets
            ):
                wakes.append((Key(IMAGETRIGGER, namespace, trigger.ref.name), NO_MOVES))
        return wakes


def _stub(kind: str, namespace: str, name: str) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"namespace": namespace, "name": name}}
