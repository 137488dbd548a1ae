"""Names shared by every layer: our API identity, annotation keys, reasons and target kinds.

Pure constants, no I/O: everything that reports (conditions, events, metrics) takes its
vocabulary from here, so a reason string is spelled in exactly one place.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final, NamedTuple

GROUP: Final = "imagestream-trigger.dev"
VERSION: Final = "v1alpha1"
KIND: Final = "ImageTrigger"
PLURAL: Final = "imagetriggers"

# OpenShift's own trigger annotation on Deployments, StatefulSets, DaemonSets and CronJobs.
TRIGGERS_ANNOTATION: Final = "image.openshift.io/triggers"
# Our bookkeeping on a workload's metadata (never its pod template, which would roll it).
LAST_APPLIED_ANNOTATION: Final = "imagestream-trigger.dev/last-applied"
# On an ImageStream: namespaces (or "*") whose ImageTriggers may follow it from elsewhere.
ALLOWED_NAMESPACES_ANNOTATION: Final = "imagestream-trigger.dev/allowed-namespaces"
# On an ImageTrigger, one-shot: release this image (reference or digest) from its quarantine.
RETRY_IMAGE_ANNOTATION: Final = "imagestream-trigger.dev/retry-image"


def annotation_path(key: str) -> str:
    """The JSON Pointer of annotation ``key`` ("/" and "~" escaped, RFC 6901)."""
    return "/metadata/annotations/" + key.replace("~", "~0").replace("/", "~1")


class Reason(StrEnum):
    """Machine-readable reasons for conditions, events and per-target results."""

    Applied = "Applied"  # the target was changed to the resolved image (or a build started)
    Unchanged = "Unchanged"  # the target already runs the resolved image: nothing written
    DryRun = "DryRun"  # a change was decided but dryRun is set: nothing written
    Suspended = "Suspended"  # spec.suspend is true: planned and reported, nothing written
    SourceNotFound = "SourceNotFound"  # the source ImageStream does not exist
    TagNotResolved = "TagNotResolved"  # the stream has no image for the tag yet
    TargetNotFound = "TargetNotFound"  # no object of that kind and name (or selector match)
    NoMatchingContainer = "NoMatchingContainer"  # no container points at the stream's repo
    ContainerNotFound = "ContainerNotFound"  # a container named in the spec does not exist
    Forbidden = "Forbidden"  # the API refused with 403: RBAC is missing
    CrossNamespaceDenied = "CrossNamespaceDenied"  # source stream does not allow our namespace
    InvalidSpec = "InvalidSpec"  # the ImageTrigger spec fails runtime validation
    InvalidAnnotation = "InvalidAnnotation"  # image.openshift.io/triggers cannot be honoured
    Failed = "Failed"  # any other error (transient ones are retried)
    Quarantined = "Quarantined"  # the image failed a rollout here: not applied again for now
    RolloutFailed = "RolloutFailed"  # Ready, Warning Event: a rollout of the image failed
    RolloutReverted = "RolloutReverted"  # Normal Event: a failed image was replaced back
    RolloutSucceeded = "RolloutSucceeded"  # Normal Event: a followed rollout became healthy
    Promoted = "Promoted"  # Normal Event: the image was tagged into spec.rollout.promoteTo
    PromotionFailed = "PromotionFailed"  # Warning Event: a due promotion refused or failed
    NoTagMatches = "NoTagMatches"  # spec.source.policy: no tag of the stream qualifies
    # Warning Event: a notification (spec.rollout.notify) could not be sent: its Secret,
    # its URL or its receiver.
    NotificationFailed = "NotificationFailed"
    # Timing rules and approval (timing.py): the new image is held, nothing written yet.
    Waiting = "Waiting"  # debounce, minImageAge or a closed maintenance window; until a time
    PendingApproval = "PendingApproval"  # approval: Manual and the image is not approved
    # spec.rollout.canary / maxParallel (canary.py): a write held back for now.
    WaitingForCanary = "WaitingForCanary"  # until every canary target is healthy on the image
    WaitingForBatch = "WaitingForBatch"  # until fewer than maxParallel others are rolling out
    CanaryNotFound = "CanaryNotFound"  # no workload target is the canary: the rest waits


class RolloutState(StrEnum):
    """Where the rollout of an image written to a workload stands (``spec.rollout``)."""

    Progressing = "Progressing"  # written; the workload is not healthy yet, within the timeout
    Healthy = "Healthy"  # every pod runs the new template and is available
    Failed = "Failed"  # not healthy within the timeout, or the workload says it failed
    Reverted = "Reverted"  # failed, and the images we had changed were set back


class TargetKind(StrEnum):
    """Kinds an ImageTrigger (or the OpenShift annotation, for workloads) can act on."""

    Deployment = "Deployment"
    StatefulSet = "StatefulSet"
    DaemonSet = "DaemonSet"
    CronJob = "CronJob"
    BuildConfig = "BuildConfig"


class ApiResource(NamedTuple):
    """Where a kind is served: what a client needs to build its URL."""

    group: str
    version: str
    plural: str


IMAGESTREAM_RESOURCE: Final = ApiResource("image.openshift.io", "v1", "imagestreams")
IMAGETRIGGER_RESOURCE: Final = ApiResource(GROUP, VERSION, PLURAL)
