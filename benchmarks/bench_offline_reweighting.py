"""Trajectory reweighting on mixed datasets (Hong et al., ICLR 2023), reproduced with the library's apps.

    B=".venv/bin/python benchmarks/bench_offline_reweighting.py"
    $B run --name dk8 --task MiniGrid-DoorKey-8x8-v0 --expert-frames 2000000 --random-episodes 400 \
        --fractions 0.01 0.05 --algos bc iql cql --samplers uniform rw aw --seeds 0 1 2 --fit-steps 100000
    $B report --name dk8

Stages, each through the library's own command lines and each skipped when its output exists (so the
command is resumable; offline runs resume from their checkpoints; one invocation per sweep at a time,
held by a lock on ``<sweep>/.lock``, with ``--jobs`` runs in parallel inside it):

1. expert: native PPO on the task (``python -m rlcore.train``, ``--expert-frames``);
2. data: ``--random-episodes`` episodes of uniformly random actions and enough expert episodes
   (``python -m rlcore.collect``), then for each ``--fractions`` f a mixture with a fraction f of its
   trajectories from the expert (``rlcore.data.make_mixed``; the D4RL references are the random and the
   expert data's mean returns);
3. runs: every (fraction, algo, sampler, seed) with ``python -m rlcore.train algo=<algo>
   dataset.path=<mixture> dataset.sampler=<sampler>``; the losses and hyperparameters are the same for
   every sampler, only the minibatch draws change.

``report`` writes ``report.md`` in the sweep directory: the final normalised score
``100 * (R - R_random) / (R_expert - R_random)`` per run, mean and IQM with 95% stratified-bootstrap CIs
(rliable, ``pip install -e '.[bench]'``) per (mixture, algo, sampler), and each sampler's mean over
uniform's, against the issue's target of 1.5x on the 5% mixtures. Results live in
``benchmarks/results/offline/<name>/`` (git-ignored).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import math
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "offline"
PY = sys.executable


def _run(args: list[str], log: Path) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as out:
        out.write(f"\n$ {' '.join(args)}\n")
        out.flush()
        code = subprocess.run(args, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                              env=dict(os.environ, PYTHONPATH=str(ROOT))).returncode
    if code != 0:
        raise SystemExit(f"command failed ({code}); see {log}:\n  {' '.join(args)}")


def _done(run_dir: Path, key: str, budget: int) -> bool:
    try:
        return int(json.loads((run_dir / "summary.json").read_text()).get(key) or 0) >= budget
    except (OSError, ValueError):
        return False


def stage_expert(sweep: Path, task: str, frames: int) -> Path:
    run = sweep / "expert"
    if not _done(run, "total_timesteps", frames):
        print(f"[expert] PPO on {task}, {frames:,} frames -> {run}", flush=True)
        _run([PY, "-m", "rlcore.train", f"env.id={task}", f"total_timesteps={frames}", "resume=true", "progress_bar=false",
              "num_threads=1", f"hydra.run.dir={run}"], sweep / "logs" / "expert.log")
    summary = json.loads((run / "summary.json").read_text())
    print(f"[expert] eval success {summary['eval_success_rate']:.2f}, return {summary['eval_return_mean']:.3f}", flush=True)
    return run / "final_model.pt"


def stage_data(sweep: Path, task: str, expert: Path, random_episodes: int, fractions: list[float]) -> dict[float, Path]:
    from rlcore.data import load_dataset, make_mixed, save_dataset

    data = sweep / "data"
    data.mkdir(parents=True, exist_ok=True)
    rnd, exp = data / "random.safetensors", data / "expert.safetensors"
    n_expert = max(1, math.ceil(random_episodes * max(fractions) / (1 - max(fractions)))) + 2
    if not rnd.exists():
        _run([PY, "-m", "rlcore.collect", f"env.id={task}", f"n_episodes={random_episodes}", "n_steps=null", f"out={rnd}",
              "seed=1"], sweep / "logs" / "data.log")
    if not exp.exists():
        _run([PY, "-m", "rlcore.collect", f"env.id={task}", f"policy.path={expert}", f"n_episodes={n_expert}", "n_steps=null",
              f"out={exp}", "seed=2"], sweep / "logs" / "data.log")
    random_data, expert_data = load_dataset(rnd), load_dataset(exp)
    mixes = {}
    for f in fractions:
        path = data / f"mix-{f:g}.safetensors"
        if not path.exists():
            n = round(random_episodes / (1 - f))
            mixed = make_mixed([random_data, expert_data], [1 - f, f], n_episodes=n, seed=0)
            save_dataset(mixed, path)
        mixes[f] = path
    print(f"[data] random {random_data.num_episodes} episodes (mean return {float(random_data.episode_return.mean()):.3f}), "
          f"expert {expert_data.num_episodes} (mean return {float(expert_data.episode_return.mean()):.3f})", flush=True)
    return mixes


def run_name(f: float, algo: str, sampler: str, seed: int) -> str:
    return f"mix{f:g}-{algo}-{sampler}-seed{seed}"


def stage_runs(sweep: Path, task: str, mixes: dict[float, Path], algos: list[str], samplers: list[str], seeds: list[int],
               fit_steps: int, eval_every: int, jobs: int, extra: list[str]) -> None:
    todo = []
    for f, path in mixes.items():
        for algo in algos:
            for sampler in samplers:
                for seed in seeds:
                    run = sweep / "runs" / run_name(f, algo, sampler, seed)
                    if not _done(run, "gradient_steps", fit_steps):
                        todo.append((run, [PY, "-m", "rlcore.train", f"env.id={task}", f"algo={algo}", f"dataset.path={path}",
                                           f"dataset.sampler={sampler}", f"seed={seed}", f"fit_steps={fit_steps}",
                                           f"eval.every_fit_steps={eval_every}", f"checkpoint.every_fit_steps={eval_every}",
                                           "resume=true", "progress_bar=false", "num_threads=1", f"hydra.run.dir={run}", *extra]))
    print(f"[runs] {len(todo)} to train, {jobs} at a time", flush=True)

    def one(item):
        run, args = item
        t0 = time.time()
        _run(args, run.parent.parent / "logs" / f"{run.name}.log")
        s = json.loads((run / "summary.json").read_text())
        print(f"[runs] {run.name}: normalised score {s.get('normalized_score')}, {time.time() - t0:.0f} s", flush=True)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        list(pool.map(one, todo))


def report(sweep: Path) -> str:
    import numpy as np

    rows: dict[tuple[str, str, str], list[float]] = {}
    for summary in sorted((sweep / "runs").glob("*/summary.json")):
        mix, algo, sampler, _ = summary.parent.name.split("-")
        score = json.loads(summary.read_text()).get("normalized_score")
        if score is not None:
            rows.setdefault((mix, algo, sampler), []).append(float(score))
    try:
        from rliable import library as rly
        from rliable import metrics
    except ImportError:
        rly = None
    lines = [f"# Trajectory reweighting: {sweep.name}", "",
             "| mixture | algo | sampler | seeds | normalised score per seed | mean | IQM [95% CI] | mean / uniform's |",
             "|---|---|---|---:|---|---:|---|---:|"]
    for (mix, algo, sampler), scores in sorted(rows.items()):
        mean = float(np.mean(scores))
        iqm = ""
        if rly is not None and len(scores) >= 2:
            point, ci = rly.get_interval_estimates({"x": np.array(scores)[:, None]},
                                                   lambda x: np.array([metrics.aggregate_iqm(x)]), reps=2000)
            iqm = f"{point['x'][0]:.1f} [{ci['x'][0][0]:.1f}, {ci['x'][1][0]:.1f}]"
        base = rows.get((mix, algo, "uniform"))
        ratio = ""
        if base and sampler != "uniform":
            ratio = f"{mean / np.mean(base):.2f}" if np.mean(base) > 0 else f"n/a (uniform's mean {np.mean(base):.1f})"
        lines.append(f"| {mix} | {algo} | {sampler} | {len(scores)} | {', '.join(f'{x:.1f}' for x in scores)} | {mean:.1f} | "
                     f"{iqm} | {ratio} |")
    text = "\n".join(lines) + "\n"
    (sweep / "report.md").write_text(text)
    return text


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--name", required=True)
    r.add_argument("--task", default="MiniGrid-DoorKey-8x8-v0")
    r.add_argument("--expert-frames", type=int, default=2_000_000)
    r.add_argument("--random-episodes", type=int, default=400)
    r.add_argument("--fractions", type=float, nargs="+", default=[0.01, 0.05])
    r.add_argument("--algos", nargs="+", default=["bc", "iql"])
    r.add_argument("--samplers", nargs="+", default=["uniform", "rw", "aw"])
    r.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    r.add_argument("--fit-steps", type=int, default=100_000)
    r.add_argument("--eval-every", type=int, default=10_000)
    r.add_argument("--jobs", type=int, default=1)
    r.add_argument("overrides", nargs="*", help="extra Hydra overrides for every offline run")
    rep = sub.add_parser("report")
    rep.add_argument("--name", required=True)
    args = p.parse_args()
    sweep = RESULTS / args.name
    if args.cmd == "run":
        sweep.mkdir(parents=True, exist_ok=True)
        lock = open(sweep / ".lock", "w")
        try:  # one invocation per sweep: two would train into the same run directories
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(f"another invocation is running on sweep {sweep}; wait for it or use another --name") from None
        expert = stage_expert(sweep, args.task, args.expert_frames)
        mixes = stage_data(sweep, args.task, expert, args.random_episodes, args.fractions)
        stage_runs(sweep, args.task, mixes, args.algos, args.samplers, args.seeds, args.fit_steps, args.eval_every, args.jobs,
                   args.overrides)
    print(report(sweep))


if __name__ == "__main__":
    main()
