"""Behaviour cloning: supervised learning of the demonstrator's actions from a dataset.

Follows Pomerleau 1991 ("Efficient Training of Artificial Neural Networks for Autonomous
Navigation") in its modern form, the maximum-likelihood objective as in the ``imitation`` library's
BC: minimise ``-log pi(a|s) - ent_coef * H(pi(.|s)) + l2_coef * ||theta||^2`` over minibatches of
``(s, a)`` drawn from a :class:`~rlcore.data.TrajectoryDataset`.

* Discrete actions: a Categorical policy (the loss is the cross-entropy with the demonstrator's action).
* Box actions: a diagonal Gaussian with a learned state-independent log-std (the loss is the
  Gaussian negative log-likelihood of the demonstrator's action).

The policy network is the native PPO's actor (:class:`~algorithms.policies.ActorCritic`, the same
encoders); its critic is built but never trained or used. BC is an offline
:class:`~rlcore.learner.Learner`: ``fit(dataset, n_steps)`` counts gradient steps. Rewards in the
dataset are ignored. Deviation from the paper: no data augmentation.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import asdict, dataclass
from typing import Any, Optional

import torch
from torch import nn

from algorithms.policies import ActorCritic, learner_args_from_config
from rlcore.callbacks import CallbackLike, as_callback
from rlcore.checkpoint import CheckpointError, load_checkpoint
from rlcore.data import Sampler, TrajectoryDataset, UniformSampler, check_dataset_spaces
from rlcore.learner import Learner
from rlcore.spaces import space_from_dict, space_to_dict
from rlcore.tensors import Obs

CHECKPOINT_FORMAT = "rlreward.bc/1"


@dataclass
class BCConfig:
    """Hyperparameters of behaviour cloning."""

    batch_size: int = 256          # transitions per gradient step, drawn uniformly with replacement
    learning_rate: float = 1e-3    # Adam
    ent_coef: float = 1e-3         # entropy bonus weight (imitation's default)
    l2_coef: float = 0.0           # weight decay on all policy parameters
    max_grad_norm: float = 1.0
    log_every: int = 500           # gradient steps between logged iterations (callbacks' on_rollout_end)

    def validate(self) -> None:
        for name in ("batch_size", "log_every"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"algo.params.{name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("learning_rate", "max_grad_norm"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"algo.params.{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("ent_coef", "l2_coef"):
            if not float(getattr(self, name)) >= 0:
                raise ValueError(f"algo.params.{name} must be >= 0, got {getattr(self, name)!r}")


class BC(Learner):
    """Behaviour cloning with the SB3-shaped surface (``predict``, ``save``, ``load``) and ``fit``.

    Args:
        env: a batched env (only its spaces and device are used; BC never steps it).
        config: :class:`BCConfig` (or keyword overrides through ``**overrides``).
        policy_kwargs: passed to :class:`~algorithms.policies.ActorCritic` (``encoder``,
            ``hidden_sizes``, ``activation``, ``log_std_init``).
        seed: seeds network initialisation and minibatch draws.
    """

    offline = True
    checkpoint_format = CHECKPOINT_FORMAT

    def __init__(self, env: Any, config: Optional[BCConfig] = None, policy_kwargs: Optional[dict[str, Any]] = None,
                 seed: int = 0, **overrides: Any) -> None:
        self.config = dataclasses.replace(config, **overrides) if config is not None else BCConfig(**overrides)
        self.config.validate()
        self.env = env
        self.device = torch.device(env.device)
        self.seed = int(seed)
        self.observation_space = env.single_observation_space
        self.action_space = env.single_action_space
        self.policy_kwargs = dict(policy_kwargs or {})
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.policy = ActorCritic(self.observation_space, self.action_space, **self.policy_kwargs).to(self.device)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=self.config.learning_rate)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(self.seed)
        self.num_timesteps = 0

    @classmethod
    def from_config(cls, env: Any, algo_cfg: dict[str, Any], reward_module: Any = None, seed: int = 0) -> "BC":
        """Build from the ``algo`` config group (``params`` -> :class:`BCConfig`, ``policy`` -> policy kwargs)."""
        if reward_module is not None:
            raise ValueError("algo=bc learns from the dataset's actions only and takes no reward module: use reward=none")
        config, policy_kwargs = learner_args_from_config(algo_cfg, BCConfig, "BC")
        return cls(env, config=config, policy_kwargs=policy_kwargs, seed=seed)

    # ---------------------------------------------------------------------------------- fit
    def loss(self, obs: Obs, actions: torch.Tensor) -> dict[str, torch.Tensor]:
        """The BC loss and its parts on one minibatch (``obs: [B, ...]``, ``actions: [B]`` or ``[B, A]``)."""
        cfg = self.config
        dist = self.policy.action_distribution(obs)
        nll = -self.policy.log_prob_of(dist, actions).mean()
        entropy = dist.entropy()
        entropy = (entropy if self.policy.discrete else entropy.sum(-1)).mean()
        l2 = sum(p.pow(2).sum() for p in self.policy.parameters()) if cfg.l2_coef else torch.zeros((), device=self.device)
        out = {"loss/bc": nll - cfg.ent_coef * entropy + cfg.l2_coef * l2, "loss/neg_log_likelihood": nll,
               "loss/entropy": entropy}
        if self.policy.discrete:
            out["train/accuracy"] = (dist.logits.argmax(-1) == actions).float().mean()
        return out

    def fit(self, dataset: TrajectoryDataset, n_steps: int, callback: CallbackLike = None, reset_num_timesteps: bool = True,
            progress_bar: bool = False, sampler: Optional[Sampler] = None) -> "BC":
        """Train until ``num_timesteps >= n_steps`` gradient steps; ``callback`` gets
        ``on_rollout_end(metrics)`` every ``log_every`` steps (returning False stops). ``sampler``
        draws the minibatches (uniform with replacement by default; e.g.
        ``rlcore.data.make_sampler(dataset, "aw")`` for advantage-weighted cloning).

        Minibatches are drawn on the learner's device; the host syncs are one per gradient step for
        the non-finite-loss guard (as PPO's per minibatch) and one per ``log_every`` steps for the
        metrics."""
        n_steps = int(n_steps)
        if n_steps <= 0:
            raise ValueError(f"n_steps must be positive, got {n_steps}")
        if len(dataset) == 0:
            raise ValueError("BC.fit: the dataset is empty")
        check_dataset_spaces(dataset, self.observation_space, self.action_space,
                             source=f"dataset {dataset.metadata.get('path', '')}".strip())
        data = dataset.to(self.device) if dataset.device != self.device else dataset
        if reset_num_timesteps:
            self.num_timesteps = 0
        if sampler is None:
            sampler = UniformSampler(len(data), self.device)
        elif getattr(sampler, "device", self.device) != self.device:
            raise ValueError(f"BC.fit: the sampler draws on {sampler.device}, the learner runs on {self.device}")
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
                chunk = min(cfg.log_every, n_steps - self.num_timesteps)
                for _ in range(chunk):
                    batch = data.transitions(sampler.sample(cfg.batch_size, self.generator))
                    parts = self.loss(batch.obs, batch.action)
                    if not torch.isfinite(parts["loss/bc"]):
                        self.fail_non_finite({"bc": parts["loss/bc"]})
                    self.optimizer.zero_grad(set_to_none=True)
                    parts["loss/bc"].backward()
                    nn.utils.clip_grad_norm_(self.policy.parameters(), cfg.max_grad_norm)
                    self.optimizer.step()
                    self.num_timesteps += 1
                    for k, v in parts.items():
                        sums[k] = sums.get(k, 0.0) + v.detach()
                metrics = {k: float(v) / chunk for k, v in sums.items()}
                elapsed = time.perf_counter() - t0
                metrics["time/gradient_steps"] = self.num_timesteps
                metrics["time/steps_per_s"] = (self.num_timesteps - start) / max(elapsed, 1e-9)
                metrics["train/learning_rate"] = self.optimizer.param_groups[0]["lr"]
                if bar is not None:
                    bar.update(self.num_timesteps - start)
                    bar.set_postfix(loss=f"{metrics['loss/bc']:.3f}")
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
        """Env actions for ``obs: [N, ...]``: the mode (``deterministic``) or a sample of the policy."""
        actions, _, _ = self.policy.act(obs, deterministic=deterministic,
                                        generator=self.generator if generator is None else generator)
        return self.policy.env_actions(actions)


    # --------------------------------------------------------------------------- save/load
    def state_dict(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "config": asdict(self.config),
            "policy_kwargs": self.policy_kwargs,
            "seed": self.seed,
            "observation_space": space_to_dict(self.observation_space),
            "action_space": space_to_dict(self.action_space),
            "policy": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "num_timesteps": self.num_timesteps,
            "env_id": getattr(self.env, "env_id", ""),
        }

    def load_state_dict(self, payload: dict[str, Any], source: str = "checkpoint") -> None:
        self.check_saved_spaces(payload, source)
        try:
            self.policy.load_state_dict(payload["policy"])
            self.optimizer.load_state_dict(payload["optimizer"])
            self.generator.set_state(payload["generator"].to("cpu") if self.device.type == "cpu" else payload["generator"])
            self.num_timesteps = int(payload["num_timesteps"])
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise CheckpointError(f"{source}: does not fit this learner: {exc}") from exc

    @classmethod
    def load(cls, path: Any, env: Any = None, device: str | torch.device = "cpu", **kwargs: Any) -> "BC":
        """Load a saved BC policy; ``env`` (or only the saved spaces) gives its spaces."""
        payload = load_checkpoint(path, CHECKPOINT_FORMAT, map_location=device)
        if env is None:
            env = _Spaces(space_from_dict(payload["observation_space"]), space_from_dict(payload["action_space"]),
                          torch.device(device))
        try:
            model = cls(env, config=BCConfig(**payload["config"]), policy_kwargs=payload["policy_kwargs"],
                        seed=payload["seed"])
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{path}: config does not fit BC: {exc}") from exc
        model.load_state_dict(payload, source=str(path))
        return model


@dataclass
class _Spaces:
    """Spaces and device only: what BC needs from an env to be built for ``predict``."""

    single_observation_space: Any
    single_action_space: Any
    device: torch.device
    env_id: str = ""

