"""CI runs the benchmark's quick mode: correctness only, never timings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# The benchmark starts its own control plane: keep it out of `make unit`.
pytestmark = pytest.mark.controlplane

REPO = Path(__file__).resolve().parents[2]


def test_quick_benchmark_converges_with_one_write_per_target(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--results", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (raw,) = tmp_path.glob("*-quick.json")
    results = json.loads(raw.read_text())
    correctness = results["correctness"]
    assert correctness["problems"] == []
    assert correctness["target_writes_per_affected_target"] == 1
    assert correctness["reads_per_change"] == 0
    assert correctness["idle_requests"] == 0
    assert len(results["single"]["samples_s"]) >= results["single"]["changes"]
    # Memory: the base (the operator on the empty cluster) and the cost per watched object.
    memory = results["memory"]
    config = results["config"]
    assert memory["objects"]["ImageStreams"] == config["streams"]
    assert (
        memory["objects"]["Deployments"] + memory["objects"]["BuildConfigs"]
        == (config["workloads"])
    )
    assert memory["watched_objects"] == sum(memory["objects"].values())
    assert memory["base_mb"] > 0
    assert memory["peak_rss_mb"] == results["operator"]["peak_rss_mb"]
    assert list(tmp_path.glob("*-latency-cdf.png"))
    # A leader SIGKILLed, then another SIGTERMed, each in the middle of a burst.
    failover = results["failover"]
    for handover in (failover["crash"], failover["graceful"]):
        assert handover["new_leader"] != handover["old_leader"]
        assert handover["takeover_s"] is not None, "the new leader never wrote"
        assert handover["buildconfigs"] > 0
        assert handover["lost_changes"] == 0, handover["lost_examples"]
        assert handover["old_leader_writes_after_takeover"] == 0
        assert handover["standby_writes_before"] == 0
    assert failover["builds"] == sum(
        h["buildconfigs"] for h in (failover["crash"], failover["graceful"])
    )
    assert failover["duplicate_builds"] == 0
    assert failover["double_writes"] == 0
    # Two namespace shards: each indexes every ImageStream and its own namespaces' objects
    # only, every target converges and none is written by the other shard.
    shards = results["shards"]
    config = results["config"]
    assert shards["not_converged"] == 0, shards["not_converged_examples"]
    assert shards["wrong_shard_writes"] == 0, [p["wrong_shard_writes"] for p in shards["shard"]]
    processes = shards["shard"]
    assert [p["indexed"]["imagestreams"] for p in processes] == [config["streams"]] * 2
    assert sum(p["indexed"]["workloads"] for p in processes) == config["deployments"]
    assert sum(p["indexed"]["buildconfigs"] for p in processes) == config["buildconfigs"]
    assert all(p["indexed"]["workloads"] > 0 for p in processes)
    assert all(p["writes"].get("patch deployments", 0) > 0 for p in processes)
    assert sum(p["builds_started"] for p in processes) == shards["buildconfigs"] > 0
