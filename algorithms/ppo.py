"""Proximal Policy Optimization on batched, on-device environments.

Follows Schulman et al. 2017, "Proximal Policy Optimization Algorithms" (clipped surrogate
objective, GAE advantages, several epochs of minibatch updates per rollout) with the usual
implementation details: advantage normalisation per minibatch, clipped value loss, global
gradient-norm clipping, linear learning-rate annealing, orthogonal initialisation.

Two value streams, as in Burda et al. 2019 ("Exploration by Random Network Distillation"): an
extrinsic stream (discount ``gamma``, episodic) and, when an intrinsic reward module is given, an
intrinsic stream with its own discount ``gamma_int``; non-episodic by default (the intrinsic return
runs across episode ends), episodic when the reward module says ``episodic = True``. The policy
advantage is ``ext_coef * A_ext + int_coef * A_int``.

``single_value_stream=True`` instead fits one critic to the return of the summed reward
``ext_coef * r_ext + int_coef * r_int`` (one discount ``gamma``; the episode cuts of the extrinsic
stream, so an intrinsic return never runs across episode ends), as CleanRL-style single-stream
implementations do (RLeXplore's protocol); without an intrinsic module it scales the env's reward by
``ext_coef``. GAE is linear in rewards and values, so the policy advantage is the same linear
combination as with two episodic streams of one discount; what differs is the critic (one head fitted
to the scaled sum, one value clip in its units).

Deviations from the paper's Atari setup, stated: time-limit truncations bootstrap from the value of
the true final observation (the paper does not distinguish truncation); Gaussian actions are
clipped to the action bounds only when stepping the env (log-probabilities use the unclipped sample).

Everything — rollout storage, GAE, updates — stays on the env's device; the only host syncs are one
per iteration for logging and one per minibatch for the non-finite-loss guard.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import asdict, dataclass
from typing import Any, Optional

import torch
from torch import nn

from algorithms.policies import ActorCritic, learner_args_from_config
from rlcore.callbacks import CallbackLike, as_callback
from rlcore.checkpoint import CheckpointError, load_checkpoint
from rlcore.env import BatchedEnv
from rlcore.episodes import EpisodeTracker
from rlcore.learner import Learner, NonFiniteLossError
from rlcore.reward import RewardModule, RewardRouting, check_finite, route_reward, routing_of
from rlcore.rollout import RolloutStorage, compute_gae, module_needs_state, select_state, step_next_state
from rlcore.spaces import space_from_dict, space_to_dict
from rlcore.tensors import Obs, flatten_leading, obs_flatten_leading, obs_index

CHECKPOINT_FORMAT = "rlreward.ppo/1"

__all__ = ["PPO", "PPOConfig", "NonFiniteLossError", "CHECKPOINT_FORMAT"]


@dataclass
class PPOConfig:
    """Hyperparameters: the one source of PPO's defaults (``algo=ppo`` in the app reads them through
    :mod:`algorithms.schemas`; configs/algo/ppo.yaml carries no values of its own). They suit
    MiniGrid with 64-1024 envs."""

    n_steps: int = 128            # batched env steps per rollout (T)
    n_minibatches: int = 8        # minibatches per epoch; minibatch size = T * N / n_minibatches
    n_epochs: int = 4
    learning_rate: float = 5e-4
    anneal_lr: bool = True        # linear decay to 0 over total_timesteps
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    clip_range_vf: Optional[float] = 0.2  # None: unclipped value loss
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    normalize_advantage: bool = True
    target_kl: Optional[float] = None     # stop the epochs early when approx. KL exceeds it
    gamma_int: float = 0.99
    ext_coef: float = 2.0         # RND paper: extrinsic advantage weighted 2, intrinsic 1
    int_coef: float = 1.0
    #: one critic on the summed reward ``ext_coef * r_ext + int_coef * r_int`` (CleanRL/RLeXplore-style)
    #: instead of two value streams; with no intrinsic module it scales the env's reward by ``ext_coef``
    single_value_stream: bool = False
    adam_eps: float = 1e-5

    def validate(self) -> None:
        for name in ("n_steps", "n_minibatches", "n_epochs"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"algo.{name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("learning_rate", "clip_range", "max_grad_norm"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"algo.{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("gamma", "gae_lambda", "gamma_int"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise ValueError(f"algo.{name} must be in [0, 1], got {getattr(self, name)!r}")
        if self.single_value_stream and float(self.gamma_int) != float(self.gamma):
            raise ValueError(f"algo.single_value_stream=true has one discount, gamma={self.gamma!r}; "
                             f"algo.gamma_int={self.gamma_int!r} differs (set it equal to gamma)")


class PPO(Learner):
    """PPO with a stable-baselines3-shaped surface: ``learn``, ``predict``, ``save``, ``load``
    (an online :class:`~rlcore.learner.Learner`).

    Args:
        env: a :class:`~rlcore.env.BatchedEnv`; the learner runs on ``env.device``.
        config: :class:`PPOConfig` (or keyword overrides through ``**overrides``).
        policy_kwargs: passed to :class:`~algorithms.policies.ActorCritic` (``encoder``,
            ``hidden_sizes``, ``activation``, ``log_std_init``).
        reward_module: optional :class:`~rlcore.reward.RewardModule`, used by its ``routing``
            (:func:`~rlcore.reward.route_reward`): ``INTRINSIC`` feeds the intrinsic value stream,
            ``ADD`` is added to the env's reward, ``REPLACE`` replaces it. A module with
            ``needs_state = True`` gets ``state``/``next_state`` (``[T, N, ...]`` per key, only its
            ``state_keys`` if it sets them) in its batches; the learner then sets
            ``env.record_final_state``.
        seed: seeds network initialisation, action sampling and minibatch order (not torch's global RNG).
    """

    checkpoint_format = CHECKPOINT_FORMAT

    def __init__(
        self,
        env: BatchedEnv,
        config: Optional[PPOConfig] = None,
        policy_kwargs: Optional[dict[str, Any]] = None,
        reward_module: Optional[RewardModule] = None,
        seed: int = 0,
        **overrides: Any,
    ) -> None:
        self.config = dataclasses.replace(config, **overrides) if config is not None else PPOConfig(**overrides)
        self.config.validate()
        batch = self.config.n_steps * env.num_envs
        if self.config.n_minibatches > batch:
            raise ValueError(f"algo.params.n_minibatches={self.config.n_minibatches} exceeds the rollout's "
                             f"n_steps * num_envs = {batch} transitions: minibatches would be empty; use at most {batch}")
        self.env = env
        self.device = env.device
        self.seed = int(seed)
        self.reward_module = reward_module
        self.observation_space = env.single_observation_space
        self.action_space = env.single_action_space
        self.policy_kwargs = dict(policy_kwargs or {})
        self.reward_routing = routing_of(reward_module) if reward_module is not None else None
        intrinsic = self.reward_routing is RewardRouting.INTRINSIC
        self.num_value_streams = 2 if intrinsic and not self.config.single_value_stream else 1
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.policy = ActorCritic(
                self.observation_space, self.action_space, num_value_streams=self.num_value_streams, **self.policy_kwargs
            ).to(self.device)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=self.config.learning_rate, eps=self.config.adam_eps)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(self.seed)
        self.num_timesteps = 0
        self.iteration = 0
        self._last_obs: Optional[Obs] = None
        self.episodes = EpisodeTracker(env.num_envs, self.device)
        self.storage = RolloutStorage(
            self.config.n_steps, env.num_envs, self.observation_space, self.action_space, self.num_value_streams, self.device
        )
        if reward_module is not None:
            reward_module.to(self.device)
        #: the reward module asked for privileged state: rollouts then store state/next_state
        self.record_state = module_needs_state(reward_module)
        if self.record_state:
            env.record_final_state = True

    @classmethod
    def from_config(cls, env: BatchedEnv, algo_cfg: dict[str, Any], reward_module: Optional[RewardModule] = None,
                    seed: int = 0) -> "PPO":
        """Build from the ``algo`` config group (``params`` -> :class:`PPOConfig`, ``policy`` -> policy kwargs).

        Unknown keys raise ``ValueError`` naming ``algo.params.<key>`` / ``algo.policy.<key>``.
        """
        config, policy_kwargs = learner_args_from_config(algo_cfg, PPOConfig, "PPO")
        return cls(env, config=config, policy_kwargs=policy_kwargs, reward_module=reward_module, seed=seed)

    # ------------------------------------------------------------------------------- rollouts
    def _collect_rollout(self, callback) -> bool:
        """Fill the storage with ``n_steps`` batched steps. Returns False if a callback asked to stop."""
        policy, env, storage = self.policy, self.env, self.storage
        obs = self._last_obs
        keep_going = True
        record = self.record_state
        if record:  # privileged state for a module with needs_state (restricted to its state_keys)
            owner = f"reward module '{getattr(self.reward_module, 'name', type(self.reward_module).__name__)}'"
            wanted = getattr(self.reward_module, "state_keys", None)
            state = select_state(env.get_state(), wanted, owner)
            keys = list(state)
        for t in range(self.config.n_steps):
            with torch.no_grad():
                actions, log_probs, values = policy.act(obs, generator=self.generator)
            if record:
                storage.insert_state(t, state)  # copied before step, which may update the live state in place
            next_obs, reward, terminated, truncated, info = env.step(policy.env_actions(actions))
            storage.insert(t, obs, actions, log_probs, values, reward, info["final_obs"], terminated, truncated)
            if record:
                storage.insert_next_state(t, step_next_state(info, keys, owner))
                state = select_state(env.get_state(), keys, owner)
            self.episodes.update(reward, terminated, truncated, info.get("success"))
            obs = next_obs
            self.num_timesteps += env.num_envs
            if not callback.on_step():
                keep_going = False
        self._last_obs = obs
        return keep_going

    @torch.no_grad()
    def _values_of(self, obs: Obs, chunk: int = 16384) -> torch.Tensor:
        """Values float32[T, N, S] of a ``[T, N]`` observation batch, evaluated in chunks."""
        T, N = self.storage.n_steps, self.env.num_envs
        flat = obs_flatten_leading(obs, 2)
        out = torch.cat([self.policy.value(obs_index(flat, slice(i, i + chunk))) for i in range(0, T * N, chunk)])
        return out.reshape(T, N, self.num_value_streams)

    def _advantages(self) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Advantages float32[T, N] and per-stream returns float32[T, N, S] for the stored rollout."""
        cfg, s = self.config, self.storage
        batch = s.transitions()
        next_values = self._values_of(s.next_obs)
        done = s.terminated | s.truncated
        extra: dict[str, torch.Tensor] = {}
        rewards = s.rewards
        module = self.reward_module
        r_int: Optional[torch.Tensor] = None
        if module is not None:
            r_module = module.compute(batch).float()
            check_finite(r_module, getattr(module, "name", type(module).__name__))
            if self.reward_routing is RewardRouting.INTRINSIC:
                r_int = r_module
                extra["reward/intrinsic_mean"] = r_int.mean()
            else:
                extra["reward/module_mean"] = r_module.mean()
                rewards = route_reward(self.reward_routing, rewards, r_module)
                if self.reward_routing is RewardRouting.ADD:
                    extra["reward/total_mean"] = rewards.mean()
        if cfg.single_value_stream:
            rewards = cfg.ext_coef * rewards + (cfg.int_coef * r_int if r_int is not None else 0.0)
        adv, ret_ext = compute_gae(rewards, s.values[..., 0], next_values[..., 0], s.terminated, done, cfg.gamma, cfg.gae_lambda)
        returns = [ret_ext]
        if self.num_value_streams == 2:
            episodic = bool(module.episodic)
            stop = done if episodic else torch.zeros_like(done)
            term = s.terminated if episodic else torch.zeros_like(done)
            adv_int, ret_int = compute_gae(r_int, s.values[..., 1], next_values[..., 1], term, stop, cfg.gamma_int,
                                           cfg.gae_lambda)
            adv = cfg.ext_coef * adv + cfg.int_coef * adv_int
            returns.append(ret_int)
        return adv, torch.stack(returns, dim=-1), extra

    # -------------------------------------------------------------------------------- update
    def _update(self, advantages: torch.Tensor, returns: torch.Tensor) -> dict[str, torch.Tensor]:
        cfg, s, policy = self.config, self.storage, self.policy
        T, N = s.n_steps, self.env.num_envs
        B = T * N
        obs = obs_flatten_leading(s.obs, 2)
        actions, old_log_probs = flatten_leading(s.actions, 2), flatten_leading(s.log_probs, 2)
        old_values, adv_all, ret_all = flatten_leading(s.values, 2), flatten_leading(advantages, 2), flatten_leading(returns, 2)
        mb_size = max(1, B // cfg.n_minibatches)
        sums = torch.zeros(6, device=self.device)  # pg, vf, entropy, approx_kl, clipfrac, count
        for _epoch in range(cfg.n_epochs):
            perm = torch.randperm(B, generator=self.generator, device=self.device)
            for start in range(0, B - mb_size + 1, mb_size):
                idx = perm[start:start + mb_size]
                new_log_probs, entropy, new_values = policy.evaluate(obs_index(obs, idx), actions[idx])
                log_ratio = new_log_probs - old_log_probs[idx]
                ratio = log_ratio.exp()
                adv = adv_all[idx]
                if cfg.normalize_advantage and mb_size > 1:
                    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                pg_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - cfg.clip_range, 1 + cfg.clip_range)).mean()
                v_target = ret_all[idx]
                if cfg.clip_range_vf is None:
                    v_loss = 0.5 * (new_values - v_target).pow(2).mean(0).sum()
                else:
                    v_old = old_values[idx]
                    v_clipped = v_old + (new_values - v_old).clamp(-cfg.clip_range_vf, cfg.clip_range_vf)
                    v_loss = 0.5 * torch.max((new_values - v_target).pow(2), (v_clipped - v_target).pow(2)).mean(0).sum()
                ent = entropy.mean()
                loss = pg_loss - cfg.ent_coef * ent + cfg.vf_coef * v_loss
                if not torch.isfinite(loss):
                    self._raise_non_finite(pg_loss, v_loss, ent)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(policy.parameters(), cfg.max_grad_norm)
                self.optimizer.step()
                with torch.no_grad():
                    approx_kl = ((ratio - 1) - log_ratio).mean()
                    clipfrac = ((ratio - 1).abs() > cfg.clip_range).float().mean()
                    sums += torch.stack([pg_loss.detach(), v_loss.detach(), ent.detach(), approx_kl, clipfrac,
                                         torch.ones((), device=self.device)])
            if cfg.target_kl is not None and float(approx_kl) > cfg.target_kl:
                break
        n = sums[5].clamp(min=1)
        var_y = ret_all[:, 0].var()
        explained = 1 - (ret_all[:, 0] - old_values[:, 0]).var() / var_y.clamp(min=1e-8)
        return {"loss/policy": sums[0] / n, "loss/value": sums[1] / n, "loss/entropy": sums[2] / n,
                "loss/approx_kl": sums[3] / n, "loss/clip_fraction": sums[4] / n, "loss/explained_variance": explained}

    def _raise_non_finite(self, pg_loss: torch.Tensor, v_loss: torch.Tensor, entropy: torch.Tensor) -> None:
        self.fail_non_finite({"policy": pg_loss, "value": v_loss, "entropy": entropy},
                             where=f"iteration {self.iteration}")

    # --------------------------------------------------------------------------------- learn
    def learn(self, total_timesteps: int, callback: CallbackLike = None, reset_num_timesteps: bool = True,
              progress_bar: bool = False) -> "PPO":
        """Train until ``num_timesteps >= total_timesteps`` (counted in env frames, all envs together).

        ``callback`` may be a :class:`~rlcore.callbacks.Callback`, a list of them, or a function
        ``fn(metrics, model)`` called after each update; returning False stops training.
        """
        total_timesteps = int(total_timesteps)
        if total_timesteps <= 0:
            raise ValueError(f"total_timesteps must be positive, got {total_timesteps}")
        cfg = self.config
        if reset_num_timesteps:
            self.num_timesteps, self.iteration = 0, 0
            self._last_obs = None
        if self._last_obs is None:
            self._last_obs, _ = self.env.reset(seed=self.seed + self.iteration * 7919)
        cb = as_callback(callback)
        cb.init_callback(self)
        cb.on_training_start()
        bar = None
        if progress_bar:
            from tqdm.auto import tqdm
            bar = tqdm(total=total_timesteps, initial=self.num_timesteps, unit="step", dynamic_ncols=True)
        recent_return = math.nan
        try:
            while self.num_timesteps < total_timesteps:
                start_steps, t0 = self.num_timesteps, time.perf_counter()
                if cfg.anneal_lr:
                    frac = max(0.0, 1.0 - self.num_timesteps / total_timesteps)
                    for group in self.optimizer.param_groups:
                        group["lr"] = frac * cfg.learning_rate
                keep_going = self._collect_rollout(cb)
                advantages, returns, extra = self._advantages()
                metrics_t = self._update(advantages, returns)
                if self.reward_module is not None:
                    module_metrics = self.reward_module.update(self.storage.transitions()) or {}
                else:
                    module_metrics = {}
                self.iteration += 1
                metrics = {k: float(v) for k, v in {**metrics_t, **extra}.items()}  # one sync per iteration
                metrics.update({f"reward/{k}": float(v) for k, v in module_metrics.items()})
                metrics.update({f"rollout/{k}": v for k, v in self.episodes.pop().items()})
                elapsed = time.perf_counter() - t0
                metrics["time/fps"] = (self.num_timesteps - start_steps) / max(elapsed, 1e-9)
                metrics["time/iteration"] = self.iteration
                metrics["time/timesteps"] = self.num_timesteps
                metrics["train/learning_rate"] = self.optimizer.param_groups[0]["lr"]
                if not math.isnan(metrics["rollout/ep_return_mean"]):
                    recent_return = metrics["rollout/ep_return_mean"]
                if bar is not None:
                    bar.update(self.num_timesteps - start_steps)
                    bar.set_postfix(fps=f"{metrics['time/fps']:.0f}", ret=f"{recent_return:.3f}",
                                    succ=f"{metrics['rollout/success_rate']:.2f}")
                if not cb.on_rollout_end(metrics) or not keep_going:
                    break
        finally:
            if bar is not None:
                bar.close()
        cb.on_training_end()
        return self

    # ------------------------------------------------------------------------------- acting

    @torch.no_grad()
    def act(self, obs: Obs, deterministic: bool = False, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Env actions (clipped to a Box's bounds) for ``obs: [N, ...]``; samples with the learner's
        generator unless ``generator`` is given."""
        return self.act_log_prob(obs, deterministic, generator)[0]

    @torch.no_grad()
    def act_log_prob(self, obs: Obs, deterministic: bool = False,
                     generator: Optional[torch.Generator] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Env actions and the log-probabilities float32[N] of the sampled (unclipped) actions."""
        gen = self.generator if generator is None else generator
        actions, log_probs, _ = self.policy.act(obs, deterministic=deterministic, generator=gen)
        return self.policy.env_actions(actions), log_probs

    # ----------------------------------------------------------------------------- save/load
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume training (tensors and plain values only)."""
        return {
            "format": CHECKPOINT_FORMAT,
            "config": asdict(self.config),
            "policy_kwargs": self.policy_kwargs,
            "seed": self.seed,
            "observation_space": space_to_dict(self.observation_space),
            "action_space": space_to_dict(self.action_space),
            "num_value_streams": self.num_value_streams,
            "policy": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "reward_module": self.reward_module.state_dict() if self.reward_module is not None else None,
            "num_timesteps": self.num_timesteps,
            "iteration": self.iteration,
            "env_id": getattr(self.env, "env_id", ""),
        }

    def load_state_dict(self, payload: dict[str, Any], source: str = "checkpoint") -> None:
        """Restore from :meth:`state_dict`; raises :class:`CheckpointError` naming ``source`` on mismatch."""
        self.check_saved_spaces(payload, source)
        if payload.get("num_value_streams") != self.num_value_streams:
            raise CheckpointError(
                f"{source}: saved with {payload.get('num_value_streams')} value streams, this learner has "
                f"{self.num_value_streams} (was the reward module changed?)")
        try:
            self.policy.load_state_dict(payload["policy"])
            self.optimizer.load_state_dict(payload["optimizer"])
            if self.reward_module is not None and payload.get("reward_module") is not None:
                self.reward_module.load_state_dict(payload["reward_module"])
            self.generator.set_state(payload["generator"].to("cpu") if self.device.type == "cpu" else payload["generator"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"{source}: does not fit this learner: {exc}") from exc
        self.num_timesteps = int(payload["num_timesteps"])
        self.iteration = int(payload["iteration"])
        self._last_obs = None

    @classmethod
    def load(cls, path: str, env: Optional[BatchedEnv] = None, device: str | torch.device = "cpu",
             reward_module: Optional[RewardModule] = None) -> "PPO":
        """Load a saved learner. Without ``env`` the learner can ``predict`` but not ``learn``."""
        payload = load_checkpoint(path, CHECKPOINT_FORMAT, map_location=device)
        if env is None:
            env = _SpacesOnlyEnv(space_from_dict(payload["observation_space"]),
                                 space_from_dict(payload["action_space"]), torch.device(device))
        config = PPOConfig(**payload["config"])
        model = cls(env, config=config, policy_kwargs=payload["policy_kwargs"], reward_module=reward_module,
                    seed=payload["seed"])
        if payload["num_value_streams"] == 2 and model.num_value_streams == 1:
            # Saved with an intrinsic stream: rebuild the critic with two outputs for loading.
            model.num_value_streams = 2
            with torch.random.fork_rng(devices=[]):
                model.policy = ActorCritic(model.observation_space, model.action_space, num_value_streams=2,
                                           **model.policy_kwargs).to(model.device)
            model.optimizer = torch.optim.Adam(model.policy.parameters(), lr=config.learning_rate, eps=config.adam_eps)
        model.load_state_dict(payload, source=str(path))
        return model


class _SpacesOnlyEnv(BatchedEnv):
    """Placeholder env carrying only spaces, for a learner loaded to ``predict``."""

    num_envs = 1

    def __init__(self, observation_space, action_space, device: torch.device) -> None:
        self.single_observation_space, self.single_action_space, self.device = observation_space, action_space, device

    def reset(self, seed=None, options=None):
        raise RuntimeError("this learner was loaded without an env: pass env= to PPO.load to train it")

    def step(self, actions):
        raise RuntimeError("this learner was loaded without an env: pass env= to PPO.load to train it")
