"""The shards phase: the same world on 2 namespace shards, held against 1 process.

The benchmark's world spreads its streams and workloads over 10 namespaces
(bench-0 … bench-9), so namespace shards split it: ``--shard 0/2`` serves the
namespaces whose name hashes (FNV-1a 32) to 0, ``--shard 1/2`` the others. Every
shard still indexes every ImageStream (a trigger may follow a stream in another
shard's namespace); workloads, BuildConfigs and ImageTriggers only of its own.

The phase runs, one after another, on the world the earlier phases left:

  base          a process serving one empty namespace: the memory every process has
                before it indexes anything (interpreter, kopf, aiohttp, metrics);
  shared part   a process on a shard that no namespace of the world hashes to: it
                indexes every ImageStream and nothing else, but lists and watches every
                namespace's objects as every shard does; what a shard holds whatever
                its share;
  single        one process for everything (no --shard), and a burst of tag moves;
  2 shards      ``--shard 0/2`` and ``--shard 1/2`` started together, and a burst that
                moves the same tags again.

Every process runs with --no-leader-election, as its own ServiceAccount: the shards'
accounts are in bench/audit-policy.yaml, so the API server's audit log tells whose
every write was, and a write into a namespace of the other shard shows there. The quick
mode runs only the two shards, for correctness (every target converged, no write by the
wrong shard), at the quick size.

Figures per process: start-up to primed (launch → /readyz, and the "indexed in" time
the operator logs, with what it indexed), peak RSS (VmHWM, so the start-up listing
counts), CPU seconds over the burst (from the first import until the process has been
idle for 2 s) and its share: of the objects other than ImageStreams it indexed, and of
the burst's targets. Goals (``SLACK``): a shard's burst CPU at most its share of the
targets plus 0.2 of the single process's; its peak RSS at most the shared part plus
(its share of the objects + 0.2) times the single process's peak beyond the shared part.
"""

from __future__ import annotations

import json
import random
import re
import textwrap
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from bench.client import Client, DeploymentWatch, parallel
from bench.failover import BUILD_CONFIG_LABEL, NOT_WRITES, WRITE_VERBS, user_of
from bench.world import WRITERS, World, do_import, proc_stats, say
from imagestream_trigger.shards import Shard, shard_of
from tests.controlplane import cluster
from tests.controlplane.kube import Kube, create_namespace
from tests.controlplane.operator_process import OperatorProcess

COUNT = 2
SHARDS = [Shard(index, COUNT) for index in range(COUNT)]
# Namespaces of the phase's ServiceAccounts. The shards' are in bench/audit-policy.yaml.
SHARD_ACCOUNTS = [f"shards-{s.index}-of-{s.count}" for s in SHARDS]
SINGLE, BASE, SHARED = "shards-single", "shards-base", "shards-shared"
# The goals: roughly in proportion to the shard's share, "roughly" being this much of
# the single process's figure on top of the share. CPU: what a shard spends on a burst,
# against its share of the burst's targets. Memory: peak RSS beyond the shared part
# (what the streams-only process holds: every shard holds every ImageStream, by design),
# against its share of the objects other than ImageStreams.
SLACK = 0.2
NON_STREAM = ("workloads", "buildconfigs", "imagetriggers")
INDEXED = re.compile(r"indexed in ([0-9.]+)s: (.*)$", re.MULTILINE)
STARTED_BUILD = re.compile(r"BuildConfig ([^/\s]+)/(\S+): started Build")


def indexed(log: str) -> tuple[float | None, dict[str, int]]:
    """The "indexed in 1.2s: imagestreams: 5, workloads: 9, ..." line of a process's log."""
    match = INDEXED.search(log)
    if match is None:
        return None, {}
    sizes = {}
    for part in match.group(2).split(","):
        name, _, number = part.partition(":")
        if number.strip().isdigit():
            sizes[name.strip()] = int(number)
    return float(match.group(1)), sizes


def empty_shard(namespaces: set[str]) -> Shard:
    """A shard no namespace of the world hashes to: it serves none of them."""
    for count in range(COUNT + 1, 1000):
        taken = {shard_of(ns, count) for ns in namespaces}
        free = [i for i in range(count) if i not in taken]
        if free:
            return Shard(free[0], count)
    raise AssertionError("every shard of up to 1000 serves a namespace")  # 10 namespaces


ACTIVITY = (
    "imagestream_trigger_api_requests_total",
    "imagestream_trigger_imagestream_events_total",
    "imagestream_trigger_reconcile_duration_seconds_count",
)


def settle(process: OperatorProcess, quiet: float = 2.0, timeout: float = 1800) -> None:
    """Until the process has sent no request, handled no ImageStream event and finished no
    reconcile for ``quiet`` seconds, with nothing queued. OperatorProcess.settle looks at
    the first two only: a full pass over keys that are all in sync sends nothing, and at
    the large size the start-up pass runs for a minute."""
    deadline = time.monotonic() + timeout
    last, since = -1.0, time.monotonic()
    while time.monotonic() < deadline:
        metrics = process.metrics()
        activity = sum(v for k, v in metrics.items() if k.startswith(ACTIVITY))
        if activity != last or metrics.get("imagestream_trigger_queue_depth", 0) > 0:
            last, since = activity, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.1)
    raise TimeoutError(f"{process.namespace} did not become idle in {timeout:.0f}s")


@dataclass
class Shards:
    client: Client
    kube: Kube
    plane: cluster.ControlPlane
    watch: DeploymentWatch
    world: World
    quick: bool

    def run(self) -> dict[str, Any]:
        began = time.perf_counter()
        streams = self.chosen()
        targets = self.targets(streams)
        namespaces = {ns for ns, _ in self.world.streams}
        result: dict[str, Any] = {
            "count": COUNT,
            "namespaces": {
                str(shard): sorted(ns for ns in namespaces if shard.serves(ns)) for shard in SHARDS
            },
            "tags": len(streams),
            "deployments": sum(1 for t in targets if t[0] == "Deployment"),
            "buildconfigs": sum(1 for t in targets if t[0] == "BuildConfig"),
            "goal_slack": SLACK,
        }
        if not self.quick:
            result["base"] = self.idle_process(self.process(BASE, None, serve=[BASE]))
            spare = empty_shard(namespaces)
            result["shared"] = self.idle_process(self.process(SHARED, spare))
            result["shared"]["shard"] = str(spare)
            say(
                f"shards: base {result['base']['peak_rss_mb']:.0f} MB, every ImageStream "
                f"and nothing else (shard {spare}) {result['shared']['peak_rss_mb']:.0f} MB"
            )
            (result["single"],), missing = self.measure([self.process(SINGLE, None)], streams)
            result["single"]["not_converged"] = missing[0]
            say(
                f"shards: 1 process: peak RSS {result['single']['peak_rss_mb']:.0f} MB, "
                f"burst CPU {result['single']['burst_cpu_s']:.2f} s"
            )
        audit = self.plane.dir / "audit.log"
        offset = audit.stat().st_size if audit.exists() else 0
        processes = [
            self.process(account, shard)
            for account, shard in zip(SHARD_ACCOUNTS, SHARDS, strict=True)
        ]
        measured, (result["not_converged"], result["not_converged_examples"]) = self.measure(
            processes, streams
        )
        writes = self.writes(audit, offset)
        builds = {
            account: [ns for ns, _ in STARTED_BUILD.findall(p.output())]
            for account, p in zip(SHARD_ACCOUNTS, processes, strict=True)
        }
        for figures, account, shard in zip(measured, SHARD_ACCOUNTS, SHARDS, strict=True):
            mine = [t for t in targets if shard.serves(t[1])]
            figures["shard"] = str(shard)
            figures["burst_targets"] = len(mine)
            figures["burst_share"] = len(mine) / max(1, len(targets))
            figures["writes"] = dict(writes[account]["in"])
            figures["wrong_shard_writes"] = dict(writes[account]["wrong"])
            figures["builds_started"] = len(builds[account])
            # An instantiate leaves no namespace in the audit log (the emulation proxy
            # answers it): the process's own log says which BuildConfig it started.
            wrong_builds = [ns for ns in builds[account] if not shard.serves(ns)]
            figures["wrong_shard_builds"] = len(wrong_builds)
        result["shard"] = measured
        result["wrong_shard_writes"] = sum(
            sum(p["wrong_shard_writes"].values()) + p["wrong_shard_builds"] for p in measured
        )
        result["phase_s"] = time.perf_counter() - began
        if "single" in result:
            self.fractions(result)
        say(summary(result))
        return result

    # -- the world ------------------------------------------------------------------------

    def chosen(self) -> list[tuple[str, str]]:
        """A tenth of the streams that have targets, as many from each namespace (at least
        one from each): the burst moves tags in every namespace, so in both shards."""
        with_targets = {(t.namespace, t.stream) for t in self.world.targets}
        with_targets |= {(ns, stream) for ns, _, stream in self.world.buildconfigs}
        by_namespace: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for stream in self.world.streams:
            if stream in with_targets:
                by_namespace[stream[0]].append(stream)
        each = max(1, len(self.world.streams) // 10 // max(1, len(by_namespace)))
        return [s for ns in sorted(by_namespace) for s in random.sample(by_namespace[ns], each)]

    def targets(self, streams: list[tuple[str, str]]) -> list[tuple[str, str, str, str]]:
        """(kind, namespace, name, stream) of every target of ``streams``."""
        chosen = set(streams)
        found = [
            ("Deployment", t.namespace, t.name, t.stream)
            for t in self.world.targets
            if (t.namespace, t.stream) in chosen
        ]
        found += [
            ("BuildConfig", ns, name, stream)
            for ns, name, stream in self.world.buildconfigs
            if (ns, stream) in chosen
        ]
        return found

    # -- processes --------------------------------------------------------------------------

    def process(
        self, account: str, shard: Shard | None, serve: list[str] | tuple[()] = ()
    ) -> OperatorProcess:
        create_namespace(self.kube, account)
        args = ["--log-level=info", "--no-leader-election"]
        if shard is not None:
            args.append(f"--shard={shard}")
        return OperatorProcess(self.plane, self.kube, account, serve=serve, args=args)

    @staticmethod
    def idle_process(process: OperatorProcess) -> dict[str, Any]:
        """Start, wait until primed and idle, read its memory, stop."""
        launched = time.perf_counter()
        process.start(wait=False)
        try:
            process.wait_ready(timeout=600)
            ready = time.perf_counter() - launched
            assert process.process is not None
            primed = proc_stats(process.process.popen.pid)
            settle(process)
            stats = proc_stats(process.process.popen.pid)
        finally:
            process.stop()
        seconds, sizes = indexed(process.output())
        return {
            "ready_s": ready,
            "primed_rss_mb": primed["rss_mb"],
            "primed_cpu_s": primed["cpu_seconds"],
            "startup_cpu_s": stats["cpu_seconds"],
            "indexed_s": seconds,
            "indexed": sizes,
            "peak_rss_mb": stats["peak_rss_mb"],
            "rss_mb": stats["rss_mb"],
        }

    def measure(
        self, processes: list[OperatorProcess], streams: list[tuple[str, str]]
    ) -> tuple[list[dict[str, Any]], tuple[int, list[list[str]]]]:
        """Start the processes together, wait until primed and idle, move ``streams``' tags
        at once, wait until every target has converged and the processes are idle again."""
        launched = time.perf_counter()
        for process in processes:
            process.start(wait=False)
        figures: list[dict[str, Any]] = [{} for _ in processes]
        try:
            for process, f in zip(processes, figures, strict=True):
                process.wait_ready(timeout=600)
                f["ready_s"] = time.perf_counter() - launched
                # Primed: the indexes are full; the start-up pass over every key follows.
                f |= self.stats(process, "primed")
            for process, f in zip(processes, figures, strict=True):
                # The start-up pass (every key, all in sync) is over before the burst.
                settle(process)
                f |= self.stats(process, "startup")
            started = time.perf_counter()
            moves = [partial(do_import, self.client, ns, s) for ns, s in streams]
            references = dict(zip(streams, parallel(moves, WRITERS), strict=True))
            wanted = [
                (f.namespace, f.name, references[(ns, s)])
                for ns, s in streams
                for f in self.world.followers(ns, s)
            ]
            seen = self.watch.wait_for(wanted, timeout=600)
            deployments_done = max(seen.values(), default=started) - started
            for process in processes:
                settle(process)
            for process, f in zip(processes, figures, strict=True):
                after = self.stats(process, "end")
                f["burst_cpu_s"] = after["end_cpu_s"] - f["startup_cpu_s"]
                f["peak_rss_mb"] = after["end_peak_rss_mb"]
                f["rss_mb"] = after["end_rss_mb"]
                f["burst_deployments_s"] = deployments_done
            missing = self.builds_missing(references)
        finally:
            for process in processes:
                process.stop()
        for process, f in zip(processes, figures, strict=True):
            f["indexed_s"], f["indexed"] = indexed(process.output())
            f["account"] = process.namespace
        return figures, missing

    @staticmethod
    def stats(process: OperatorProcess, when: str) -> dict[str, float]:
        assert process.process is not None
        s = proc_stats(process.process.popen.pid)
        return {
            f"{when}_cpu_s": s["cpu_seconds"],
            f"{when}_rss_mb": s["rss_mb"],
            f"{when}_peak_rss_mb": s["peak_rss_mb"],
        }

    # -- correctness ------------------------------------------------------------------------

    def builds_missing(
        self, references: dict[tuple[str, str], str], timeout: float = 60
    ) -> tuple[int, list[list[str]]]:
        """BuildConfigs of the moved streams without a Build of the new image (Deployments
        were waited for already: their watch would have timed out)."""
        wanted = {
            (ns, name, references[(ns, stream)])
            for ns, name, stream in self.world.buildconfigs
            if (ns, stream) in references
        }
        deadline = time.monotonic() + timeout
        while True:
            found: set[tuple[str, str, str]] = set()
            for namespace in sorted({ns for ns, _, _ in wanted}):
                path = f"/apis/build.openshift.io/v1/namespaces/{namespace}/builds"
                for build in self.client.request("GET", path)["items"]:
                    meta = build["metadata"]
                    config = (meta.get("labels") or {}).get(BUILD_CONFIG_LABEL, "")
                    for cause in build["spec"].get("triggeredBy") or []:
                        image = (cause.get("imageChangeBuild") or {}).get("imageID")
                        if image:
                            found.add((namespace, config, str(image)))
            missing = sorted(wanted - found)
            if not missing or time.monotonic() > deadline:
                return len(missing), [list(m) for m in missing[:5]]
            time.sleep(0.5)

    def writes(self, audit: Path, offset: int) -> dict[str, dict[str, Counter[str]]]:
        """Each shard's namespaced writes from the audit log, from ``offset`` on: those in
        its own namespaces and those in another shard's ("verb resource namespace")."""
        users = {
            user_of(account): (account, shard)
            for account, shard in zip(SHARD_ACCOUNTS, SHARDS, strict=True)
        }
        found: dict[str, dict[str, Counter[str]]] = {
            account: {"in": Counter(), "wrong": Counter()} for account in SHARD_ACCOUNTS
        }
        with audit.open() as log:
            log.seek(offset)
            for line in log:
                entry = json.loads(line)
                who = users.get(entry["user"]["username"])
                if who is None or entry.get("stage") != "ResponseComplete":
                    continue
                ref = entry.get("objectRef") or {}
                resource = ref.get("resource", "?")
                if ref.get("subresource"):
                    resource += "/" + ref["subresource"]
                namespace = ref.get("namespace")
                if entry["verb"] not in WRITE_VERBS or resource.split("/")[0] in NOT_WRITES:
                    continue
                if not namespace:  # the proxy's check for an instantiate: counted from logs
                    continue
                account, shard = who
                own = "in" if shard.serves(namespace) else "wrong"
                key = f"{entry['verb']} {resource}"
                found[account][own][key if own == "in" else f"{key} {namespace}"] += 1
        return found

    # -- figures ----------------------------------------------------------------------------

    @staticmethod
    def fractions(result: dict[str, Any]) -> None:
        """Each shard against the single process: its share, its CPU and memory fractions."""
        single, base, shared = result["single"], result["base"], result["shared"]
        single_objects = sum(single["indexed"].get(k, 0) for k in NON_STREAM)
        above_base = single["peak_rss_mb"] - base["peak_rss_mb"]
        beyond_shared = single["peak_rss_mb"] - shared["peak_rss_mb"]
        for shard in result["shard"]:
            objects = sum(shard["indexed"].get(k, 0) for k in NON_STREAM)
            shard["object_share"] = objects / max(1, single_objects)
            shard["cpu_fraction"] = shard["burst_cpu_s"] / single["burst_cpu_s"]
            shard["cpu_goal"] = shard["burst_share"] + SLACK
            shard["cpu_met"] = shard["cpu_fraction"] <= shard["cpu_goal"]
            peak = shard["peak_rss_mb"]
            shard["rss_above_base_fraction"] = (peak - base["peak_rss_mb"]) / above_base
            # What is not the shared part, against the single process's.
            shard["rss_beyond_shared_fraction"] = (
                (peak - shared["peak_rss_mb"]) / beyond_shared if beyond_shared > 0 else None
            )
            shard["rss_goal_mb"] = shared["peak_rss_mb"] + (shard["object_share"] + SLACK) * max(
                0.0, beyond_shared
            )
            shard["rss_met"] = peak <= shard["rss_goal_mb"]


def summary(result: dict[str, Any]) -> str:
    parts = []
    for shard in result["shard"]:
        text = (
            f"shard {shard['shard']}: ready {shard['ready_s']:.1f} s, peak RSS "
            f"{shard['peak_rss_mb']:.0f} MB, burst CPU {shard['burst_cpu_s']:.2f} s"
        )
        if "cpu_fraction" in shard:
            text += f" ({shard['cpu_fraction']:.2f} x 1 process)"
        parts.append(text)
    return (
        "shards: "
        + "; ".join(parts)
        + f"; not converged {result['not_converged']}, wrong-shard writes "
        f"{result['wrong_shard_writes']}"
    )


def problems(result: dict[str, Any]) -> list[str]:
    """Correctness, asserted in every mode; the CPU and memory goals are the report's."""
    found = []
    if result.get("single", {}).get("not_converged"):
        missing = result["single"]["not_converged"]
        found.append(f"shards: {missing} targets not converged (1 process)")
    if result["not_converged"]:
        found.append(
            f"shards: {result['not_converged']} targets not converged, "
            f"e.g. {result['not_converged_examples'][:3]}"
        )
    if result["wrong_shard_writes"]:
        wrong = {p["shard"]: p["wrong_shard_writes"] for p in result["shard"]}
        found.append(f"shards: {result['wrong_shard_writes']} writes by the wrong shard: {wrong}")
    for shard in result["shard"]:
        if shard["burst_targets"] and not shard["writes"]:
            found.append(f"shards: shard {shard['shard']} wrote nothing")
    return found


# -- the report (docs/benchmarks.md, through bench/report.py) ---------------------------------

WIDTH = 95  # as bench/report.py wraps its paragraphs


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def _each(values: list[str]) -> str:
    return ", ".join(values)


def _all(processes: list[dict[str, Any]], key: str, form: str) -> str:
    return _each([form.format(p[key]) for p in processes])


def rows(r: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The shards' lines in the results table (goals only where the single process ran)."""
    s = r.get("shards")
    if s is None:  # results from before the phase existed
        return []
    found = []
    shards = s["shard"]
    if "single" in s:
        single, shared = s["single"], s["shared"]
        found += [
            (
                f"shards: burst CPU of each of {s['count']} shards / 1 process",
                _each([f"{p['cpu_fraction']:.2f}" for p in shards])
                + f" (1 process: {single['burst_cpu_s']:.2f} s)",
                f"≤ its share of the targets + {SLACK:g} = {_all(shards, 'cpu_goal', '{:.2f}')}",
                _verdict(all(p["cpu_met"] for p in shards)),
            ),
            (
                f"shards: peak RSS of each of {s['count']} shards",
                _each([f"{p['peak_rss_mb']:.0f}" for p in shards])
                + f" MB (1 process: {single['peak_rss_mb']:.0f} MB)",
                f"≤ the shared part ({shared['peak_rss_mb']:.0f} MB) + (its share + "
                f"{SLACK:g}) x the rest = {_all(shards, 'rss_goal_mb', '{:.0f}')} MB",
                _verdict(all(p["rss_met"] for p in shards)),
            ),
        ]
    found.append(
        (
            "shards: targets not converged / written by the wrong shard",
            f"{s['not_converged']} / {s['wrong_shard_writes']}",
            "0 / 0",
            _verdict(not s["not_converged"] and not s["wrong_shard_writes"]),
        )
    )
    return found


def table(s: dict[str, Any]) -> str:
    """One line per process of the phase."""

    def indexed_(p: dict[str, Any]) -> str:
        sizes = p["indexed"]
        return " / ".join(str(sizes.get(k, "?")) for k in ("imagestreams", *NON_STREAM))

    def ready(p: dict[str, Any]) -> str:
        seconds = p.get("indexed_s")
        return f"{p['ready_s']:.1f} s" + ("" if seconds is None else f" ({seconds:.1f} s)")

    def startup(p: dict[str, Any]) -> str:
        cpu = p.get("startup_cpu_s")
        return "—" if cpu is None else f"{cpu:.1f} s"

    def primed(p: dict[str, Any]) -> str:
        rss = p.get("primed_rss_mb")
        return "—" if rss is None else f"{rss:.0f} MB"

    lines = [
        "| process | indexed: ImageStreams / workloads / BuildConfigs / ImageTriggers "
        "| share: objects / burst targets | ready (indexing) | start-up CPU | RSS when ready "
        "| peak RSS | burst CPU |",
        "|---|---|---|---|---|---|---|---|",
    ]
    if "base" in s:
        base, shared, single = s["base"], s["shared"], s["single"]
        lines += [
            f"| nothing indexed (one empty namespace) | {indexed_(base)} | — | {ready(base)} "
            f"| {startup(base)} | {primed(base)} | {base['peak_rss_mb']:.0f} MB | — |",
            f"| the shared part: shard {shared['shard']}, none of the world's namespaces "
            f"| {indexed_(shared)} | 0 / 0 | {ready(shared)} "
            f"| {startup(shared)} | {primed(shared)} | {shared['peak_rss_mb']:.0f} MB | — |",
            f"| 1 process | {indexed_(single)} | 1 / 1 | {ready(single)} "
            f"| {startup(single)} | {primed(single)} | {single['peak_rss_mb']:.0f} MB "
            f"| {single['burst_cpu_s']:.2f} s |",
        ]
    for p in s["shard"]:
        namespaces = _each(s["namespaces"][p["shard"]])
        share = f"{p['object_share']:.2f}" if "object_share" in p else "—"
        rss = f"{p['peak_rss_mb']:.0f} MB"
        cpu = f"{p['burst_cpu_s']:.2f} s"
        if "cpu_fraction" in p:
            rss += f" ({p['rss_above_base_fraction']:.2f} x above the base)"
            cpu += f" ({p['cpu_fraction']:.2f} x)"
        lines.append(
            f"| shard {p['shard']} ({namespaces}) | {indexed_(p)} | {share} / "
            f"{p['burst_share']:.2f} | {ready(p)} | {startup(p)} | {primed(p)} | {rss} "
            f"| {cpu} |"
        )
    return "\n".join(lines)


def text(r: dict[str, Any], results: Path) -> str:
    """The Shards section: this run's figures, and the latest large run's if there is one."""
    s = r.get("shards")
    if s is None or "single" not in s:
        return ""
    single, base, shared = s["single"], s["base"], s["shared"]
    shards = s["shard"]
    intro = (
        f"The same world on {s['count']} namespace shards (`--shard 0/2` and `--shard 1/2`, "
        "started together, each with `--no-leader-election` and its own ServiceAccount), held "
        "against one process serving everything. Each in turn moves the same "
        f"{s['tags']} tags at once, as many in each of the world's "
        f"{sum(map(len, s['namespaces'].values()))} namespaces ({s['deployments']} "
        f"Deployments and {s['buildconfigs']} BuildConfigs "
        "follow them). A shard indexes every ImageStream, since a trigger may follow a stream "
        "in another shard's namespace, and only its own namespaces' workloads, BuildConfigs "
        "and ImageTriggers. CPU is counted from the first import until the process has been "
        "idle for 2 s; RSS is the peak (VmHWM), start-up included. Two more processes, each "
        "started alone, show what does not shrink with a shard's share."
    )
    cpu = (
        f"**CPU.** For half the burst's targets each shard spent "
        f"{_all(shards, 'cpu_fraction', '{:.2f}')} of the single process's CPU "
        f"({_all(shards, 'burst_cpu_s', '{:.2f} s')} against "
        f"{single['burst_cpu_s']:.2f} s). What is above its share is what every shard "
        "does for every namespace: its watches are cluster-wide (the API server cannot "
        "select namespaces by a hash of their names) and filtered in the process, so each "
        "shard receives and decodes every ImageStream event and every workload event, the "
        "other shard's writes included: together the shards spent "
        f"{sum(p['burst_cpu_s'] for p in shards):.2f} s. The burst took "
        f"{shards[0]['burst_deployments_s']:.2f} s on two shards against "
        f"{single['burst_deployments_s']:.2f} s on one process: on this 2-core machine the "
        "shards share the cores with the API server, etcd and each other, so more processes "
        "bring no more cores; on a cluster each shard is a pod of its own."
        + startup_sentence(single, shared, shards)
    )
    memory = (
        f"**Memory.** A process that indexes nothing peaks at {base['peak_rss_mb']:.0f} MB; "
        "one that indexes every ImageStream and nothing else (a shard no namespace of the world "
        f"hashes to) at {shared['peak_rss_mb']:.0f} MB; the single process at "
        f"{single['peak_rss_mb']:.0f} MB. The middle one is the shared part every shard holds "
        "whatever its share: the base, every ImageStream, and what handling every namespace's "
        "objects costs (the listings and the watches are cluster-wide, kopf's too). So the "
        "total does not halve: each shard peaked at "
        f"{_all(shards, 'peak_rss_mb', '{:.0f} MB')}: "
        f"{_all(shards, 'rss_above_base_fraction', '{:.2f}')} of the single "
        "process's RSS above the base. Beyond the shared part each holds "
        f"{_each([beyond(p) for p in shards])} of what the single process holds, for "
        f"{_all(shards, 'object_share', '{:.2f}')} of the objects other than "
        "ImageStreams. To size a shard: the shared part, plus its share of the rest (for the "
        "single process, the rest is its peak less the shared part)."
        + primed_sentence(single, shards)
    )
    correct = (
        f"**Correctness.** {s['not_converged']} targets not converged and "
        f"{s['wrong_shard_writes']} writes by the wrong shard: every write each shard's "
        "ServiceAccount made, from the API server's audit log, was in a namespace of its own "
        "(an instantiate leaves no namespace there, so the Builds each shard started are "
        "taken from its log). "
        + "Writes: "
        + _each([f"shard {p['shard']} {sum(p['writes'].values())}" for p in shards])
        + "."
    )
    bullets = [
        textwrap.fill(t, WIDTH, initial_indent="- ", subsequent_indent="  ", break_on_hyphens=False)
        for t in (cpu, memory, correct)
    ]
    parts = [
        "## Shards",
        textwrap.fill(intro, WIDTH, break_on_hyphens=False),
        table(s),
        "\n".join(bullets),
    ]
    large = latest_large(results)
    if large is not None and r["config"]["size"] != "large":
        parts.append(large_text(*large))
    return "\n\n".join(parts) + "\n"


def startup_sentence(
    single: dict[str, Any], shared: dict[str, Any], shards: list[dict[str, Any]]
) -> str:
    if "startup_cpu_s" not in single:  # results from before it was recorded
        return ""
    alone = shared.get("startup_cpu_s")
    return (
        " Start-up is another matter: from launch until idle (the listings, kopf's own "
        "listing of ImageStreams and ImageTriggers, and the pass over every key) each shard "
        f"spent {_all(shards, 'startup_cpu_s', '{:.1f} s')} of CPU against "
        f"{single['startup_cpu_s']:.1f} s for the single process"
        + ("" if alone is None else f", and the shared-part process, with no key, {alone:.1f} s")
        + "."
    )


def primed_sentence(single: dict[str, Any], shards: list[dict[str, Any]]) -> str:
    if "primed_rss_mb" not in single:  # results from before it was recorded
        return ""
    return (
        " When ready (the indexes primed, before the start-up pass over every key and the "
        f"burst) the single process held {single['primed_rss_mb']:.0f} MB, the shards "
        f"{_all(shards, 'primed_rss_mb', '{:.0f} MB')}."
    )


def beyond(p: dict[str, Any]) -> str:
    fraction = p.get("rss_beyond_shared_fraction")
    return "—" if fraction is None else f"{fraction:.2f}"


def latest_large(results: Path) -> tuple[dict[str, Any], Path] | None:
    """The newest large run in ``results`` that has the shards phase."""
    for path in sorted(results.glob("*-large.json"), reverse=True):
        data = json.loads(path.read_text())
        if "single" in (data.get("shards") or {}):
            return data, path
    return None


def large_text(r: dict[str, Any], path: Path) -> str:
    s, config = r["shards"], r["config"]
    single, shared = s["single"], s["shared"]
    shards = s["shard"]
    lead = (
        f"At the large size ({config['streams']} ImageStreams, {config['workloads']} workloads; "
        f"measured on {r['environment']['date'][:10]} by `python -m bench --size large`: "
        f"`{path.relative_to(path.parents[2])}`), each shard spent "
        f"{_all(shards, 'cpu_fraction', '{:.2f}')} of the single process's burst "
        f"CPU ({single['burst_cpu_s']:.2f} s) and peaked at "
        f"{_all(shards, 'peak_rss_mb', '{:.0f} MB')} against "
        f"{single['peak_rss_mb']:.0f} MB, the shared part being {shared['peak_rss_mb']:.0f} MB "
        f"(beyond it, {_each([beyond(p) for p in shards])} of the single process's); "
        f"{s['not_converged']} targets not converged, {s['wrong_shard_writes']} writes by the "
        "wrong shard; goals "
        + ("met" if all(p["cpu_met"] and p["rss_met"] for p in shards) else "not all met")
        + ":"
    )
    return textwrap.fill(lead, WIDTH, break_on_hyphens=False) + "\n\n" + table(s)
