"""Durations written as Go writes them ("90s", "10m", "1h30m"), read and shown. Pure.

Kubernetes users write durations this way everywhere (``kubectl wait --timeout``, Flux's
``interval``); the CRD checks the same grammar with a pattern and CEL's ``duration()``.
Only the units that make sense for a rollout are taken: ``h``, ``m``, ``s`` and ``ms``.
"""

from __future__ import annotations

import math
import re
from typing import Final

# One or more "<number><unit>" parts; "ms" before "m" so that "5ms" is not "5m" + "s".
PATTERN: Final = r"^([0-9]+(\.[0-9]+)?(h|ms|m|s))+$"
_WHOLE: Final = re.compile(PATTERN)
_PART: Final = re.compile(r"([0-9]+(?:\.[0-9]+)?)(h|ms|m|s)")
_UNIT_S: Final = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
MAX_TEXT: Final = 64  # as the CRD's maxLength


def parse_duration(text: str) -> float:
    """Seconds in ``text``; ValueError with a sentence a person understands if it is none."""
    if len(text) > MAX_TEXT or not _WHOLE.fullmatch(text):
        raise ValueError(
            "is not a duration: write numbers with the units h, m, s or ms, "
            'such as "90s", "10m" or "1h30m"'
        )
    return sum(float(number) * _UNIT_S[unit] for number, unit in _PART.findall(text))


def format_duration(seconds: float) -> str:
    """``seconds`` as Go prints a duration, to the second: "1h30m", "10m", "1m30s", "0s"."""
    if not math.isfinite(seconds):
        return "forever"
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text + (f"{secs}s" if secs or not text else "")
