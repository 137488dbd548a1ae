"""Sample the operator's stacks with py-spy during the burst, and sum them by where they are.

py-spy is not a project dependency (it is a native binary, for people profiling by hand):
``.tools/bin/pip install py-spy`` puts it where this looks first. The raw stacks are kept
beside the results; the summary (share of samples per bucket) goes into the JSON.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from tests.controlplane.cluster import REPO
from tests.controlplane.operator_process import OperatorProcess

# First match wins: the frame nearest the leaf that names one of these decides the bucket.
BUCKETS = (
    ("json", ("json/", "json.decoder", "json.encoder")),
    ("kopf", ("kopf/",)),
    ("aiohttp / TLS", ("aiohttp/", "ssl.py", "yarl/", "multidict/")),
    ("asyncio", ("asyncio/",)),
    ("logging", ("logging/",)),
    ("prometheus_client", ("prometheus_client/",)),
    ("pydantic", ("pydantic",)),
    ("intake + index", ("imagestream_trigger/intake.py", "imagestream_trigger/index.py")),
    ("watch", ("imagestream_trigger/watch.py",)),
    ("plan / decide", ("imagestream_trigger/plan.py", "imagestream_trigger/decide.py")),
    ("reconcile + report", ("imagestream_trigger/reconcile.py", "imagestream_trigger/report/")),
    ("writer + client", ("imagestream_trigger/act/",)),
)


def find() -> str | None:
    local = REPO / ".tools" / "bin" / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def start(operator: OperatorProcess, out: Path) -> subprocess.Popen[bytes] | None:
    spy = find()
    if spy is None or operator.process is None:
        print("py-spy not found (.tools/bin/pip install py-spy): not profiling")
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(operator.process.popen.pid),
            "--rate",
            "250",
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop(spy: subprocess.Popen[bytes], out: Path) -> dict[str, Any]:
    spy.send_signal(signal.SIGINT)
    spy.wait(60)
    return summarize(out)


def summarize(raw: Path) -> dict[str, Any]:
    """Share of the samples per bucket, from py-spy's raw (collapsed) stacks."""
    counts: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        samples = int(number)
        total += samples
        frames = stack.split(";")
        counts[_bucket(frames)] += samples
    shares = {name: round(100 * n / total, 1) for name, n in counts.most_common()} if total else {}
    return {"samples": total, "percent": shares, "raw": raw.name}


def _bucket(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, needles in BUCKETS:
            if any(needle in frame for needle in needles):
                return name
    return "other"
