"""The collection app: ``python -m rlcore.collect [Hydra overrides]`` records a dataset file.

Example::

    python -m rlcore.collect env.id=MiniGrid-DoorKey-5x5-v0 policy.path=runs/demo/final_model.pt \\
        n_episodes=200 out=datasets/doorkey5x5-ppo-200ep.safetensors

The policy checkpoint is loaded with the ``algo`` group's learner class (``algo=ppo`` by default;
its ``load(path, env=...)``); without ``policy.path`` the actions are uniformly random. The file is
written by :func:`rlcore.data.save_dataset` (safetensors + JSON metadata) and read back by
``python -m rlcore.train algo=bc dataset.path=<file>``. Other code calls :func:`collect_dataset`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

import rlcore.train  # noqa: F401 - registers the ${sanitize:} resolver used by the configs
from rlcore.checkpoint import CheckpointError
from rlcore.config import check_known_keys
from rlcore.data import collect, random_policy, save_dataset
from rlcore.make_env import make_env
from rlcore.train import ConfigError, learner_class, resolve_device


def collect_dataset(cfg: DictConfig) -> dict[str, Any]:
    """Collect the dataset ``cfg`` describes and write it to ``cfg.out``; returns a summary dict."""
    device = resolve_device(str(cfg.device))
    env = make_env(cfg.env, device, seed=int(cfg.seed))
    n_episodes, n_steps = cfg.get("n_episodes"), cfg.get("n_steps")
    if (n_episodes is None) == (n_steps is None):
        raise ConfigError("give exactly one of n_episodes=... or n_steps=... (set the other to null)")
    path = cfg.policy.get("path")
    if path:
        learner = learner_class(cfg.algo).load(str(path), env=env, device=device)
        saved_env = learner.state_dict().get("env_id")
        if saved_env and saved_env != str(cfg.env.id):
            raise CheckpointError(f"checkpoint {path} was trained on env.id={saved_env!r}, the config asks for {cfg.env.id!r}")
        policy: Any = learner
    else:
        generator = torch.Generator(device=device)
        generator.manual_seed(int(cfg.seed))
        policy = random_policy(env.single_action_space, env.num_envs, device, generator)
        policy.__name__ = "random"
    dataset = collect(env, policy, n_episodes=n_episodes, n_steps=n_steps, seed=int(cfg.seed),
                      deterministic=bool(cfg.policy.deterministic),
                      record_state=bool(cfg.record_state), progress_bar=bool(cfg.progress_bar),
                      metadata={"policy_path": str(path) if path else None,
                                "deterministic": bool(cfg.policy.deterministic)})
    out = save_dataset(dataset, Path(str(cfg.out)))
    env.close()
    summary = {"out": str(out), "transitions": len(dataset), "episodes": dataset.num_episodes,
               "return_mean": float(dataset.episode_return.mean()) if dataset.num_episodes else float("nan"),
               "length_mean": float(dataset.episode_length.float().mean()) if dataset.num_episodes else float("nan")}
    if dataset.episode_success is not None and dataset.num_episodes:
        summary["success_rate"] = float(dataset.episode_success.float().mean())
    return summary


def main() -> None:
    """Console entry point (``rl-collect``)."""
    import hydra

    @hydra.main(version_base=None, config_path="../configs", config_name="collect")
    def _main(cfg: DictConfig) -> None:
        check_known_keys(cfg)
        summary = collect_dataset(cfg)
        print(OmegaConf.to_yaml(OmegaConf.create(summary)))

    _main()


if __name__ == "__main__":
    main()
