"""The ``plan.World`` read from kopf's in-memory indexes (one per watched resource)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from imagestream_trigger.api import TargetKind
from imagestream_trigger.index import (
    BuildConfigInfo,
    Key,
    StreamInfo,
    TriggerInfo,
    WorkloadInfo,
)

# Index ids (one index per followed resource, see handlers.projectors).
STREAMS: Final = "imagestreams_index"
TRIGGERS: Final = "imagetriggers_index"
BY_KIND: Final[Mapping[TargetKind, str]] = {
    TargetKind.Deployment: "deployments_index",
    TargetKind.StatefulSet: "statefulsets_index",
    TargetKind.DaemonSet: "daemonsets_index",
    TargetKind.CronJob: "cronjobs_index",
    TargetKind.BuildConfig: "buildconfigs_index",
}
ALL_INDEXES: Final = (STREAMS, TRIGGERS, *BY_KIND.values())


def _values(index: Any, key: Key) -> Iterable[Any]:
    if index is None:
        return ()
    store = index.get(key)
    return store if store is not None else ()


def _one(index: Any, key: Key) -> Any:
    return next(iter(_values(index, key)), None)


class IndexWorld:
    """Reads the indexes (key -> the values objects yielded for it); missing ones read empty."""

    def __init__(self, indexes: Mapping[str, Any]) -> None:
        self.indexes = indexes

    def stream(self, namespace: str, name: str) -> StreamInfo | None:
        value = _one(self.indexes.get(STREAMS), ("stream", namespace, name))
        return value if isinstance(value, StreamInfo) else None

    def object(
        self, kind: TargetKind, namespace: str, name: str
    ) -> WorkloadInfo | BuildConfigInfo | None:
        value = _one(self.indexes.get(BY_KIND[kind]), ("object", kind, namespace, name))
        return value if isinstance(value, WorkloadInfo | BuildConfigInfo) else None

    def names_in(self, kind: TargetKind, namespace: str) -> Iterable[str]:
        return list(_values(self.indexes.get(BY_KIND[kind]), ("in", kind, namespace)))

    def annotation_followers(
        self, namespace: str, stream: str
    ) -> Iterable[tuple[TargetKind, str, str]]:
        followers: list[tuple[TargetKind, str, str]] = []
        for kind, index_id in BY_KIND.items():
            if kind is not TargetKind.BuildConfig:
                followers += _values(self.indexes.get(index_id), ("follows", namespace, stream))
        return followers

    def trigger(self, namespace: str, name: str) -> TriggerInfo | None:
        value = _one(self.indexes.get(TRIGGERS), ("trigger", namespace, name))
        return value if isinstance(value, TriggerInfo) else None

    def triggers_following(self, namespace: str, stream: str) -> Iterable[tuple[str, str]]:
        return list(_values(self.indexes.get(TRIGGERS), ("source", namespace, stream)))

    def triggers_in(self, namespace: str) -> Iterable[str]:
        return list(_values(self.indexes.get(TRIGGERS), ("trigger-in", namespace)))
