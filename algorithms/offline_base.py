"""What every value-based offline learner shares: the fit loop, acting, save/load and the app hooks.

A subclass (IQL, TD3+BC, CQL) sets ``config_cls`` and ``checkpoint_format`` and implements

* ``build()``: create its networks and optimizers, registered in ``self.nets`` and ``self.optimizers``
  (dicts of name -> module / optimizer); everything in them is saved and restored;
* ``update(batch) -> dict[str, Tensor]``: one gradient step on a minibatch (a
  :class:`~rlcore.batch.TransitionBatch` ``[B]`` with continuous actions already in ``[-1, 1]``);
  entries named ``loss/*`` are checked for NaN/Inf after every step (one host sync per step, as BC);
  an entry may be left out of some steps (a delayed actor update): its logged value is the mean over
  the steps that returned it;
* ``policy_action(obs, deterministic, generator)``: actions ``[N]`` or ``[N, A]`` in the learner's
  action space (``[-1, 1]`` for Box; the base maps them to the env's bounds).

The fit loop draws minibatches on the learner's device from a :class:`~rlcore.data.Sampler`
(``uniform`` by default; ``rlcore.data.make_sampler`` gives the trajectory-weighted ones of Hong et
al. 2023), so reweighting a dataset changes no loss. ``prepare(dataset)`` runs once per ``fit``
before the first step (for statistics such as TD3+BC's observation normalisation; state kept in
``self.nets`` buffers so it is saved).
"""

from __future__ import annotations

import abc
import dataclasses
import time
from dataclasses import asdict
from typing import Any, Optional

import gymnasium as gym
import torch
from torch import nn

from algorithms.offline_nets import ActionScaler, OfflineNetConfig
from rlcore.batch import TransitionBatch
from rlcore.callbacks import CallbackLike, as_callback
from rlcore.checkpoint import CheckpointError, load_checkpoint
from rlcore.data import Sampler, TrajectoryDataset, UniformSampler, check_dataset_spaces
from rlcore.learner import Learner
from rlcore.spaces import space_from_dict, space_to_dict
from rlcore.tensors import Obs


class OfflineLearner(Learner):
    """Base of the offline value-based learners; see the module docstring."""

    offline = True
    config_cls: type = object
    name: str = "offline"

    def __init__(self, env: Any, config: Any = None, policy_kwargs: Optional[dict[str, Any]] = None, seed: int = 0,
                 **overrides: Any) -> None:
        self.config = dataclasses.replace(config, **overrides) if config is not None else self.config_cls(**overrides)
        self.config.validate()
        self.policy_kwargs = dict(policy_kwargs or {})
        self.net_config = OfflineNetConfig(**self.policy_kwargs)
        self.net_config.validate()
        self.env = env
        self.device = torch.device(env.device)
        self.seed = int(seed)
        self.observation_space = env.single_observation_space
        self.action_space = env.single_action_space
        self.discrete = isinstance(self.action_space, gym.spaces.Discrete)
        if not self.discrete and not isinstance(self.action_space, gym.spaces.Box):
            raise ValueError(f"{type(self).__name__} supports Discrete and Box action spaces, got {self.action_space}")
        self.nets: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.scaler = None if self.discrete else ActionScaler(self.action_space).to(self.device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.build()
        for net in self.nets.values():
            net.to(self.device)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(self.seed)
        self.num_timesteps = 0

    # ------------------------------------------------------------------------- the subclass's part
    @abc.abstractmethod
    def build(self) -> None:
        """Create ``self.nets`` and ``self.optimizers``."""

    @abc.abstractmethod
    def update(self, batch: TransitionBatch) -> dict[str, torch.Tensor]:
        """One gradient step; returns metrics (``loss/*`` entries are checked for NaN/Inf)."""

    @abc.abstractmethod
    def policy_action(self, obs: Obs, deterministic: bool, generator: Optional[torch.Generator]) -> torch.Tensor:
        """Actions in the learner's action space (``[-1, 1]`` for Box)."""

    def prepare(self, dataset: TrajectoryDataset) -> None:
        """Called once per ``fit`` before the first step (default: nothing)."""

    # ---------------------------------------------------------------------------------- config
    @classmethod
    def from_config(cls, env: Any, algo_cfg: dict[str, Any], reward_module: Any = None, seed: int = 0) -> "OfflineLearner":
        """Build from the ``algo`` config group (``params`` -> ``config_cls``, ``policy`` -> :class:`OfflineNetConfig`)."""
        if reward_module is not None:
            raise ValueError(f"algo={cls.name} learns from the dataset's rewards and takes no reward module: use "
                             f"reward=none (relabel the dataset with dataset.relabel(module) instead)")
        params = dict(algo_cfg.get("params") or {})
        known = {f.name for f in dataclasses.fields(cls.config_cls)}
        for key in params:
            if key not in known:
                raise ValueError(f"algo.params.{key} is not a {cls.name} hyperparameter; known: {', '.join(sorted(known))}")
        policy = dict(algo_cfg.get("policy") or {})
        allowed = {f.name for f in dataclasses.fields(OfflineNetConfig)}
        for key in policy:
            if key not in allowed:
                raise ValueError(f"algo.policy.{key} is not a network option of {cls.name}; known: {', '.join(sorted(allowed))}")
        policy = {k: (list(v) if k == "hidden_sizes" else str(v)) for k, v in policy.items()}
        return cls(env, config=cls.config_cls(**params), policy_kwargs=policy, seed=seed)

    # ---------------------------------------------------------------------------------- fit
    def _minibatch(self, data: TrajectoryDataset, index: torch.Tensor) -> TransitionBatch:
        batch = data.transitions(index)
        if self.scaler is not None:
            batch.action = self.scaler.to_unit(batch.action)
        return batch

    def fit(self, dataset: TrajectoryDataset, n_steps: int, callback: CallbackLike = None, reset_num_timesteps: bool = True,
            progress_bar: bool = False, sampler: Optional[Sampler] = None) -> "OfflineLearner":
        """Train until ``num_timesteps >= n_steps`` gradient steps on ``dataset``, minibatches of
        ``config.batch_size`` drawn by ``sampler`` (uniform by default); ``callback`` gets
        ``on_rollout_end(metrics)`` every ``config.log_every`` steps (returning False stops)."""
        n_steps = int(n_steps)
        if n_steps <= 0:
            raise ValueError(f"n_steps must be positive, got {n_steps}")
        if len(dataset) == 0:
            raise ValueError(f"{type(self).__name__}.fit: the dataset is empty")
        check_dataset_spaces(dataset, self.observation_space, self.action_space,
                             source=f"dataset {dataset.metadata.get('path', '')}".strip())
        data = dataset.to(self.device) if dataset.device != self.device else dataset
        if reset_num_timesteps:
            self.num_timesteps = 0
        if sampler is None:
            sampler = UniformSampler(len(data), self.device)
        elif getattr(sampler, "device", self.device) != self.device:
            raise ValueError(f"{type(self).__name__}.fit: the sampler draws on {sampler.device}, "
                             f"the learner runs on {self.device}")
        self.prepare(data)
        cfg = self.config
        cb = as_callback(callback)
        cb.init_callback(self)
        cb.on_training_start()
        bar = None
        if progress_bar:
            from tqdm.auto import tqdm
            bar = tqdm(total=n_steps, initial=self.num_timesteps, unit="grad step", dynamic_ncols=True)
        try:
            while self.num_timesteps < n_steps:
                t0, start = time.perf_counter(), self.num_timesteps
                sums: dict[str, torch.Tensor] = {}
                counts: dict[str, int] = {}
                chunk = min(int(cfg.log_every), n_steps - self.num_timesteps)
                for _ in range(chunk):
                    parts = self.update(self._minibatch(data, sampler.sample(int(cfg.batch_size), self.generator)))
                    losses = {k: v for k, v in parts.items() if k.startswith("loss/")}
                    if losses and not bool(torch.isfinite(torch.stack([v.detach().float() for v in losses.values()])).all()):
                        self.fail_non_finite(losses)
                    self.num_timesteps += 1
                    for k, v in parts.items():
                        sums[k] = sums.get(k, 0.0) + v.detach().float()
                        counts[k] = counts.get(k, 0) + 1
                # a mean over the steps that reported the entry (TD3+BC's actor loss comes every 2nd step)
                metrics = {k: float(v) / counts[k] for k, v in sums.items()}
                metrics["time/gradient_steps"] = self.num_timesteps
                metrics["time/steps_per_s"] = (self.num_timesteps - start) / max(time.perf_counter() - t0, 1e-9)
                if bar is not None:
                    bar.update(self.num_timesteps - start)
                if not cb.on_rollout_end(metrics):
                    break
        finally:
            if bar is not None:
                bar.close()
        cb.on_training_end()
        return self

    # ------------------------------------------------------------------------------ acting
    @torch.no_grad()
    def act(self, obs: Obs, deterministic: bool = False, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Env actions for ``obs: [N, ...]``."""
        action = self.policy_action(obs, deterministic, self.generator if generator is None else generator)
        return action if self.scaler is None else self.scaler.to_env(action)

    # --------------------------------------------------------------------------- save/load
    def state_dict(self) -> dict[str, Any]:
        return {
            "format": self.checkpoint_format,
            "config": asdict(self.config),
            "policy_kwargs": self.policy_kwargs,
            "seed": self.seed,
            "observation_space": space_to_dict(self.observation_space),
            "action_space": space_to_dict(self.action_space),
            "nets": {k: v.state_dict() for k, v in self.nets.items()},
            "optimizers": {k: v.state_dict() for k, v in self.optimizers.items()},
            "generator": self.generator.get_state(),
            "num_timesteps": self.num_timesteps,
            "env_id": getattr(self.env, "env_id", ""),
        }

    def load_state_dict(self, payload: dict[str, Any], source: str = "checkpoint") -> None:
        self.check_saved_spaces(payload, source)
        try:
            if set(payload["nets"]) != set(self.nets) or set(payload["optimizers"]) != set(self.optimizers):
                raise KeyError(f"networks {sorted(payload['nets'])}, expected {sorted(self.nets)}")
            for k, net in self.nets.items():
                net.load_state_dict(payload["nets"][k])
            for k, opt in self.optimizers.items():
                opt.load_state_dict(payload["optimizers"][k])
            self.generator.set_state(payload["generator"].to("cpu") if self.device.type == "cpu" else payload["generator"])
            self.num_timesteps = int(payload["num_timesteps"])
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise CheckpointError(f"{source}: does not fit this learner: {exc}") from exc

    @classmethod
    def load(cls, path: Any, env: Any = None, device: str | torch.device = "cpu", **kwargs: Any) -> "OfflineLearner":
        """Load a saved learner; ``env`` (or only the saved spaces) gives its spaces."""
        payload = load_checkpoint(path, cls.checkpoint_format, map_location=device)
        if env is None:
            env = SpacesOnly(space_from_dict(payload["observation_space"]), space_from_dict(payload["action_space"]),
                             torch.device(device))
        try:
            model = cls(env, config=cls.config_cls(**payload["config"]), policy_kwargs=payload["policy_kwargs"],
                        seed=payload["seed"])
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{path}: config does not fit {cls.__name__}: {exc}") from exc
        model.load_state_dict(payload, source=str(path))
        return model


@dataclasses.dataclass
class SpacesOnly:
    """Spaces and device only: what an offline learner needs from an env to be built for ``predict``."""

    single_observation_space: Any
    single_action_space: Any
    device: torch.device
    env_id: str = ""
