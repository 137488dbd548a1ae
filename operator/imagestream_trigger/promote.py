"""Promotion (``spec.rollout.promoteTo``): when an image has earned the known-good tag. Pure.

After a pass's health gate (gate.py), ``decide`` says whether the trigger's current image
is to be tagged into ``promoteTo``, exactly as ``oc tag <src>/<stream>@<digest> <dst>``
would (act/writer.py sends it). It is, when:

* every Deployment, StatefulSet and DaemonSet target (there is at least one) is judged
  ``Healthy`` on that image in this pass: a target still progressing, failed, reverted or
  not followed at all (nothing proves it ran the image) holds the promotion back;
* the image is not quarantined and nothing is being reverted;
* the destination tag does not already resolve to the image, and this trigger has not
  promoted this very image there before (a person who moved the tag back since is not
  overruled: the same image is promoted once).

Consent: a destination in another namespace is written only if its ImageStream allows the
trigger's namespace (annotation ``imagestream-trigger.dev/allowed-namespaces``), the rule
that guards following a source in another namespace; otherwise the promotion is refused,
and said so.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from imagestream_trigger.api import ALLOWED_NAMESPACES_ANNOTATION, RolloutState
from imagestream_trigger.gate import Quarantine, TargetRollout, quarantined
from imagestream_trigger.index import StreamInfo
from imagestream_trigger.models import PromoteTo
from imagestream_trigger.resolve import ResolvedImage, TagRef


@dataclass(frozen=True, slots=True)
class Promotion:
    """Tag ``image`` of ``source``'s stream into ``to``."""

    source: TagRef  # the followed tag: its stream holds the image (the write's ``from``)
    image: ResolvedImage
    to: TagRef


@dataclass(frozen=True, slots=True)
class Refusal:
    """A promotion that is due but may not be made; ``message`` says why and who can fix it."""

    to: TagRef
    message: str


def promoted_before(status: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(image, to)`` of ``status.promoted``, or None."""
    found = status.get("promoted")
    if not isinstance(found, Mapping):
        return None
    image, to = found.get("image"), found.get("to")
    if isinstance(image, str) and isinstance(to, str):
        return image, to
    return None


def decide(
    promote_to: PromoteTo | None,
    *,
    namespace: str,
    source: TagRef,
    image: ResolvedImage,
    followed: Collection[str],
    rollouts: Mapping[str, TargetRollout],
    quarantine: Sequence[Quarantine],
    reverting: bool,
    destination: StreamInfo | None,
    previous: Mapping[str, Any],
) -> Promotion | Refusal | None:
    """What to do about ``promoteTo`` after a pass: promote, refuse (and say why), or nothing.

    ``namespace``: the trigger's. ``followed``: keys ("Kind/name") of the workload targets
    that have a rollout (Deployments, StatefulSets, DaemonSets) as planned this pass.
    ``rollouts``: the gate's verdicts by key. ``destination``: the ImageStream of
    ``promoteTo`` as the index has it (None: unknown). ``previous``: the trigger's status.
    """
    if promote_to is None or not followed:
        return None
    if any(
        (state := rollouts.get(key)) is None or state.state is not RolloutState.Healthy
        for key in followed
    ):
        return None
    if reverting or quarantined(quarantine, image.reference) is not None:
        return None
    to = promote_to.tag_ref(namespace)
    if destination is not None:
        there = destination.tags.get(to.tag)
        if there is not None and there.image == image.image:
            return None
    if promoted_before(previous) == (image.reference, str(to)):
        return None
    if to.namespace != namespace:
        where = f"ImageStream {to.namespace}/{to.stream}"
        if destination is None:
            return Refusal(
                to,
                f"{where} does not exist (or is not in a namespace this operator watches): "
                "promotion into another namespace needs the stream there, with consent",
            )
        if not destination.allows(namespace):
            return Refusal(
                to,
                f'{where} does not allow promotion from namespace "{namespace}": its owner '
                f'can add "{namespace}" (or "*") to its annotation '
                f"{ALLOWED_NAMESPACES_ANNOTATION}",
            )
    return Promotion(source, image, to)


def image_stream_tag(promotion: Promotion) -> dict[str, Any]:
    """The ImageStreamTag ``oc tag <ns>/<stream>@<digest> <ns2>/<stream2>:<tag>`` sends.

    As oc builds it (openshift/oc ``pkg/cli/tag/tag.go``): ``tag.from`` is an
    ImageStreamImage ``<stream>@<digest>`` in the source's namespace, so the destination
    gets that very image (not whatever the source tag points at later); ``reference``
    false; reference policy ``Source`` (oc's default); import policy off, mode ``Legacy``;
    no ``generation`` (the server stamps the stream's). The server resolves the image at
    once into the destination stream's ``status.tags``.
    """
    to = promotion.to
    return {
        "apiVersion": "image.openshift.io/v1",
        "kind": "ImageStreamTag",
        "metadata": {"name": f"{to.stream}:{to.tag}", "namespace": to.namespace},
        "tag": {
            "name": to.tag,
            "reference": False,
            "importPolicy": {"insecure": False, "scheduled": False, "importMode": "Legacy"},
            "referencePolicy": {"type": "Source"},
            "from": {
                "kind": "ImageStreamImage",
                "name": f"{promotion.source.stream}@{promotion.image.image}",
                "namespace": promotion.source.namespace,
            },
        },
    }
