"""How the plugin prints: kubectl-style tables and ages, JSON and YAML. Pure.

Tables are laid out as kubectl lays out ``get``: upper-case headers, columns
left-aligned and three spaces apart, no trailing blanks. Ages read as
kubectl's (``HumanDuration``: 45s, 3m20s, 5h, 12d). The current time is an
argument, so every line here is unit-tested.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

import yaml

from imagestream_trigger.plugin.explain import (
    ANNOTATION,
    Follower,
    History,
    Row,
    Why,
    entry_label,
    summary,
)
from imagestream_trigger.report.conditions import short_digest

LIST_COLUMNS: Final = (
    "NAMESPACE",
    "NAME",
    "SOURCE",
    "IMAGE",
    "UP-TO-DATE",
    "PENDING",
    "FAILED",
    "STATUS",
    "LAST CHANGE",
)
HISTORY_COLUMNS: Final = ("TIME", "AGE", "IMAGE", "UPDATED", "FAILED")
BUILD_COLUMNS: Final = ("BUILDCONFIG", "IMAGE", "REQUESTED", "BUILD")
NONE: Final = "-"
PADDING: Final = 3
MIN_WIDTH: Final = 6  # kubectl's tabwriter minimum cell width


def human_duration(seconds: float) -> str:
    """A duration as kubectl prints an age (apimachinery's ``duration.HumanDuration``)."""
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    s = int(seconds)
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return _two(minutes, "m", s % 60, "s")
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return _two(hours, "h", minutes % 60, "m")
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return _two(hours // 24, "d", hours % 24, "h")
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        return _two(hours // (24 * 365), "y", hours // 24 % 365, "d")
    return f"{hours // (24 * 365)}y"


def _two(big: int, big_unit: str, small: int, small_unit: str) -> str:
    return f"{big}{big_unit}{small}{small_unit}" if small else f"{big}{big_unit}"


def parse_time(text: str) -> dt.datetime | None:
    """An RFC 3339 time as the API writes it ("2025-01-10T10:15:05Z"); None if it is not one."""
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def age(timestamp: str, now: dt.datetime) -> str:
    when = parse_time(timestamp) if timestamp else None
    return human_duration((now - when).total_seconds()) if when is not None else NONE


def digest(image: str) -> str:
    """``sha256:`` and 12 hex digits, as the IMAGE column of ``oc get imagetriggers``."""
    return short_digest(image) or (image if image else NONE)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [
        max(MIN_WIDTH, max(len(cells[i]) for cells in (headers, *rows)) + PADDING)
        for i in range(len(headers))
    ]
    return [
        "".join(cell.ljust(width) for cell, width in zip(cells[:-1], widths[:-1], strict=True))
        + cells[-1]
        for cells in (headers, *rows)
    ]


# -- list ------------------------------------------------------------------------------


def list_lines(found: Sequence[Row], now: dt.datetime) -> list[str]:
    return table(
        LIST_COLUMNS,
        [
            (
                row.namespace,
                f"{row.kind}/{row.name}",
                ",".join(row.sources) or NONE,
                digest(row.image),
                str(row.up_to_date),
                str(row.pending),
                str(row.failed),
                row.status,
                age(row.last_change, now),
            )
            for row in found
        ],
    )


def row_data(row: Row) -> dict[str, Any]:
    return {
        "namespace": row.namespace,
        "kind": str(row.kind),
        "name": row.name,
        "sources": list(row.sources),
        "image": row.image,
        "upToDate": row.up_to_date,
        "pending": row.pending,
        "failed": row.failed,
        "status": str(row.status),
        "lastChange": row.last_change,
    }


def list_data(found: Sequence[Row]) -> dict[str, Any]:
    return {"items": [row_data(row) for row in found]}


# -- why -------------------------------------------------------------------------------


def _follower_title(why: Why, follower: Follower) -> str:
    if follower.via == ANNOTATION:
        if not follower.name:
            return "annotation image.openshift.io/triggers"
        what = f"annotation {entry_label(why.kind, follower.name)}"
    else:
        what = f"ImageTrigger {follower.name}"
    return f"{what} <- {follower.source}" if follower.source else what


def why_lines(why: Why) -> list[str]:
    state = "" if why.exists else " (does not exist)"
    lines = [f"{why.kind} {why.namespace}/{why.name}{state}"]
    for follower in why.followers:
        lines.append(f"  {_follower_title(why, follower)}")
        lines.append(f"    {follower.verdict}: {follower.message}")
        lines += [f"    note: {note}" for note in follower.notes]
    if why.problems:
        lines.append("  annotation problems:")
        lines += [f"    {problem}" for problem in why.problems]
    lines.append(f"Result: {summary(why)}")
    return lines


def why_data(why: Why) -> dict[str, Any]:
    return {
        "kind": str(why.kind),
        "namespace": why.namespace,
        "name": why.name,
        "exists": why.exists,
        "followers": [
            {
                "via": f.via,
                "name": f.name,
                "source": f.source,
                "verdict": str(f.verdict),
                "message": f.message,
                "writes": list(f.writes),
                "notes": list(f.notes),
            }
            for f in why.followers
        ],
        "problems": list(why.problems),
        "writes": list(why.writes),
        "result": summary(why),
    }


# -- history -----------------------------------------------------------------------------


def _names(value: Any) -> str:
    names = sorted(str(v) for v in value) if isinstance(value, list | tuple) else []
    return ",".join(names) or NONE


def history_lines(found: History, now: dt.datetime) -> list[str]:
    title = f"ImageTrigger {found.namespace}/{found.name}"
    lines = [f"{title} <- {found.source}" if found.source else title, ""]
    if found.entries:
        lines += table(
            HISTORY_COLUMNS,
            [
                (
                    str(entry.get("time") or NONE),
                    age(str(entry.get("time") or ""), now),
                    digest(str(entry.get("image") or "")),
                    _names(entry.get("updated")),
                    _names(entry.get("failed")),
                )
                for entry in found.entries
            ],
        )
    else:
        lines.append("No image change recorded yet (status.history is empty).")
    if found.builds:
        lines.append("")
        lines += table(
            BUILD_COLUMNS,
            [
                (
                    name,
                    digest(str(record.get("image") or "")),
                    str(record.get("requestedAt") or NONE),
                    str(record.get("build") or "(requested)"),
                )
                for name, record in found.builds.items()
            ],
        )
    return lines


def history_data(found: History) -> dict[str, Any]:
    return {
        "namespace": found.namespace,
        "name": found.name,
        "source": found.source,
        "history": [dict(entry) for entry in found.entries],
        "builds": {name: dict(record) for name, record in found.builds.items()},
    }


def dump(data: Mapping[str, Any], output: str) -> str:
    """``data`` as ``-o json`` or ``-o yaml`` prints it."""
    if output == "json":
        return json.dumps(data, indent=2) + "\n"
    # No folding of long lines (PyYAML's default is 80 columns), as kubectl -o yaml.
    return yaml.safe_dump(dict(data), sort_keys=False, allow_unicode=True, width=1 << 20)
