"""The training app: ``python -m rlcore.train [Hydra overrides]``.

Example::

    python -m rlcore.train env.id=MiniGrid-DoorKey-8x8-v0 algo=ppo reward=none seed=0 total_timesteps=1000000
    python -m rlcore.train -m seed=0,1,2 hydra/launcher=joblib          # local multirun
    python -m rlcore.train env.id=MiniGrid-DoorKey-8x8-v0 resume=true   # continue a stopped run
    python -m rlcore.train algo=bc dataset.path=demos.safetensors env.id=MiniGrid-DoorKey-5x5-v0  # offline

The app drives any :class:`~rlcore.learner.Learner` through its contract only: online learners
``learn`` for ``total_timesteps`` env frames, offline ones ``fit`` the dataset at ``dataset.path``
for ``fit_steps`` gradient steps; run dir, logging, checkpoints, resume, evaluation and
``summary.json`` are the same for both (schedules: ``*.every_timesteps`` for online learners,
``*.every_fit_steps`` for offline ones).

Each run directory (``runs/<run_name>`` by default) holds ``config.yaml`` (resolved), TensorBoard
events under ``tb/``, ``progress.csv``, checkpoints under ``checkpoints/``, ``learning_curve.png``
and ``summary.json``.

Other code (benchmarks, the LLM reward loop) calls :func:`train` directly: config in, summary out.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Optional

import torch
from omegaconf import DictConfig, OmegaConf

from rlcore.atomic import atomic_write_text
from rlcore.callbacks import Callback
from rlcore.config import ConfigError, check_known_keys, register_configs
from rlcore.diagnostics import VisitationTracker, supports_visitation
from rlcore.atomic import remove_stale_temp_files
from rlcore.checkpoint import (CheckpointError, latest_checkpoint, latest_valid_checkpoint, load_checkpoint,
                               numbered_checkpoints, save_checkpoint)
from rlcore.evaluation import evaluate_policy
from rlcore.learner import Learner, checkpoint_on_non_finite
from rlcore.logger import RunLogger, plot_learning_curve
from rlcore.make_env import make_env

register_configs()  # the schemas and the ${sanitize:} resolver, for the CLI and for composed configs

EVAL_COLUMNS = ["eval/return_mean", "eval/success_rate", "eval/length_mean"]


def _validate(cfg: DictConfig) -> None:
    for key in ("total_timesteps", "fit_steps", "env.num_envs", "eval.num_episodes", "checkpoint.keep_last"):
        value = OmegaConf.select(cfg, key)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"{key} must be a positive integer, got {value!r}")
    threads = cfg.get("num_threads")
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
        raise ConfigError(f"num_threads must be null (torch's default) or an integer >= 1, got {threads!r}")
    for key in ("eval.every_timesteps", "checkpoint.every_timesteps", "eval.every_fit_steps", "checkpoint.every_fit_steps"):
        value = OmegaConf.select(cfg, key)
        if not isinstance(value, int) or value < 0:
            raise ConfigError(f"{key} must be a non-negative integer, got {value!r}")


def resolve_device(name: str) -> torch.device:
    """The torch device for a config value: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``; :class:`ConfigError`
    naming ``device`` otherwise."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"device={name!r} is not a valid torch device") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r} requested but CUDA is not available (use device=cpu or device=auto)")
    return device


def _build_reward(reward_cfg: DictConfig, env) -> Any:
    module_cfg = reward_cfg.get("module")
    if module_cfg is None:
        return None
    from hydra.utils import instantiate

    return instantiate(module_cfg, observation_space=env.single_observation_space,
                       action_space=env.single_action_space, _convert_="all")


def learner_class(algo_cfg: DictConfig) -> type[Learner]:
    """The :class:`~rlcore.learner.Learner` class named by ``algo.class_path``; :class:`ConfigError` otherwise."""
    from hydra.utils import get_class

    try:
        cls = get_class(algo_cfg.class_path)
    except Exception as exc:
        raise ConfigError(f"algo.class_path={algo_cfg.class_path!r} cannot be imported: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Learner)):
        raise ConfigError(f"algo.class_path={algo_cfg.class_path!r} is not a rlcore.learner.Learner")
    return cls


def _load_dataset(cfg: DictConfig, env, device: torch.device):
    from rlcore.data import DatasetError, load_dataset

    path = OmegaConf.select(cfg, "dataset.path")
    if not path:
        raise ConfigError(f"algo={cfg.algo.name} is an offline learner: set dataset.path=<file made by rlcore.collect>")
    dataset = load_dataset(path, device=device)
    dataset.metadata["path"] = str(path)
    if dataset.num_complete_episodes == 0:
        raise DatasetError(f"dataset {path} holds no complete episode: all {dataset.num_episodes} were cut by the "
                           f"collection budget (collect more steps, or n_episodes=)")
    saved_env = dataset.metadata.get("env_id")
    if saved_env and saved_env != str(cfg.env.id):
        raise DatasetError(f"dataset {path} was collected on env.id={saved_env!r}, the config asks for {cfg.env.id!r}")
    return dataset


def _normalized_score(run: "_Run", return_mean: float) -> Optional[float]:
    """D4RL's ``100 * (R - R_random) / (R_expert - R_random)`` of the final evaluation, for an offline
    learner whose dataset's metadata holds both references (``rlcore.data.make_mixed`` stores them)."""
    from rlcore.data import REF_EXPERT, REF_RANDOM, normalized_score

    if not run.offline or any(run.dataset.metadata.get(k) is None for k in (REF_RANDOM, REF_EXPERT)):
        return None
    return normalized_score([return_mean], run.dataset.metadata)


def _make_sampler(cfg: DictConfig, dataset, seed: int):
    """The minibatch sampler of ``dataset.sampler`` (``rlcore.data.trajectory_weights``); ConfigError
    naming the ``dataset.*`` key for a bad setting."""
    from rlcore.data import check_sampler_args, make_sampler

    d = cfg.dataset
    try:
        check_sampler_args(str(d.sampler), d.alpha, d.top_k_percent, str(d.baseline), prefix="dataset.")
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    return make_sampler(dataset, str(d.sampler), float(d.alpha), top_k_percent=float(d.top_k_percent),
                        baseline=str(d.baseline), seed=seed)


class _TrainerCallback(Callback):
    """Logs every iteration, evaluates and checkpoints on their schedules."""

    def __init__(self, run: "_Run") -> None:
        super().__init__()
        self.run = run

    def on_rollout_end(self, metrics: dict[str, float]) -> bool:
        run, steps = self.run, self.model.num_timesteps
        if run.eval_every and steps >= run.next_eval:
            metrics.update({f"eval/{k}": v for k, v in run.evaluate().items() if k != "episodes"})
            run.next_eval = (steps // run.eval_every + 1) * run.eval_every
        run.logger.log(metrics, steps)
        if run.ckpt_every and steps >= run.next_ckpt:
            run.save_checkpoint()
            run.next_ckpt = (steps // run.ckpt_every + 1) * run.ckpt_every
        return True


class _Run:
    """State of one training run inside its run directory."""

    def __init__(self, cfg: DictConfig, run_dir: Path) -> None:
        self.cfg, self.run_dir = cfg, run_dir
        self.ckpt_dir = run_dir / "checkpoints"
        self.device = resolve_device(str(cfg.device))
        self.env = make_env(cfg.env, self.device, seed=int(cfg.seed))
        self.eval_env = make_env(cfg.env, self.device, seed=int(cfg.seed) + int(cfg.eval.seed_offset),
                                 num_envs=int(cfg.eval.num_episodes))
        algo_cls = learner_class(cfg.algo)
        self.offline = bool(algo_cls.offline)
        if self.offline and cfg.reward.get("module") is not None:
            raise ConfigError(f"algo={cfg.algo.name} is an offline learner and takes no reward module "
                              f"(reward={cfg.reward.name}): use reward=none")
        reward_module = _build_reward(cfg.reward, self.env)
        self.dataset = _load_dataset(cfg, self.env, self.device) if self.offline else None
        self.sampler = _make_sampler(cfg, self.dataset, int(cfg.seed)) if self.offline else None
        self.model: Learner = algo_cls.from_config(self.env, OmegaConf.to_container(cfg.algo, resolve=True, enum_to_str=True),
                                                   reward_module=reward_module, seed=int(cfg.seed))
        self.model.on_non_finite = checkpoint_on_non_finite(self.ckpt_dir / "ckpt_last_good_before_nan.pt")
        self.wall_time_before = 0.0
        self.resumed_from: Optional[str] = None
        self.budget = int(cfg.fit_steps) if self.offline else int(cfg.total_timesteps)
        unit_key = "every_fit_steps" if self.offline else "every_timesteps"
        self.eval_every = int(cfg.eval[unit_key])
        self.ckpt_every = int(cfg.checkpoint[unit_key])
        self.next_eval = self.eval_every
        self.next_ckpt = self.ckpt_every
        self.t_start = time.perf_counter()
        self.last_eval: dict[str, float] = {}
        self.visitation = None
        wanted = str(cfg.get("diagnostics", {}).get("visitation", "auto"))
        if wanted not in ("auto", "true", "false", "True", "False"):
            raise ConfigError(f"diagnostics.visitation must be auto, true or false, got {wanted!r}")
        if self.offline and wanted.lower() == "true":
            raise ConfigError(f"diagnostics.visitation=true needs an online learner; algo={cfg.algo.name} never steps the env")
        if not self.offline and (wanted.lower() == "true" or (wanted == "auto" and supports_visitation(self.env))):
            if not supports_visitation(self.env):
                raise ConfigError("diagnostics.visitation=true needs an env with agent_pos and grid state; "
                                  f"{cfg.env.id} has none")
            self.visitation = VisitationTracker(self.env)

    def restore(self, path: Path, payload: Optional[dict[str, Any]] = None) -> None:
        if payload is None:
            payload = load_checkpoint(path, expected_format=self.model.checkpoint_format, map_location=self.device)
        saved_env = payload.get("env_id")
        if saved_env and saved_env != str(self.cfg.env.id):
            raise CheckpointError(f"checkpoint {path} was trained on env.id={saved_env!r}, "
                                  f"the config asks for {self.cfg.env.id!r}")
        self.model.load_state_dict(payload, source=str(path))
        trainer = payload.get("trainer") or {}
        self.wall_time_before = float(trainer.get("wall_time_s", 0.0))
        self.resumed_from = str(path)
        if self.visitation is not None and trainer.get("visitation") is not None:
            self.visitation.load_state_dict(trainer["visitation"])
        steps = self.model.num_timesteps
        if self.eval_every:
            self.next_eval = (steps // self.eval_every + 1) * self.eval_every
        if self.ckpt_every:
            self.next_ckpt = (steps // self.ckpt_every + 1) * self.ckpt_every

    def wall_time(self) -> float:
        return self.wall_time_before + time.perf_counter() - self.t_start

    def save_checkpoint(self, final: bool = False) -> Path:
        payload = self.model.state_dict()
        payload["trainer"] = {"wall_time_s": self.wall_time(), "run_name": str(self.cfg.run_name),
                              "visitation": self.visitation.state_dict() if self.visitation is not None else None}
        path = save_checkpoint(self.ckpt_dir / f"ckpt_{self.model.num_timesteps}.pt", payload)
        for _, old in numbered_checkpoints(self.ckpt_dir)[: -int(self.cfg.checkpoint.keep_last)]:
            old.unlink()
        if final:
            save_checkpoint(self.run_dir / "final_model.pt", payload)
        return path

    def evaluate(self) -> dict[str, float]:
        deterministic = bool(self.cfg.eval.deterministic)
        model, gen = self.model, torch.Generator(device=self.device)
        gen.manual_seed(int(self.cfg.seed) + int(self.cfg.eval.seed_offset))

        def act(obs):
            return model.act(obs, deterministic=deterministic, generator=gen)

        self.last_eval = evaluate_policy(act, self.eval_env, seed=int(self.cfg.seed) + int(self.cfg.eval.seed_offset))
        return self.last_eval


def train(cfg: DictConfig, run_dir: str | os.PathLike) -> dict[str, Any]:
    """Run one training job described by ``cfg`` in ``run_dir``; returns the summary dict.

    Raises :class:`ConfigError` / ``ValueError`` / :class:`~rlcore.checkpoint.CheckpointError`
    naming the offending key or file before any training starts.
    """
    _validate(cfg)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    existing = latest_checkpoint(run_dir / "checkpoints")
    if existing is not None and not cfg.resume and not cfg.overwrite:
        raise ConfigError(
            f"run dir {run_dir} already holds checkpoints ({existing.name}); pass resume=true to continue "
            "that run, overwrite=true to start it over, or another run_name")
    if cfg.get("num_threads"):
        torch.set_num_threads(int(cfg.num_threads))
    run = _Run(cfg, run_dir)
    remove_stale_temp_files(run_dir)
    remove_stale_temp_files(run_dir / "checkpoints")
    if cfg.resume and existing is not None:
        found = latest_valid_checkpoint(run_dir / "checkpoints", run.model.checkpoint_format, map_location=run.device)
        if found is None:  # every checkpoint is bad: name the newest one and why
            load_checkpoint(existing, expected_format=run.model.checkpoint_format, map_location=run.device)
            raise CheckpointError(f"checkpoint {existing} cannot be resumed")
        run.restore(found[0], found[1])
    elif cfg.overwrite and existing is not None:
        for p in (run_dir / "checkpoints").glob("ckpt_*.pt"):
            p.unlink()
    atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))

    logger = RunLogger(
        run_dir,
        extra_columns=EVAL_COLUMNS,
        tensorboard=bool(cfg.logger.tensorboard),
        resume_step=run.model.num_timesteps if run.resumed_from else None,
    )
    run.logger = logger
    total = run.budget
    interrupted = False
    try:
        if run.model.num_timesteps < total:
            callbacks = ([run.visitation] if run.visitation is not None else []) + [_TrainerCallback(run)]
            common = dict(callback=callbacks, reset_num_timesteps=run.resumed_from is None, progress_bar=bool(cfg.progress_bar))
            if run.offline:
                run.model.fit(run.dataset, total, sampler=run.sampler, **common)
            else:
                run.model.learn(total, **common)
    except KeyboardInterrupt:
        interrupted = True
        run.save_checkpoint()
    finally:
        logger.close()
    if interrupted:
        raise KeyboardInterrupt(f"training interrupted at {run.model.num_timesteps} steps; checkpoint saved in {run.ckpt_dir}")

    final_eval = run.evaluate()
    run.save_checkpoint(final=True)
    wall = run.wall_time()
    curve = None
    if cfg.logger.plot:
        curve = plot_learning_curve(run_dir / "progress.csv", run_dir / "learning_curve.png",
                                    title=f"{cfg.env.id} · {cfg.algo.name} · reward={cfg.reward.name} · seed {cfg.seed}",
                                    x_label="gradient steps" if run.offline else "environment steps")
    heatmap = None
    if run.visitation is not None and cfg.logger.plot:
        heatmap = run.visitation.save_heatmap(run_dir / "visitation.png", title=f"{cfg.env.id}: state visitation")
    summary = {
        "env_id": str(cfg.env.id),
        "algo": str(cfg.algo.name),
        "reward": str(cfg.reward.name),
        "seed": int(cfg.seed),
        "device": str(run.device),
        "num_envs": int(cfg.env.num_envs),
        "total_timesteps": 0 if run.offline else int(run.model.num_timesteps),
        "gradient_steps": int(run.model.num_timesteps) if run.offline else None,
        "dataset": OmegaConf.select(cfg, "dataset.path") if run.offline else None,
        "sampler": ({k: OmegaConf.select(cfg, f"dataset.{k}") for k in ("sampler", "alpha", "top_k_percent", "baseline")}
                    if run.offline else None),
        "wall_time_s": wall,
        "fps": 0.0 if run.offline else run.model.num_timesteps / max(wall, 1e-9),
        "eval_return_mean": final_eval["return_mean"],
        "eval_return_std": final_eval["return_std"],
        "eval_success_rate": final_eval["success_rate"],
        "eval_length_mean": final_eval["length_mean"],
        "eval_episodes": final_eval["episodes"],
        "normalized_score": _normalized_score(run, final_eval["return_mean"]),
        "resumed_from": run.resumed_from,
        "run_dir": str(run_dir),
        "learning_curve": str(curve) if curve else None,
        "visitation_heatmap": str(heatmap) if heatmap else None,
        "final_model": str(run_dir / "final_model.pt"),
    }
    atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2))
    run.env.close()
    run.eval_env.close()
    return summary


def _hydra_main() -> None:
    import hydra
    from hydra.core.hydra_config import HydraConfig

    @hydra.main(version_base=None, config_path="../configs", config_name="train")
    def _main(cfg: DictConfig) -> float:
        run_dir = HydraConfig.get().runtime.output_dir
        check_known_keys(cfg)
        summary = train(cfg, run_dir)
        print(f"\nrun dir:        {summary['run_dir']}")
        print(f"summary:        {Path(summary['run_dir']) / 'summary.json'}")
        if summary["learning_curve"]:
            print(f"learning curve: {summary['learning_curve']}")
        done = (f"{summary['gradient_steps']} gradient steps" if summary["gradient_steps"] is not None
                else f"{summary['total_timesteps']} steps")
        print(f"eval success rate {summary['eval_success_rate']:.3f}, eval return {summary['eval_return_mean']:.3f}, "
              f"{done} in {summary['wall_time_s']:.1f}s ({summary['fps']:.0f} fps)")
        return summary["eval_success_rate"]

    _main()


def main() -> None:
    """Console entry point (``rl-train``)."""
    _hydra_main()


if __name__ == "__main__":
    main()
