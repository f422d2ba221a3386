"""The search report: ``report.md`` with a learning-curve plot, written into the search's run directory.

It lists every candidate (iteration, status, fitness or the first line of its error), the best
reward's code, and compares the best reward with the two baselines re-trained on the same fresh
seeds: the env's own reward and the task metric used directly as reward. Columns: final fitness
(mean over seeds), frames until the success rate first reaches ``search.target_success``, and
Eureka's human-normalised score ``(best - task_metric) / |env_reward - task_metric|`` (the env's
reward in the role of the human-written one; undefined when the two baselines score the same).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from omegaconf import OmegaConf

from rewards.llm.search.formatting import format_number
from rewards.llm.search.records import Candidate, frames_to, read_json


def _fmt(x: Optional[float], digits: int = 3) -> str:
    return format_number(x, f".{digits}f", missing="—", nan_is_missing=True)


def normalized_score(best: Optional[float], env_reward: Optional[float], task_metric: Optional[float]) -> Optional[float]:
    """Eureka's human-normalised score; ``None`` when an input is missing or the baselines tie."""
    if best is None or env_reward is None or task_metric is None or abs(env_reward - task_metric) < 1e-9:
        return None
    return (best - task_metric) / abs(env_reward - task_metric)


def _candidates(run_dir: Path) -> list[Candidate]:
    return [Candidate.from_dict(read_json(path)) for path in sorted(run_dir.glob("iter_*/cand_*/result.json"))]


def _plot(final: dict, path: Path, metric: str, threshold: float) -> Optional[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6, 4))
    drawn = False
    for arm, data in final.get("arms", {}).items():
        curves = [r.get("metric_curve") for r in data["runs"].values() if r.get("ok") and r.get("metric_curve")]
        if not curves:
            continue
        n = min(len(c) for c in curves)
        xs = [p[0] for p in curves[0][:n]]
        ys = np.array([[p[1] for p in c[:n]] for c in curves])
        line, = ax.plot(xs, ys.mean(0), label=f"{arm} ({len(curves)} seeds)")
        ax.fill_between(xs, ys.min(0), ys.max(0), color=line.get_color(), alpha=0.2)
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    if metric == "success":
        ax.axhline(threshold, color="grey", ls=":", lw=1)
        ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("environment frames")
    ax.set_ylabel("eval success rate" if metric == "success" else "eval return (env reward)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def first_line(text: str, limit: int = 160) -> str:
    """The first line of ``text``, cut to ``limit`` characters (with an ellipsis when cut)."""
    line = (text.strip().splitlines() or [""])[0]
    return line if len(line) <= limit else line[: limit - 1] + "…"


def write_preflight_report(run_dir: Path, error: str) -> Path:
    """``report.md`` of a search that stopped before its first iteration: the full preflight error."""
    path = Path(run_dir) / "report.md"
    path.write_text("# Reward search: not started\n\n"
                    "The check of the LLM endpoint before the first iteration failed, so no candidate was requested "
                    "or trained.\n\n```text\n" + error.strip() + "\n```\n\n"
                    "Start the server (or fix `llm.base_url` / `llm.model`) and run again; "
                    "`llm.preflight=false` skips the check.\n")
    return path


def write_report(run_dir: Path, target_success: Optional[float] = None) -> Path:
    """Write ``report.md`` (and ``final_curves.png``) for the search in ``run_dir``; returns its path.

    ``target_success`` (default: the run's ``search.target_success``) is the success rate of the
    "frames to success" column.
    """
    run_dir = Path(run_dir)
    summary = read_json(run_dir / "summary.json")
    cfg = OmegaConf.load(run_dir / "config.yaml") if (run_dir / "config.yaml").exists() else None
    threshold = target_success if target_success is not None else (float(cfg.search.target_success) if cfg is not None else 0.8)
    metric = summary["metric"]
    lines = [f"# Reward search on {summary['env_id']}", "",
             f"Proposer: `{summary['proposer']}`; fitness: {'eval success rate' if metric == 'success' else 'eval return'} "
             f"(mean of the last evaluations of each run).", ""]
    cands = _candidates(run_dir)
    lines += ["## Candidates", "", "| iteration | candidate | status | fitness | error (last line) |", "|---:|---:|---|---:|---|"]
    for c in cands:
        err = "" if c.ok else f"{c.stage}: {c.error_line(100)}"
        lines.append(f"| {c.iteration} | {c.index} | {c.status} | {_fmt(c.fitness)} | {err.replace('|', '/')} |")
    failed = sum(not c.ok for c in cands)
    lines += ["", f"{len(cands)} candidates, {failed} failed.", ""]
    best = summary.get("best")
    if best:
        code = (run_dir / "best_reward.py").read_text() if (run_dir / "best_reward.py").exists() else ""
        lines += [f"## Best reward: {best['name']} (search fitness {_fmt(best['fitness'])})", "",
                  "Saved as `best_reward.py` (importable: `from rewards.llm.reward_module import CodeReward`, "
                  "`CodeReward(obs_space, act_space, code_path=...)`).", "", "```python", code.rstrip(), "```", ""]
    final = summary.get("final") or {}
    arms = final.get("arms", {})
    if arms:
        lines += [f"## Final evaluation on fresh seeds {final.get('seeds')}, same PPO budget", "",
                  f"| reward | runs | final fitness (mean) | frames to success {threshold:g} (per seed) | wall time (s, mean) |",
                  "|---|---:|---:|---|---:|"]
        for arm, data in arms.items():
            runs = [r for r in data["runs"].values() if r.get("ok")]
            reach = ", ".join(f"{f:,}" if f is not None else "never" for f in
                              (frames_to(r.get("success", []), threshold) for r in runs)) or "—"
            wall = sum(r["wall_s"] for r in runs) / len(runs) if runs else None
            lines.append(f"| {arm} | {len(runs)} | {_fmt(data.get('fitness_mean'))} | {reach} | {_fmt(wall, 0)} |")
        score = normalized_score(arms.get("best", {}).get("fitness_mean"), arms.get("env_reward", {}).get("fitness_mean"),
                                 arms.get("task_metric", {}).get("fitness_mean"))
        lines += ["", "Human-normalised score (Eureka; env reward as the human reward, task metric as the sparse "
                  f"reward): {_fmt(score, 2) if score is not None else 'undefined (the baselines score the same)'}", ""]
        plot = _plot(final, run_dir / "final_curves.png", metric, threshold)
        if plot:
            lines += [f"![learning curves]({plot.name})", ""]
    path = run_dir / "report.md"
    path.write_text("\n".join(lines))
    return path


def main() -> None:
    import argparse

    p = argparse.ArgumentParser(description="Rewrite report.md of a reward search run directory.")
    p.add_argument("run_dir")
    p.add_argument("--target-success", type=float, default=None, help="threshold of the frames-to-success column")
    args = p.parse_args()
    print(write_report(Path(args.run_dir), args.target_success))


if __name__ == "__main__":
    main()
