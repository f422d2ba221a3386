"""Reward search benchmark: one offline (or model-backed) search end to end, timed, with its verdict.

Runs ``python -m rewards.llm.search.synthesize`` with the given overrides into
``benchmarks/results/synthesize/<name>/``, then prints the wall time of the whole search and, from
its ``summary.json``, the final comparison on fresh seeds: the best reward against the env's reward
and the task metric used as reward, with the frames each needed to first reach the target success
rate (``search.target_success``) and the human-normalised score. The report (``report.md`` with
``final_curves.png``) is copied to ``benchmarks/results/synthesize_<name>.md`` / ``.png``.

    python benchmarks/bench_synthesize.py --name doorkey8x8_offline -- env.id=MiniGrid-DoorKey-8x8-v0 \
        llm=offline iterations=3 candidates=4
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--name", required=True)
    p.add_argument("--target", type=float, default=0.8, help="success rate for the frames-to-target column")
    p.add_argument("--report-only", action="store_true", help="skip the search; re-read the finished run")
    p.add_argument("overrides", nargs="*", help="Hydra overrides for rewards.llm.search.synthesize")
    args = p.parse_args()
    run_dir = RESULTS / "synthesize" / args.name
    cmd = [sys.executable, "-m", "rewards.llm.search.synthesize", *args.overrides, f"run_dir={run_dir}", "overwrite=true",
           f"search.target_success={args.target}"]
    wall_file = run_dir / "search_wall_time_s.txt"
    if not args.report_only:
        print(" ".join(cmd), flush=True)
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, check=True)
        wall_file.write_text(f"{time.perf_counter() - t0:.1f}\n")
    wall = float(wall_file.read_text()) if wall_file.exists() else float("nan")
    from rewards.llm.search.records import frames_to
    from rewards.llm.search.report import write_report

    write_report(run_dir, args.target)
    summary = json.loads((run_dir / "summary.json").read_text())
    print(f"\nsearch wall time: {wall:.0f} s ({wall / 60:.1f} min), proposer {summary['proposer']}, metric {summary['metric']}")
    print(f"best candidate: {summary['best']['name'] if summary['best'] else None}")
    for arm, data in summary["final"]["arms"].items():
        runs = [r for r in data["runs"].values() if r.get("ok")]
        reach = [frames_to(r.get("success", []), args.target) for r in runs]
        print(f"  {arm:12s} final fitness {data['fitness_mean']:.3f} over {len(runs)} seeds; frames to success "
              f"{args.target}: {', '.join(f'{f:,}' if f else 'never' for f in reach)}")
    shutil.copy(run_dir / "report.md", RESULTS / f"synthesize_{args.name}.md")
    if (run_dir / "final_curves.png").exists():
        shutil.copy(run_dir / "final_curves.png", RESULTS / f"synthesize_{args.name}.png")
        text = (RESULTS / f"synthesize_{args.name}.md").read_text().replace("](final_curves.png)",
                                                                           f"](synthesize_{args.name}.png)")
        (RESULTS / f"synthesize_{args.name}.md").write_text(text + f"\n\nSearch wall time: {wall:.0f} s.\n")
    print(f"report: {RESULTS / f'synthesize_{args.name}.md'}")


if __name__ == "__main__":
    main()
