"""Prometheus metrics: one name prefix, and every label set bounded.

Labels only ever take values from fixed vocabularies (kinds, sources, results,
reasons, HTTP verbs and codes), never namespaces or object names, so the series
count does not grow with the cluster. One exception: notifications are counted per
declared receiver (a few per ImageTrigger that has any, gone with it). The README lists
each metric.
"""

from __future__ import annotations

import contextlib
from typing import Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
    start_http_server,
)

from imagestream_trigger import __version__
from imagestream_trigger.api import Reason, TargetKind
from imagestream_trigger.kinds import WORKLOAD_KINDS
from imagestream_trigger.triggers import ProblemCode

# The *_created series would double the series count and tell nothing useful here.
disable_created_metrics()  # type: ignore[no-untyped-call]  # unannotated upstream

SOURCES: Final = ("annotation", "imagetrigger")
# observed: an annotated workload needed the new image, left to OpenShift's controller.
UPDATE_RESULTS: Final = ("updated", "unchanged", "dry_run", "failed", "observed")
NATIVE_MODES: Final = ("apply", "observe", "off")
BUILD_RESULTS: Final = ("started", "already_built", "dry_run", "failed")
# Followed rollouts (spec.rollout), by how they ended: gate.RolloutPass.results, reverts.
ROLLOUT_RESULTS: Final = ("succeeded", "failed", "reverted")
# Promotions into spec.rollout.promoteTo: written, refused (403 or no consent), other errors.
PROMOTION_RESULTS: Final = ("promoted", "refused", "failed")
# Notifications (spec.rollout.notify), per receiver: delivered, one more attempt after a
# failure, given up (or never sendable: its Secret or URL), dropped from a full queue.
NOTIFICATION_RESULTS: Final = ("sent", "retried", "failed", "dropped")
# Why a key went back to the queue with backoff.
RETRY_REASONS: Final = ("conflict", "forbidden", "failed", "build_unknown", "status", "error")
# What a reconcile was about: an ImageTrigger, or a workload's annotation.
RECONCILE_KINDS: Final = ("imagetrigger", "annotation")
RECONCILE_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)

PREFIX: Final = "imagestream_trigger"
# From a tag move to the write: milliseconds when all is well, seconds under a burst.
LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# From an image's creation to the write: minutes to hours are normal for scheduled imports.
AGE_BUCKETS: Final = (1, 5, 15, 30, 60, 120, 300, 900, 1800, 3600, 7200, 21600, 86400)


class Metrics:
    """All of the operator's metrics, on a registry of their own (tests create many)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.info = Info(f"{PREFIX}_build", "Version of the running operator.", registry=r)
        self.info.info({"version": __version__})
        self.imagestream_events = Counter(
            f"{PREFIX}_imagestream_events",
            "ImageStream watch events seen, by event type.",
            ["type"],
            registry=r,
        )
        self.tag_changes = Counter(
            f"{PREFIX}_tag_changes",
            "ImageStream tags whose resolved image changed (ImageStreamTag events).",
            registry=r,
        )
        self.target_updates = Counter(
            f"{PREFIX}_target_updates",
            "Workload decisions, by kind, what declared it (annotation or imagetrigger) and result "
            "(updated, unchanged, dry_run, failed, observed: left to OpenShift's controller).",
            ["kind", "source", "result"],
            registry=r,
        )
        self.builds = Counter(
            f"{PREFIX}_builds",
            "BuildConfig instantiations, by result (started, already_built, dry_run, failed).",
            ["result"],
            registry=r,
        )
        self.rollouts = Counter(
            f"{PREFIX}_rollouts",
            "Followed rollouts (ImageTriggers with spec.rollout), by result (succeeded, "
            "failed, reverted).",
            ["result"],
            registry=r,
        )
        self.promotions = Counter(
            f"{PREFIX}_promotions",
            "Promotions into spec.rollout.promoteTo, by result (promoted, refused, failed).",
            ["result"],
            registry=r,
        )
        # The one metric labelled with object names: a receiver is named by the people who
        # declare it, a few per ImageTrigger, and its series go with its ImageTrigger.
        self.notifications = Counter(
            f"{PREFIX}_notifications",
            "Notifications of spec.rollout.notify, by receiver (namespace/imagetrigger/name) "
            "and result (sent, retried, failed, dropped).",
            ["receiver", "result"],
            registry=r,
        )
        self.invalid_triggers = Counter(
            f"{PREFIX}_invalid_triggers",
            "Triggers that cannot be honoured, by source (annotation or imagetrigger) and reason.",
            ["source", "reason"],
            registry=r,
        )
        self.imagetriggers = Gauge(
            f"{PREFIX}_imagetriggers", "ImageTrigger resources tracked.", registry=r
        )
        self.imagestreams = Gauge(f"{PREFIX}_imagestreams", "ImageStreams tracked.", registry=r)
        self.annotated_workloads = Gauge(
            f"{PREFIX}_annotated_workloads",
            "Workloads carrying the image.openshift.io/triggers annotation, by kind.",
            ["kind"],
            registry=r,
        )
        self.trigger_latency = Histogram(
            f"{PREFIX}_trigger_latency_seconds",
            "Time from observing the ImageStream event to the completed write of a target.",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.image_age = Histogram(
            f"{PREFIX}_image_age_at_update_seconds",
            "Time from the image's creation (status item 'created') to the completed write.",
            ["kind"],
            buckets=AGE_BUCKETS,
            registry=r,
        )
        self.api_requests = Counter(
            f"{PREFIX}_api_requests",
            "Requests this operator sent to the Kubernetes API, by verb, resource and HTTP code.",
            ["verb", "resource", "code"],
            registry=r,
        )

        self.native_mode = Gauge(
            f"{PREFIX}_native_annotations_mode",
            "1 for the mode image.openshift.io/triggers annotations are served in (apply: "
            "written here, observe: reported only, off: ignored), 0 for the others.",
            ["mode"],
            registry=r,
        )
        self.leader = Gauge(
            f"{PREFIX}_leader",
            "1 while this replica holds the Lease and writes (also without leader election), "
            "0 while it stands by.",
            registry=r,
        )
        self.leader_transitions = Counter(
            f"{PREFIX}_leader_transitions",
            "Times this replica acquired or lost the Lease.",
            registry=r,
        )
        self.queue_depth = Gauge(
            f"{PREFIX}_queue_depth",
            "Keys (ImageTriggers, annotated workloads) waiting in the work queue.",
            registry=r,
        )
        self.retries = Counter(
            f"{PREFIX}_retries",
            "Reconciles queued again with backoff, by reason (conflict, forbidden, failed, "
            "build_unknown, status, error).",
            ["reason"],
            registry=r,
        )
        self.reconcile_duration = Histogram(
            f"{PREFIX}_reconcile_duration_seconds",
            "Time of one reconcile pass, by what it reconciled (imagetrigger or annotation).",
            ["kind"],
            buckets=RECONCILE_BUCKETS,
            registry=r,
        )

        self._zero_series()

    def set_native_mode(self, mode: str) -> None:
        for each in NATIVE_MODES:
            self.native_mode.labels(each).set(1 if each == mode else 0)

    def receiver_series(self, receiver: str) -> None:
        """A receiver's series, at 0 until counted (see ``_zero_series``)."""
        for result in NOTIFICATION_RESULTS:
            self.notifications.labels(receiver, result)

    def forget_receiver(self, receiver: str) -> None:
        for result in NOTIFICATION_RESULTS:
            with contextlib.suppress(KeyError):
                self.notifications.remove(receiver, result)

    def count_request(self, verb: str, resource: str, code: str) -> None:
        self.api_requests.labels(verb, resource, code).inc()

    def _zero_series(self) -> None:
        """Create every bounded label combination at 0.

        A counter series born at 1 hides its first increment from increase() and
        rate(), so the first failure or the first update would go unseen.
        """
        for kind in WORKLOAD_KINDS:
            self.annotated_workloads.labels(kind)
            for source in SOURCES:
                for result in UPDATE_RESULTS:
                    self.target_updates.labels(kind, source, result)
        for kind in TargetKind:
            self.trigger_latency.labels(kind)
            self.image_age.labels(kind)
        for result in BUILD_RESULTS:
            self.builds.labels(result)
        for result in ROLLOUT_RESULTS:
            self.rollouts.labels(result)
        for result in PROMOTION_RESULTS:
            self.promotions.labels(result)
        for code in ProblemCode:
            self.invalid_triggers.labels(SOURCES[0], code)
        self.invalid_triggers.labels(SOURCES[1], Reason.InvalidSpec)
        for reason in RETRY_REASONS:
            self.retries.labels(reason)
        for what in RECONCILE_KINDS:
            self.reconcile_duration.labels(what)
        for mode in NATIVE_MODES:
            self.native_mode.labels(mode)

    def serve(self, port: int, address: str = "0.0.0.0") -> None:
        """Serve /metrics from a daemon thread (prometheus-client's own server)."""
        start_http_server(port, addr=address, registry=self.registry)
