"""Chaos benchmark: how many applies each live target needs to converge under faults, and what retries cost.

    python bench/chaos/run.py [--p 0.3 0.5] [--seeds 1 2 3 4 5] [--targets cloudwatch gcp ...] [--max 8]
                              [--json OUT]

Runs tests/contract/converge.py's ``chaos_run`` (the same harnesses, fault proxy and report checks as
tests/test_chaos.py) for every target, fault probability and seed: from an empty service, then from
the populated one after updates and deletes. The seeds are not the test's (20261202), which the
retry settings were not tuned against either. Prints, per target and p, the applies to converge
(median and worst over the seeds; ">N" when it did not within ``--max``), requests retried and faults
injected per run (mean), and report lines whose outcome memprov could not know. Every report line
is checked against the service while it runs: a false line stops the benchmark.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.contract import HARNESSES
from tests.contract.converge import chaos_run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--p", type=float, nargs="+", default=[0.3, 0.5])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--targets", nargs="+", default=list(HARNESSES), choices=list(HARNESSES))
    parser.add_argument("--max", type=int, default=8, help="applies before giving up on a run")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows, raw = [], []
    for name in args.targets:
        for p in args.p:
            runs = []
            for seed in args.seeds:
                with tempfile.TemporaryDirectory() as tmp:
                    h = HARNESSES[name](Path(tmp))
                    start = time.monotonic()
                    with h.running():
                        phases = chaos_run(h, p, seed, max_applies=args.max)
                    runs.append((seed, phases, time.monotonic() - start))
                    raw.append({"target": name, "p": p, "seed": seed, "seconds": runs[-1][2],
                                "phases": [vars(ph) for ph in phases]})  # fmt: skip
                    print(f"{name} p={p} seed={seed}: " + "; ".join(
                        f"{ph.name} {ph.applies or '>' + str(args.max)} applies, {ph.retries} retries, "
                        f"{ph.faults} faults" for ph in phases), flush=True)  # fmt: skip
            for which in ("from empty", "updates and deletes"):
                got = [next((ph for ph in phases if ph.name == which), None) for _, phases, _ in runs]
                applies = [ph.applies if ph and ph.applies else args.max + 1 for ph in got]
                done = [ph for ph in got if ph]
                rows.append(
                    (
                        name,
                        p,
                        which,
                        statistics.median(applies),
                        max(applies),
                        statistics.mean(ph.retries for ph in done) if done else 0.0,
                        statistics.mean(ph.faults for ph in done) if done else 0.0,
                        sum(ph.unknown for ph in done),
                        sum(ph.unreadable for ph in done),
                    )
                )
    print()
    print(f"seeds {args.seeds}; applies: median (worst); >{args.max} counted as {args.max + 1}")
    print("| target | p | phase | applies to converge | retries / run | faults / run | unknown lines | unreadable |")
    print("|---|---|---|---|---|---|---|---|")
    for name, p, which, med, worst, retries, faults, unknown, unreadable in rows:
        shown = f"{med:g} ({worst if worst <= args.max else '>' + str(args.max)})"
        print(f"| {name} | {p} | {which} | {shown} | {retries:.1f} | {faults:.1f} | {unknown} | {unreadable} |")
    if args.json:
        args.json.write_text(json.dumps(raw, indent=2, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
