"""What OS isolation and resource limits cost a reward-search training run.

The same candidate training run, through the same worker (``rewards.llm.search.training.run_training_job``,
which starts ``python -m rewards.llm.search.worker``), with the same LLM-style reward code
(a ``CodeReward`` with the search's per-call deadline), two ways:

* ``isolated``: ``isolation="bwrap"`` and the search's default worker limits
  (:func:`rewards.llm.search.loop.worker_limits`: address space, CPU time, file size; no address-space limit on CUDA);
* ``plain``: ``isolation="off"``, no limits.

The contenders alternate (isolated first on even repeats, plain first on odd ones); the figures are
medians over ``--repeats``. Per env and contender it reports the worker's wall-clock seconds per
run (interpreter start, torch import and the final evaluation included) with env steps per
second over it, the training loop's own env steps per second (the last ``time/fps`` of
``progress.csv``: rollouts, reward calls and updates, no start-up or evaluation), and the
overhead of isolation in % per run and per training step (from those fps). The envs use the
training config the search uses (``configs/synthesize.yaml``) on ``MiniGrid-DoorKey-8x8-v0`` and
``HalfCheetah-v5`` (``env=mujoco``), with evaluation only at the end on 8 episodes (extra Hydra
overrides after the flags change any of it). The run lengths round up to whole rollouts
(``num_envs * n_steps`` steps). The largest file a run wrote is reported too (the file-size
limit must leave room for it). ``uptime`` is printed before and after; the results go to stdout
as a markdown table and one JSON object.

    python benchmarks/bench_isolation_training.py --repeats 6 --timesteps-minigrid 163840 --timesteps-mujoco 20480

A smoke run (seconds, not a measurement): ``--repeats 1 --timesteps-minigrid 2048 --timesteps-mujoco 1024``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MINIGRID_CODE = '''def compute_reward(state, action, next_state):
    d = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    at_goal = (d == 0).float()
    near = -0.01 * d
    return at_goal + near, {"at_goal": at_goal, "near": near}
'''
MUJOCO_CODE = '''def compute_reward(state, action, next_state):
    forward = next_state["qvel"][:, 0].float()
    ctrl = -0.1 * (action.float() ** 2).sum(-1)
    return forward + ctrl, {"forward_velocity": forward, "ctrl": ctrl}
'''
#: name -> (config overrides, reward code)
ENVS: dict[str, tuple[list[str], str]] = {
    "doorkey8x8": (["env.id=MiniGrid-DoorKey-8x8-v0"], MINIGRID_CODE),
    "halfcheetah": (["env=mujoco", "env.id=HalfCheetah-v5"], MUJOCO_CODE),
}
CONTENDERS = ("isolated", "plain")


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError as exc:
        return f"uptime unavailable: {exc}"


def search_for(overrides: list[str], timesteps: int):
    """The search config (``configs/synthesize.yaml``) with ``overrides``; evaluation only at the end."""
    from hydra import compose, initialize_config_dir

    from rewards.llm.search.config_schemas import register_llm_schemas
    from rlcore.config import CONFIG_DIR, register_configs

    register_configs()
    register_llm_schemas()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        return compose(config_name="synthesize", overrides=["eval.every_timesteps=0", "eval.num_episodes=8",
                                                             "llm=offline", f"total_timesteps={timesteps}",
                                                             *overrides])


def train_config(cfg, code_path: Path, run_name: str) -> dict[str, Any]:
    """The candidate's training config as :meth:`RewardSearch.train_config` and ``code_reward`` build it."""
    from omegaconf import OmegaConf

    from rewards.llm.search.loop import SEARCH_KEYS

    base = OmegaConf.to_container(cfg, resolve=True)
    for key in SEARCH_KEYS:
        base.pop(key, None)
    timeout = cfg.search.reward_call_timeout_s
    reward = {"name": "bench", "module": {"_target_": "rewards.llm.reward_module.CodeReward",
                                          "code_path": str(code_path), "routing": "replace",
                                          "call_timeout_s": None if timeout is None else float(timeout)}}
    base.update({"reward": reward, "seed": 0, "run_name": run_name, "resume": False, "overwrite": True,
                 "progress_bar": False})
    return base


def one_run(contender: str, cfg, code_path: Path, root: Path, index: int) -> dict[str, float]:
    from rewards.llm.search.loop import worker_limits
    from rewards.llm.search.training import read_progress, run_training_job

    job_dir = root / f"{contender}_{index:02d}"
    isolated = contender == "isolated"
    job = run_training_job(train_config(cfg, code_path, job_dir.name), job_dir,
                           timeout_s=float(cfg.search.candidate_timeout_s), isolation="bwrap" if isolated else "off",
                           readable=[str(root)], limits=worker_limits(cfg) if isolated else None)
    if not job.ok:
        raise RuntimeError(f"{contender} run {index} failed:\n{job.error}")
    run_dir = Path(job.run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    fps = [row["time/fps"] for row in read_progress(run_dir / "progress.csv") if row.get("time/fps")]
    largest = max((f.stat().st_size for f in job_dir.rglob("*") if f.is_file()), default=0)
    return {"wall_s": job.wall_s, "steps": int(summary["total_timesteps"]), "loop_fps": float(fps[-1]),
            "largest_file_mb": largest / 2**20}


def measure(name: str, timesteps: int, repeats: int, extra: list[str]) -> dict[str, Any]:
    overrides, code = ENVS[name]
    cfg = search_for([*overrides, *extra], timesteps)
    runs: dict[str, list[dict[str, float]]] = {c: [] for c in CONTENDERS}
    with tempfile.TemporaryDirectory(prefix=f"bench-isolation-{name}-") as tmp:
        root = Path(tmp)
        code_path = root / "reward.py"
        code_path.write_text(code)
        for r in range(repeats):
            for contender in (CONTENDERS if r % 2 == 0 else CONTENDERS[::-1]):
                runs[contender].append(one_run(contender, cfg, code_path, root, r))
                last = runs[contender][-1]
                print(f"  {name} {contender} run {r}: {last['wall_s']:.2f} s per run, training loop "
                      f"{last['loop_fps']:.0f} steps/s", file=sys.stderr, flush=True)
    from rewards.llm.search.loop import worker_limits

    out: dict[str, Any] = {"env": name, "env_id": str(cfg.env.id), "num_envs": int(cfg.env.num_envs),
                           "timesteps": timesteps, "repeats": repeats, "limits": worker_limits(cfg).describe()}
    for contender, rs in runs.items():
        wall = statistics.median(x["wall_s"] for x in rs)
        fps = statistics.median(x["loop_fps"] for x in rs)
        steps = rs[0]["steps"]
        out[contender] = {"wall_s": wall, "steps": steps, "steps_per_s_run": steps / wall, "steps_per_s_loop": fps,
                          "largest_file_mb": max(x["largest_file_mb"] for x in rs),
                          "wall_s_all": [x["wall_s"] for x in rs], "loop_fps_all": [x["loop_fps"] for x in rs]}
    iso, plain = out["isolated"], out["plain"]
    out["overhead_run_pct"] = 100.0 * (iso["wall_s"] - plain["wall_s"]) / plain["wall_s"]
    out["overhead_run_s"] = iso["wall_s"] - plain["wall_s"]
    out["overhead_per_step_pct"] = 100.0 * (plain["steps_per_s_loop"] / iso["steps_per_s_loop"] - 1.0)
    return out


def markdown(results: list[dict[str, Any]]) -> str:
    lines = ["| env | contender | s per run | steps/s (run) | steps/s (training loop) | largest file (MiB) |",
             "|---|---|---:|---:|---:|---:|"]
    for res in results:
        for c in CONTENDERS:
            d = res[c]
            lines.append(f"| {res['env_id']} ({res['num_envs']} envs, {d['steps']} steps) | {c} | {d['wall_s']:.2f} | "
                         f"{d['steps_per_s_run']:.0f} | {d['steps_per_s_loop']:.0f} | {d['largest_file_mb']:.2f} |")
    lines.append("")
    for res in results:
        lines.append(f"- {res['env_id']}: isolation + limits cost {res['overhead_run_pct']:+.1f}% per run "
                     f"({res['overhead_run_s']:+.2f} s) and {res['overhead_per_step_pct']:+.1f}% per training step "
                     f"(medians of {res['repeats']}; limits: {res['limits']})")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=6, help="runs per contender and env (alternating)")
    p.add_argument("--timesteps-minigrid", type=int, default=163_840,
                   help="env steps of each DoorKey-8x8 run (rounded up to whole rollouts)")
    p.add_argument("--timesteps-mujoco", type=int, default=20_480,
                   help="env steps of each HalfCheetah run (rounded up to whole rollouts)")
    p.add_argument("--envs", nargs="+", choices=sorted(ENVS), default=list(ENVS), help="which envs to run")
    p.add_argument("--format", choices=("both", "markdown", "json"), default="both", help="what goes to stdout")
    p.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run (e.g. env.num_envs=16)")
    args = p.parse_args()
    from rewards.llm.sandbox.process import bwrap_available

    problem = bwrap_available()
    if problem is not None:
        raise SystemExit(f"cannot measure isolation here: {problem}")
    before = uptime()
    t0 = time.perf_counter()
    results = [measure(name, args.timesteps_mujoco if name == "halfcheetah" else args.timesteps_minigrid,
                       args.repeats, args.overrides) for name in args.envs]
    report = {"uptime_before": before, "uptime_after": uptime(), "total_s": time.perf_counter() - t0,
              "python": sys.version.split()[0], "results": results}
    if args.format in ("both", "markdown"):
        print(f"uptime before: {report['uptime_before']}\nuptime after:  {report['uptime_after']}\n")
        print(markdown(results))
    if args.format in ("both", "json"):
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
