"""The batched collector: record a :class:`~rlcore.data.TrajectoryDataset` from any batched env with
any policy (a native learner, an SB3 model, a random or scripted function).

The loop runs over time steps only; each step is one batched ``env.step`` of all ``N`` envs, and
recording is in-place tensor writes on the env's device.

* ``n_steps=S``: ``ceil(S / N)`` batched steps (``S`` rounded up to a multiple of ``N``); every env's
  last episode is kept, cut by the budget and marked truncated there.
* ``n_episodes=K``: env ``i`` contributes its first ``K // N + (i < K % N)`` complete episodes, so
  the sample is not biased towards short episodes; the collector steps until every env has met its
  quota (checked with one host sync every ``check_every`` steps) and drops the rest.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional

import gymnasium as gym
import torch
from tqdm.auto import tqdm

from rlcore.batch import TransitionBatch
from rlcore.data.dataset import TrajectoryDataset
from rlcore.learner import as_action_fn
from rlcore.rollout import select_state, step_next_state
from rlcore.spaces import space_to_dict
from rlcore.tensors import Obs, obs_clone


def random_policy(action_space: gym.Space, num_envs: int, device: torch.device,
                  generator: Optional[torch.Generator] = None) -> Callable[[Obs], torch.Tensor]:
    """Uniformly random env actions on ``device`` for a Discrete or bounded Box action space."""
    if isinstance(action_space, gym.spaces.Discrete):
        n, start = int(action_space.n), int(action_space.start)
        return lambda obs: torch.randint(n, (num_envs,), device=device, generator=generator) + start
    if isinstance(action_space, gym.spaces.Box):
        low = torch.as_tensor(action_space.low, dtype=torch.float32, device=device)
        high = torch.as_tensor(action_space.high, dtype=torch.float32, device=device)
        if not bool(torch.isfinite(low).all() and torch.isfinite(high).all()):
            raise ValueError(f"random_policy needs a bounded Box action space, got {action_space}")
        shape = (num_envs, *action_space.shape)
        return lambda obs: low + (high - low) * torch.rand(shape, device=device, generator=generator)
    raise TypeError(f"random_policy supports Discrete and Box action spaces, got {action_space}")


@torch.no_grad()
def collect(env: Any, policy: Any, *, n_episodes: Optional[int] = None, n_steps: Optional[int] = None,
            seed: Optional[int] = None, deterministic: bool = False, record_state: bool = False, check_every: int = 32,
            max_steps: int = 1_000_000, progress_bar: bool = False,
            metadata: Optional[dict[str, Any]] = None) -> TrajectoryDataset:
    """Record transitions of ``policy`` acting in ``env``.

    Args:
        env: a :class:`~rlcore.env.BatchedEnv`; it is reset with ``seed`` first.
        policy: a :class:`~rlcore.learner.Learner`, an SB3 model, or a callable ``obs -> actions``
            (see :func:`rlcore.learner.as_action_fn`). A policy with ``act_log_prob(obs)`` (native
            PPO) also gets its log-probabilities recorded.
        n_episodes / n_steps: the budget; exactly one of them.
        seed: reset seed of ``env``.
        deterministic: act with the policy's mode (learners and SB3 models; ignored for callables).
        record_state: also record ``state``/``next_state`` (``env.get_state()``; sets
            ``env.record_final_state``).
        check_every: batched steps between the host syncs that test the episode quotas.
        max_steps: safety bound on batched steps in ``n_episodes`` mode (raises ``RuntimeError``).
        metadata: merged into the dataset's metadata (``env_id``, spaces and ``source`` are set).
    """
    if (n_episodes is None) == (n_steps is None):
        raise ValueError("collect: give exactly one of n_episodes= or n_steps=")
    budget = n_episodes if n_episodes is not None else n_steps
    if not isinstance(budget, int) or isinstance(budget, bool) or budget <= 0:
        raise ValueError(f"collect: {'n_episodes' if n_episodes is not None else 'n_steps'} must be a positive integer, "
                         f"got {budget!r}")
    N, device = env.num_envs, env.device
    act = as_action_fn(policy, device, deterministic)
    act_log_prob = getattr(policy, "act_log_prob", None)
    if act_log_prob is not None:
        def act_log_prob(obs, _fn=act_log_prob):
            return _fn(obs, deterministic=deterministic)
    if record_state:
        env.record_final_state = True
    obs, _ = env.reset(seed=seed)
    steps: list[TransitionBatch] = []
    successes: list[torch.Tensor] = []
    keep: list[torch.Tensor] = []
    quota = None
    finished = torch.zeros(N, dtype=torch.int64, device=device)
    if n_episodes is not None:
        quota = torch.full((N,), n_episodes // N, dtype=torch.int64, device=device)
        quota[: n_episodes % N] += 1
    horizon = math.ceil(n_steps / N) if n_steps is not None else max_steps
    bar = tqdm(total=budget, unit="episode" if n_episodes else "step", disable=not progress_bar, dynamic_ncols=True)
    state = select_state(env.get_state(), None, "collect") if record_state else None
    keys = list(state) if state is not None else []
    t = 0
    try:
        for t in range(1, horizon + 1):
            if act_log_prob is not None:
                actions, log_prob = act_log_prob(obs)
            else:
                actions, log_prob = act(obs), None
            state_before = {k: v.clone() for k, v in state.items()} if state is not None else None
            next_obs, reward, terminated, truncated, info = env.step(actions)
            next_state = step_next_state(info, keys, "collect") if record_state else None
            done = terminated | truncated
            steps.append(TransitionBatch(
                obs=obs_clone(obs), action=actions.clone(), reward=reward.float().clone(), next_obs=obs_clone(info["final_obs"]),
                terminated=terminated.clone(), truncated=truncated.clone(), state=state_before,
                next_state=None if next_state is None else {k: v.clone() for k, v in next_state.items()},
                log_prob=log_prob))
            successes.append(info["success"].clone() if "success" in info else torch.zeros_like(done))
            if quota is not None:
                keep.append(finished < quota)  # this step belongs to an episode within the env's quota
                finished += done.long()
            obs = next_obs
            if record_state:
                state = select_state(env.get_state(), keys, "collect")
            if quota is not None and t % check_every == 0:
                n_done = int(torch.minimum(finished, quota).sum())
                bar.update(n_done - bar.n)
                if n_done >= budget:
                    break
            elif quota is None:
                bar.update(N)
        else:
            if quota is not None and int(torch.minimum(finished, quota).sum()) < budget:
                raise RuntimeError(f"collect: {int(torch.minimum(finished, quota).sum())} of {budget} episodes "
                                   f"finished within max_steps={max_steps} batched steps")
    finally:
        bar.close()
    batch = _stack(steps)
    keep_mask = torch.stack(keep) if quota is not None else None
    info_meta = {
        "env_id": getattr(env, "env_id", ""),
        "observation_space": space_to_dict(env.single_observation_space),
        "action_space": space_to_dict(env.single_action_space),
        "source": getattr(policy, "__name__", type(policy).__name__),
        "num_envs": N,
        "seed": seed,
    }
    info_meta.update(metadata or {})
    return TrajectoryDataset.from_steps(batch, success=torch.stack(successes).bool(), keep=keep_mask, metadata=info_meta)


def _stack(steps: list[TransitionBatch]) -> TransitionBatch:
    """``T`` step batches ``[N, ...]`` -> one ``[T, N, ...]`` batch."""
    def stack(name: str) -> Any:
        first = getattr(steps[0], name)
        if first is None:
            return None
        if isinstance(first, dict):
            return {k: torch.stack([getattr(s, name)[k] for s in steps]) for k in first}
        return torch.stack([getattr(s, name) for s in steps])

    return TransitionBatch(**{name: stack(name) for name in ("obs", "action", "reward", "next_obs", "terminated",
                                                             "truncated", "state", "next_state", "log_prob")})
