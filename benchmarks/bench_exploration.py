"""Exploration benchmark: bonuses x tasks x seeds with native PPO, resumable, reported with rliable.

``run`` trains every (task, bonus, seed) of the grid that is not done yet into
``benchmarks/results/exploration/<name>/<run name>/``, ``--jobs`` training processes at a time (one
torch thread each). A re-run of the same command skips the runs whose ``summary.json`` reached the
budget, resumes the interrupted ones from their last checkpoint (the training app's ``resume=true``;
checkpoints every ``--checkpoint-every`` frames) and starts the rest; Ctrl-C (or SIGTERM) stops every
run at a checkpoint. Each run directory keeps its resolved ``config.yaml`` (and Hydra's
``.hydra/overrides.yaml``); ``sweep.json`` records the protocol, the grid asked for and each
invocation's hardware and wall time, and ``runs.csv`` the state of every run after each one ends.
``report`` works on any partial sweep (see ``exploration_report.py``): per-task table with seeds run
against seeds asked, IQM and mean with stratified-bootstrap CIs and a performance profile
(``rliable``, ``pip install -e '.[bench]'``), learning, coverage and aggregate IQM curves, published
figures beside ours, wall time per run and the hardware.

    python benchmarks/bench_exploration.py run --name pilot --tasks MiniGrid-DoorKey-16x16-v0 \
        MiniGrid-KeyCorridorS3R3-v0 --rewards none e3b --seeds 0 1 2 --experiment exploration_minigrid
    python benchmarks/bench_exploration.py run --name rlexplore --tasks MiniGrid-DoorKey-16x16-v0 \
        --rewards none e3b rnd --seeds 0 1 2 --experiment rlexplore_minigrid   # RLeXplore's protocol
    python benchmarks/bench_exploration.py run --name pilot ... --dry-run   # what a re-run would do
    python benchmarks/bench_exploration.py report --name pilot

``--experiment`` picks ``configs/experiment/<name>.yaml`` for every run; ``--frames`` and
``--eval-every`` default to its values. Settings that only make sense for runs with a bonus (keys
under ``reward.module``, absent for ``reward=none``) go in ``--bonus-overrides``; a protocol that
needs them has them in :data:`PROTOCOL_BONUS_OVERRIDES`, applied with its experiment.

``sb3`` trains SB3's PPO on the library's batched MiniGrid (``SB3VecEnv``, ``--num-envs``) with the
same network (``grid_policy_kwargs(encoder=...)``), the same PPO shape (n_steps 128, 8 minibatches,
4 epochs, lr 5e-4, entropy 0.01) and the bonus built from the same ``configs/reward/<name>.yaml``,
applied through ``RewardModuleCallback`` (own intrinsic critic, advantages 2:1 as native PPO); its
runs appear in the report as ``sb3:<reward>``. With ``--with-native`` each SB3 run is followed by
the native path on the same settings, under the same machine load (its run goes to
``<name>_native_twin/``, outside the report's sweep), and the fps ratio is written to
``<name>/fps_ratio-*.json`` and printed.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from typing import Optional
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's packages, whatever is installed
import exploration_report as rep  # noqa: E402  (beside this script)

RESULTS = ROOT / "benchmarks" / "results" / "exploration"

#: Overrides a protocol applies to the runs with a bonus only (keys under ``reward.module`` do not
#: exist for ``reward=none``, so they cannot live in the experiment config; see its comments).
PROTOCOL_BONUS_OVERRIDES: dict[str, tuple[str, ...]] = {
    # intrinsic reward / running std of the reward itself (the normaliser's return with gamma 0), and the
    # intrinsic return cut at episode ends as in a single value stream
    "rlexplore_minigrid": ("reward.module.gamma=0.0", "++reward.module.episodic=true"),
}
#: Overrides a protocol applies to the runs of one reward config only (``++``: set or add, as some keys
#: are constructor defaults the config does not spell out). RLeXplore's bonus networks read the egocentric
#: 7x7 view without the heading (``grid_view``: three 2x2 convolutions, no pooling, 512 ReLU features),
#: and its E3B (RLLTE code) has a 128-d embedding that is not unit-normalised, trained with lr 1e-3 on
#: minibatches of 256.
PROTOCOL_REWARD_OVERRIDES: dict[str, dict[str, tuple[str, ...]]] = {
    "rlexplore_minigrid": {
        "e3b": ("++reward.module.bonuses.e3b.features=obs", "++reward.module.bonuses.e3b.encoder=grid_view",
                "++reward.module.bonuses.e3b.embed_dim=128", "++reward.module.bonuses.e3b.normalize_features=false",
                "++reward.module.bonuses.e3b.lr=1e-3", "++reward.module.bonuses.e3b.minibatch_size=256"),
        "rnd": ("++reward.module.bonuses.rnd.encoder=grid_view",),
    },
}


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


def protocol_of(args: argparse.Namespace) -> dict:
    """Everything that makes two runs of the sweep comparable: a re-run must ask for the same."""
    from rlcore.config import compose_config

    base = [f"experiment={args.experiment}"] if args.experiment else []
    cfg = compose_config("train", [*base, *args.overrides])
    frames = args.frames if args.frames is not None else (int(cfg.total_timesteps) if args.experiment else 2_000_000)
    eval_every = args.eval_every if args.eval_every is not None else (
        int(cfg.eval.every_timesteps) if args.experiment else 250_000)
    bonus = [*PROTOCOL_BONUS_OVERRIDES.get(args.experiment or "", ()), *args.bonus_overrides]
    proto = {"experiment": args.experiment, "frames": int(frames), "eval_every": int(eval_every),
             "eval_episodes": int(args.eval_episodes), "overrides": list(args.overrides), "bonus_overrides": bonus,
             "device": str(cfg.device)}
    per_reward = PROTOCOL_REWARD_OVERRIDES.get(args.experiment or "", {})
    if per_reward:  # only where a protocol has some, so the manifests of other sweeps keep their keys
        proto["reward_overrides"] = {k: list(v) for k, v in per_reward.items()}
    return proto


def train_command(proto: dict, task: str, reward: str, seed: int, run_dir: Path, checkpoint_every: int) -> list[str]:
    """The training app's command line for one run of the sweep (``resume=true``: a fresh run
    directory starts from scratch, an interrupted one continues from its last checkpoint)."""
    cmd = [sys.executable, "-m", "rlcore.train", f"env.id={task}", f"reward={reward}", f"seed={seed}"]
    if proto["experiment"]:
        cmd.append(f"experiment={proto['experiment']}")
    cmd += [f"total_timesteps={proto['frames']}", f"eval.every_timesteps={proto['eval_every']}",
            f"eval.num_episodes={proto['eval_episodes']}", f"checkpoint.every_timesteps={checkpoint_every}",
            "progress_bar=false", "num_threads=1", "resume=true", f"hydra.run.dir={run_dir}"]
    if reward != "none":
        cmd += proto["bonus_overrides"]
    cmd += proto.get("reward_overrides", {}).get(reward, [])
    return cmd + proto["overrides"]


@contextlib.contextmanager
def _sweep_lock(sweep: Path):
    """An exclusive lock on the sweep (``.sweep.lock``) between invocations running on it at once."""
    import fcntl

    sweep.mkdir(parents=True, exist_ok=True)
    with open(sweep / ".sweep.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _update_manifest(sweep: Path, change) -> dict:
    """Apply ``change(manifest)`` to the ``sweep.json`` on disk and write it back atomically, under the
    sweep's lock: two invocations on one sweep (e.g. one adding seeds while another runs) each re-read
    the file, so neither overwrites the other's records. Returns the manifest written."""
    from rlcore.atomic import atomic_write_text

    with _sweep_lock(sweep):
        manifest = change(rep.load_manifest(sweep))
        atomic_write_text(sweep / rep.MANIFEST, json.dumps(manifest, indent=2))
    return manifest


def claim_run(sweep: Path, item: dict, frames: int, start) -> Optional[object]:
    """Start ``item``'s run with ``start()`` unless, checked again under the sweep's lock, another
    invocation has started or finished it since this one planned; ``start`` writes the run's pid
    file before the lock is released. Returns what ``start`` returned, or None when skipped."""
    with _sweep_lock(sweep):
        status, why = rep.run_status(item["run_dir"], frames)
        if status in (rep.RUNNING, rep.COMPLETE):
            print(f"{_now()} skip   {item['run_dir'].name}: {why} (another invocation took it)", flush=True)
            return None
        return start()


def begin_invocation(manifest: Optional[dict], name: str, proto: dict, tasks, rewards, seeds, inv: dict) -> dict:
    """The manifest with this invocation's grid merged in and its record ``inv`` appended."""
    manifest = manifest or {"name": name, "protocol": proto, "invocations": []}
    manifest["grid"] = rep.merge_grid(manifest.get("grid"), tasks, rewards, seeds)
    manifest["invocations"].append(dict(inv))
    return manifest


def end_invocation(manifest: dict, inv: dict) -> dict:
    """The manifest with the record of invocation ``inv["id"]`` replaced by ``inv`` (appended if absent)."""
    records = manifest.setdefault("invocations", [])
    for i, record in enumerate(records):
        if record.get("id") == inv["id"]:
            records[i] = dict(inv)
            break
    else:
        records.append(dict(inv))
    return manifest


def _write_runs_csv(sweep: Path, grid: dict, frames: int) -> None:
    """``runs.csv``: one row per run of the grid with its state now (partial results while a sweep runs)."""
    from rlcore.atomic import atomic_write_text

    rows = []
    for item in rep.plan(sweep, grid["tasks"], grid["rewards"], grid["seeds"], frames):
        s = rep.read_summary(item["run_dir"]) or {}
        rows.append({"task": item["task"], "reward": item["reward"], "seed": item["seed"], "status": item["status"],
                     "frames": s.get("total_timesteps", ""), "eval_success_rate": s.get("eval_success_rate", ""),
                     "eval_return_mean": s.get("eval_return_mean", ""), "wall_time_s": s.get("wall_time_s", ""),
                     "run_dir": item["run_dir"].name})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["task"])
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(sweep / "runs.csv", buf.getvalue())


def run(args: argparse.Namespace) -> None:
    sweep = RESULTS / args.name
    proto = protocol_of(args)
    manifest = rep.load_manifest(sweep)
    if manifest is not None and not args.force_protocol:
        diff = rep.protocol_mismatch(manifest["protocol"], proto)
        if diff:
            raise SystemExit(f"sweep {args.name} was run with another protocol ({'; '.join(diff)}): use another "
                             "--name, or --force-protocol to mix them knowingly")
    checkpoint_every = args.checkpoint_every or min(proto["frames"], 500_000)
    todo = rep.plan(sweep, args.tasks, args.rewards, args.seeds, proto["frames"])
    counts = {k: sum(t["status"] == k for t in todo) for k in (rep.COMPLETE, rep.RESUME, rep.NEW, rep.RUNNING)}
    print(f"sweep {sweep}: {len(todo)} runs: " + ", ".join(f"{v} {k}" for k, v in counts.items()), flush=True)
    for t in todo:
        print(f"  {t['status']:9s} {t['run_dir'].name}: {t['why']}")
    launch = [t for t in todo if t["status"] in (rep.RESUME, rep.NEW)]
    if args.dry_run:
        if launch:
            print("first command:", " ".join(train_command(proto, launch[0]["task"], launch[0]["reward"],
                                                           launch[0]["seed"], launch[0]["run_dir"], checkpoint_every)))
        return

    inv = {"id": f"{os.getpid()}-{time.time_ns()}", "started": _now(), "jobs": args.jobs, "launched": len(launch),
           "hardware": rep.hardware(), "protocol": proto, "ended": "running"}

    grid = _update_manifest(sweep, lambda m: begin_invocation(m, args.name, proto, args.tasks, args.rewards,
                                                              args.seeds, inv))["grid"]
    t0 = time.perf_counter()

    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, on_term)
    # Ctrl-C even where the shell started the benchmark with SIGINT ignored (a background job): the
    # runs then get the default disposition too, and stop at a checkpoint on the SIGINT forwarded to them
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    live: dict[str, tuple[subprocess.Popen, dict, object]] = {}
    failed: list[str] = []
    pending = list(launch)
    try:
        while pending or live:
            while pending and len(live) < args.jobs:
                item = pending.pop(0)
                run_dir = item["run_dir"]

                def start(item=item, run_dir=run_dir):
                    run_dir.mkdir(parents=True, exist_ok=True)
                    cmd = train_command(proto, item["task"], item["reward"], item["seed"], run_dir, checkpoint_every)
                    log = open(run_dir / "bench_stdout.log", "a")
                    log.write(f"\n# {_now()} {' '.join(cmd)}\n")
                    log.flush()
                    # own session: Ctrl-C reaches the benchmark only, which forwards one SIGINT per run
                    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                            env={**os.environ, "PYTHONPATH": os.pathsep.join(
                                                [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])})
                    (run_dir / rep.PID_FILE).write_text(json.dumps({"pid": proc.pid, "started": _now()}))
                    deadline = time.time() + 5  # hold the lock until the run shows as running (after exec)
                    while rep.owner_pid(run_dir) is None and proc.poll() is None and time.time() < deadline:
                        time.sleep(0.02)
                    return proc, log

                started = claim_run(sweep, item, proto["frames"], start)
                if started is None:
                    continue
                proc, log = started
                live[run_dir.name] = (proc, item, log)
                print(f"{_now()} start  {run_dir.name} ({item['status']}: {item['why']})", flush=True)
            time.sleep(args.poll)
            for name, (proc, item, log) in list(live.items()):
                if proc.poll() is None:
                    continue
                log.close()
                (item["run_dir"] / rep.PID_FILE).unlink(missing_ok=True)
                del live[name]
                s = rep.read_summary(item["run_dir"])
                if proc.returncode == 0 and s is not None:
                    print(f"{_now()} done   {name}: success {s['eval_success_rate']:.2f} at {s['total_timesteps']:,} "
                          f"frames, {s['wall_time_s']:.0f} s", flush=True)
                else:
                    failed.append(name)
                    print(f"{_now()} FAILED {name} (exit {proc.returncode}); see {item['run_dir'] / 'bench_stdout.log'}",
                          flush=True)
                _write_runs_csv(sweep, grid, proto["frames"])
        inv["ended"] = f"finished, {len(failed)} failed" if failed else "finished"
    except KeyboardInterrupt:
        print(f"\n{_now()} interrupted: stopping {len(live)} run(s) at a checkpoint ...", flush=True)
        for proc, _, _ in live.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc, item, log in live.values():
            try:
                proc.wait(timeout=args.stop_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
            (item["run_dir"] / rep.PID_FILE).unlink(missing_ok=True)
        inv["ended"] = "interrupted"
        print("re-run the same command to resume", flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
        inv["finished"], inv["wall_s"] = _now(), time.perf_counter() - t0
        grid = _update_manifest(sweep, lambda m: end_invocation(m, inv))["grid"]
        _write_runs_csv(sweep, grid, proto["frames"])
    if not args.no_report:
        try:
            _report([sweep], reps=args.reps)
        except (SystemExit, ImportError) as exc:
            print(f"no report: {exc}")
    if inv["ended"] == "interrupted":
        raise SystemExit(130)
    if failed:
        raise SystemExit(f"{len(failed)} run(s) failed: {', '.join(failed)}")


def run_sb3(args: argparse.Namespace) -> None:
    import time

    import torch
    from rlcore.config import compose_config
    from hydra.utils import instantiate
    from stable_baselines3 import PPO as SB3PPO
    from stable_baselines3.common.callbacks import BaseCallback

    import envs.minigrid as mg
    from rlcore.adapters.sb3 import SB3VecEnv
    from rlcore.adapters.sb3_policies import grid_policy_kwargs
    from rlcore.adapters.sb3_rewards import RewardModuleCallback
    from rlcore.evaluation import evaluate_policy

    def sb3_actions(model):
        """The SB3 model's actions as an action function of torch dict observations."""
        return lambda o: torch.as_tensor(model.predict({k: v.numpy() for k, v in o.items()})[0])

    class Evaluate(BaseCallback):
        """Evaluates every ``eval_every`` frames into ``rows``; ``seconds`` is the time spent evaluating."""

        def __init__(self, eval_env, eval_seed: int, rows: list[dict]):
            super().__init__()
            self.eval_env, self.eval_seed, self.rows = eval_env, eval_seed, rows
            self.next, self.seconds = args.eval_every, 0.0

        def _on_step(self) -> bool:
            if self.num_timesteps >= self.next:
                self.next += args.eval_every
                t0 = time.perf_counter()
                res = evaluate_policy(sb3_actions(self.model), self.eval_env, seed=self.eval_seed)
                self.seconds += time.perf_counter() - t0
                self.rows.append({"time/timesteps": self.num_timesteps, "eval/success_rate": res["success_rate"],
                                  "eval/return_mean": res["return_mean"]})
            return True

    torch.set_num_threads(1)
    for task in args.tasks:
        for reward in args.rewards:
            for seed in args.seeds:
                out = RESULTS / args.name / f"sb3-{task}-{reward}-seed{seed}"
                out.mkdir(parents=True, exist_ok=True)
                env = mg.make(task, num_envs=args.num_envs, seed=seed)
                venv = SB3VecEnv(env)
                model = SB3PPO("MultiInputPolicy", venv, n_steps=128, batch_size=args.num_envs * 128 // 8, n_epochs=4,
                               learning_rate=5e-4, ent_coef=0.01, clip_range_vf=0.2, seed=seed, device="cpu",
                               policy_kwargs=grid_policy_kwargs(encoder=args.encoder))
                callbacks = []
                if reward != "none":
                    cfg = compose_config("train", [f"reward={reward}"])
                    module = instantiate(cfg.reward.module, observation_space=env.single_observation_space,
                                         action_space=env.single_action_space, _convert_="all")
                    callbacks.append(RewardModuleCallback(module, ext_coef=2.0, int_coef=1.0))
                eval_env = mg.make(task, num_envs=64, seed=seed + 10_000)
                rows: list[dict] = []
                evaluator = Evaluate(eval_env, seed + 10_000, rows)
                t0 = time.perf_counter()
                model.learn(args.frames, callback=callbacks + [evaluator])
                wall = time.perf_counter() - t0 - evaluator.seconds
                final = evaluate_policy(sb3_actions(model), eval_env, seed=seed + 10_000)
                rows.append({"time/timesteps": model.num_timesteps, "eval/success_rate": final["success_rate"],
                             "eval/return_mean": final["return_mean"]})
                with open(out / "progress.csv", "w", newline="") as f:
                    writer = csv.DictWriter(f, fieldnames=["time/timesteps", "eval/success_rate", "eval/return_mean"])
                    writer.writeheader()
                    writer.writerows(rows)
                summary = {"env_id": task, "reward": f"sb3:{reward}", "seed": seed, "total_timesteps": model.num_timesteps,
                           "wall_time_s": wall, "fps": model.num_timesteps / wall,
                           "eval_success_rate": final["success_rate"], "eval_return_mean": final["return_mean"]}
                (out / "summary.json").write_text(json.dumps(summary, indent=2))
                print(json.dumps(summary), flush=True)
                if args.with_native:
                    _native_twin(args, task, reward, seed, summary)


def _native_twin(args: argparse.Namespace, task: str, reward: str, seed: int, sb3_summary: dict) -> None:
    """Train the native path on the same task, bonus, seed, budget and network right after the SB3
    run (same machine state), and print the fps ratio of the two."""
    from rlcore.config import compose_config

    from rlcore.train import train

    cfg = compose_config("train", [
            f"env.id={task}", f"reward={reward}", f"seed={seed}", f"total_timesteps={args.frames}",
            f"env.num_envs={args.num_envs}", f"algo.policy.encoder={args.encoder}",
            f"eval.every_timesteps={args.eval_every}", "eval.num_episodes=64", f"checkpoint.every_timesteps={args.frames}",
            "progress_bar=false", "num_threads=1", "logger=minimal", "diagnostics.visitation=false", "overwrite=true"])
    native = train(cfg, RESULTS / f"{args.name}_native_twin" / f"{task}-{reward}-seed{seed}")
    ratio = native["fps"] / sb3_summary["fps"]
    line = {"task": task, "reward": reward, "seed": seed, "native_fps": native["fps"], "sb3_fps": sb3_summary["fps"],
            "native_over_sb3": ratio, "native_success": native["eval_success_rate"],
            "sb3_success": sb3_summary["eval_success_rate"]}
    (RESULTS / args.name / f"fps_ratio-{task}-{reward}-seed{seed}.json").write_text(json.dumps(line, indent=2))
    print(json.dumps(line), flush=True)


def _report(sweeps: list[Path], reps: int = 2000) -> None:
    text = rep.markdown_report(sweeps, sweeps[0], reps=reps)
    (sweeps[0] / "report.md").write_text(text)
    print(text)
    print(f"report: {sweeps[0] / 'report.md'}")


def report(args: argparse.Namespace) -> None:
    """Tables and plots over every run, finished or not, of the sweeps named by ``--name``."""
    _report([RESULTS / n for n in args.name], reps=args.reps)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    r = sub.add_parser("run", help="train the grid's runs that are not complete (resumable)")
    r.add_argument("--name", required=True)
    r.add_argument("--tasks", nargs="+", required=True)
    r.add_argument("--rewards", nargs="+", default=["none", "e3b", "rnd", "e3b_x_rnd"])
    r.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    r.add_argument("--experiment", default=None, help="configs/experiment/<name>.yaml for every run")
    r.add_argument("--frames", type=int, default=None, help="default: the experiment's total_timesteps, else 2M")
    r.add_argument("--eval-every", type=int, default=None, help="default: the experiment's, else 250k")
    r.add_argument("--eval-episodes", type=int, default=64)
    r.add_argument("--checkpoint-every", type=int, default=None, help="default: min(frames, 500k)")
    r.add_argument("--jobs", type=int, default=2)
    r.add_argument("--bonus-overrides", nargs="*", default=[], help="Hydra overrides for the runs with a bonus only")
    r.add_argument("--dry-run", action="store_true", help="print what the command would skip, resume and start")
    r.add_argument("--force-protocol", action="store_true", help="allow a protocol other than the sweep's")
    r.add_argument("--no-report", action="store_true")
    r.add_argument("--reps", type=int, default=2000, help="bootstrap resamples of the report")
    r.add_argument("--poll", type=float, default=2.0, help=argparse.SUPPRESS)
    r.add_argument("--stop-timeout", type=float, default=300.0, help=argparse.SUPPRESS)
    r.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run")
    b = sub.add_parser("sb3")
    b.add_argument("--name", required=True)
    b.add_argument("--tasks", nargs="+", required=True)
    b.add_argument("--rewards", nargs="+", default=["e3b"])
    b.add_argument("--seeds", type=int, nargs="+", default=[0])
    b.add_argument("--frames", type=int, default=2_000_000)
    b.add_argument("--eval-every", type=int, default=250_000)
    b.add_argument("--num-envs", type=int, default=256, help="as native env.num_envs")
    b.add_argument("--encoder", choices=["mlp", "minigrid"], default="mlp", help="as native algo.policy.encoder")
    b.add_argument("--with-native", action="store_true",
                   help="right after each SB3 run, train the native path on the same settings and report the fps ratio")
    q = sub.add_parser("report", help="tables and plots over the runs there are (partial sweeps too)")
    q.add_argument("--name", required=True, nargs="+", help="one or more sweeps, reported together")
    q.add_argument("--reps", type=int, default=2000, help="bootstrap resamples")
    args = p.parse_args()
    {"run": run, "sb3": run_sb3, "report": report}[args.what](args)


if __name__ == "__main__":
    main()
