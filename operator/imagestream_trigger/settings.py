"""Operator settings: one pydantic model, from flags over IMAGESTREAM_TRIGGER_* variables.

Precedence: a command-line flag wins over the environment, which wins over the
default. Each field's description is what ``imagestream-trigger run --help``
prints, so the two cannot drift apart.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from imagestream_trigger import shards
from imagestream_trigger.errors import ConfigurationError

ENV_PREFIX = "IMAGESTREAM_TRIGGER_"

DEFAULT_LEASE = "imagestream-trigger"
NativeMode = Literal["auto", "apply", "observe", "off"]


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    namespaces: tuple[str, ...] = Field(
        default=(),
        description=(
            "Namespaces to serve: names or globs (team-*), '!name' to exclude; "
            "empty means all namespaces. Env: comma-separated."
        ),
    )
    native_annotations: NativeMode = Field(
        default="auto",
        description=(
            "Who applies OpenShift's image.openshift.io/triggers annotation on Deployments, "
            "StatefulSets, DaemonSets and CronJobs. apply: this operator writes it; observe: "
            "it parses, reports and warns but never writes (OpenShift's own trigger controller "
            "writes); off: it ignores the annotation; auto: observe where OpenShift's "
            "image.openshift.io API is served by openshift-apiserver (a real OpenShift, whose "
            "controller serves the annotation), else apply. ImageTrigger targets are always "
            "written here. true/false are accepted as apply/off."
        ),
    )
    default_service_account: str = Field(
        default="",
        description=(
            "Lockdown mode: an ImageTrigger without spec.serviceAccountName acts as this "
            "ServiceAccount of its own namespace (impersonated), so it can change only what "
            "that account may. Empty: such triggers act with the operator's own rights."
        ),
    )
    internal_registry_hostname: str = Field(
        default="",
        description=(
            "The integrated registry's hostname as OpenShift's trigger controller is configured "
            "with (images.config.openshift.io/cluster status.internalRegistryHostname). Only "
            "used for a tag with referencePolicy Local on a stream whose status names no "
            "dockerImageRepository: it then resolves to HOSTNAME/NAMESPACE/STREAM@DIGEST. "
            "Empty: the image's own reference, as OpenShift does when no hostname is configured "
            "(which is also when the status lacks a dockerImageRepository)."
        ),
    )
    dry_run: bool = Field(
        default=False,
        description="Decide and report everything, write nothing to any target.",
    )
    metrics_port: int = Field(
        default=8080,
        ge=0,
        le=65535,
        description="Port serving Prometheus metrics at /metrics (0: off).",
    )
    health_port: int = Field(
        default=8081,
        ge=0,
        le=65535,
        description="Port serving /healthz (liveness) and /readyz (readiness) for probes (0: off).",
    )
    bind_address: str = Field(default="0.0.0.0", description="Address the two ports listen on.")
    log_format: Literal["text", "json"] = Field(default="text", description="Log line format.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Lowest level logged."
    )
    resync_seconds: float = Field(
        default=600.0,
        gt=0,
        description=(
            "Every so often, queue every ImageTrigger and annotated workload again and "
            "converge from memory (no API reads): a safety net beside the retries of "
            "failed writes, which come back on their own within seconds."
        ),
    )
    max_concurrent_writes: int = Field(
        default=16, ge=1, le=1000, description="Writes to the API in flight at once."
    )
    workers: int = Field(
        default=16,
        ge=1,
        le=1000,
        description=(
            "Reconciles run at once; each takes one ImageTrigger or annotated workload "
            "from the work queue (never two on the same one)."
        ),
    )

    shard: str = Field(
        default="",
        description=(
            "INDEX/COUNT, e.g. 0/3: serve only the namespaces a stable hash of their name "
            "gives to this shard (ImageStreams of every namespace are still read, for "
            "cross-namespace sources). Run one Deployment per index, each with its own "
            "Lease. Empty: every namespace."
        ),
    )
    leader_election: bool = Field(
        default=True,
        description=(
            "Run several replicas with one writer: the holder of a coordination.k8s.io Lease "
            "writes, the others watch and keep their indexes warm to take over. Needs the "
            "Lease's namespace (--lease-namespace, or the pod's own); without one, the "
            "operator runs alone, as if this were off."
        ),
    )
    lease_namespace: str = Field(
        default="",
        description=(
            "Namespace of the Lease. Empty: the pod's own (POD_NAMESPACE, or its "
            "ServiceAccount's namespace file); outside a pod, no leader election."
        ),
    )
    lease_name: str = Field(
        default=DEFAULT_LEASE,
        description="Name of the Lease (one per shard or per independent install).",
    )
    lease_duration_seconds: float = Field(
        default=8.0,
        gt=0,
        description=(
            "How long a standby waits, after the Lease last changed, before taking it from "
            "a leader that stopped renewing (a crash takes over within this plus the retry "
            "period)."
        ),
    )
    lease_renew_deadline_seconds: float = Field(
        default=5.0,
        gt=0,
        description=(
            "A leader that could not renew for this long stops writing; shorter than the "
            "duration, so it has stopped before anyone else may start."
        ),
    )
    lease_retry_period_seconds: float = Field(
        default=1.0, gt=0, description="How often the leader renews the Lease."
    )

    @field_validator("native_annotations", mode="before")
    @classmethod
    def _legacy_boolean(cls, value: Any) -> Any:
        # 0.1 had a boolean here; keep old manifests and values working.
        if isinstance(value, bool):
            return "apply" if value else "off"
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return "apply" if value.strip().lower() == "true" else "off"
        return value

    @field_validator("default_service_account")
    @classmethod
    def _service_account_name(cls, value: str) -> str:
        if value and not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", value):
            raise ValueError(f"{value!r} is not a ServiceAccount name (lowercase DNS subdomain)")
        return value

    @field_validator("shard")
    @classmethod
    def _shard(cls, value: str) -> str:
        shards.parse(value)
        return value.strip()

    @property
    def shard_spec(self) -> shards.Shard | None:
        return shards.parse(self.shard)

    @property
    def lease(self) -> str:
        """The Lease's name: each shard needs its own (the default name gets the shard's)."""
        spec = self.shard_spec
        if spec is None or self.lease_name != DEFAULT_LEASE:
            return self.lease_name
        return f"{self.lease_name}-shard-{spec.index}-of-{spec.count}"

    @field_validator("namespaces", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @model_validator(mode="after")
    def _lease_timing(self) -> Settings:
        if not self.lease_renew_deadline_seconds < self.lease_duration_seconds:
            raise ValueError(
                "lease_renew_deadline_seconds must be shorter than lease_duration_seconds"
            )
        if not self.lease_retry_period_seconds < self.lease_renew_deadline_seconds:
            raise ValueError(
                "lease_retry_period_seconds must be shorter than lease_renew_deadline_seconds"
            )
        return self

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces


def flag_for(field: str) -> str:
    """The command-line flag of a settings field (one flag, --namespace, repeats)."""
    return "--namespace" if field == "namespaces" else "--" + field.replace("_", "-")


def from_sources(flags: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from parsed flags (None = not given) over the environment."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name in Settings.model_fields:
        raw = env.get(ENV_PREFIX + name.upper())
        if raw is not None and raw != "":
            values[name] = raw
    values.update({k: v for k, v in flags.items() if v is not None and k in Settings.model_fields})
    try:
        return Settings.model_validate(values)
    except ValidationError as error:
        problems = "; ".join(
            f"{ENV_PREFIX}{str(e['loc'][0]).upper()} / {flag_for(str(e['loc'][0]))}: {e['msg']}"
            if e["loc"]
            else str(e["msg"]).removeprefix("Value error, ")
            for e in error.errors()
        )
        raise ConfigurationError(f"invalid settings: {problems}") from None


# The APIService that tells a real OpenShift from a cluster with the image API as a CRD.
IMAGE_APISERVICE = "v1.image.openshift.io"
Writing = Literal["apply", "observe", "off"]


def native_mode(
    requested: NativeMode, apiservice: Mapping[str, Any] | None, problem: str = ""
) -> tuple[Writing, str]:
    """The annotation mode to run in, and why (for the start-up log).

    ``apiservice`` is the ``v1.image.openshift.io`` APIService (None: not found or
    unreadable, with ``problem`` saying why). On OpenShift it names a Service
    (openshift-apiserver), whose cluster also runs OpenShift's own trigger controller;
    a CRD-served group only has the local APIService kube-apiserver makes for it.
    """
    if requested != "auto":
        return requested, f"--native-annotations={requested}"
    if apiservice is None:
        why = problem or f"no APIService {IMAGE_APISERVICE}"
        return "apply", f"auto: {why}, so no OpenShift trigger controller is assumed"
    spec = apiservice.get("spec")
    service = spec.get("service") if isinstance(spec, Mapping) else None
    if isinstance(service, Mapping) and service.get("name"):
        where = f"{service.get('namespace', '')}/{service.get('name')}".lstrip("/")
        return "observe", (
            f"auto: image.openshift.io is served by the Service {where} (OpenShift's API "
            "server), so OpenShift's own controller applies the annotation"
        )
    return "apply", (
        "auto: image.openshift.io is served by this API server itself (a "
        "CustomResourceDefinition), so no OpenShift trigger controller applies the annotation"
    )
