"""`make bench`: latency, burst throughput, API cost, memory and start-up, from outside.

  python -m bench                  the standard size (1,000 streams / 3,000 workloads)
  python -m bench --quick          50 / 150: correctness only (CI runs this)
  python -m bench --size large     5,000 / 15,000 (by hand: long)
  python -m bench --streams N --workloads M

Writes bench/results/<date>-<size>.json and a latency CDF plot; the standard size
also rewrites docs/benchmarks.md. The quick mode asserts correctness (every target
converged, one write per affected target, no reads per change, nothing while idle;
and across a leader's crash and a rolling update, no change lost, no build started
twice, no write by a replica not leading; on two namespace shards, every target
converged and no write by the wrong shard), never timings.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from bench import report
from bench.run import SIZES, Bench

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the CI size; checks correctness only")
    parser.add_argument("--size", choices=sorted(SIZES), default=None)
    parser.add_argument("--streams", type=int, help="override the number of ImageStreams")
    parser.add_argument("--workloads", type=int, help="override the number of workloads")
    parser.add_argument(
        "--changes", type=int, default=None, help="single changes (default 200; quick 30)"
    )
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the operator with py-spy during the burst (.tools/bin/pip install py-spy)",
    )
    parser.add_argument(
        "--results", type=Path, default=HERE / "results", help="folder for the JSON and the plot"
    )
    args = parser.parse_args(argv)

    size = "quick" if args.quick else (args.size or "standard")
    streams, workloads = SIZES[size]
    streams, workloads = args.streams or streams, args.workloads or workloads
    changes = args.changes or (30 if size == "quick" else 200)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H%M%S")
    profile = args.results / f"{stamp}-{size}-burst-stacks.txt" if args.profile else None
    results = Bench(size, streams, workloads, changes, profile=profile).run()

    print()
    print(report.table(results))
    print()
    print(report.api_table(results))
    docs = (
        None
        if (args.no_docs or size != "standard" or args.streams or args.workloads)
        else (HERE.parent / "docs" / "benchmarks.md")
    )
    written = report.write(results, args.results, docs)
    for kind, path in written.items():
        print(f"{kind}: {path}")
    problems = results["correctness"]["problems"]
    if problems:
        print("correctness check FAILED: " + "; ".join(problems), file=sys.stderr)
        return 1
    print(
        "correctness: every target converged, one write per affected target, "
        "no reads per change, nothing while idle; across the failovers nothing lost, "
        "built twice or written by a replica not leading; on two shards, none written by "
        "the wrong shard"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
