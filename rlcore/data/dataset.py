"""The trajectory dataset: flat transitions on one device, grouped into episodes.

One type serves offline RL, behaviour cloning, reward learning from demonstrations and preference
segments, and PPO's rollouts (:meth:`TrajectoryDataset.from_steps`, as ``RolloutStorage.dataset()``). It is built by the collector
(:func:`rlcore.data.collect`), saved and loaded safely (:mod:`rlcore.data.io`), and sampled on the
device (:mod:`rlcore.data.sampler`).

Layout (``M`` transitions, ``E`` episodes)::

    obs:             Tensor[M, ...] or dict[str, Tensor[M, ...]]   observation before the action
    action:          int64[M] (Discrete) or float32[M, A] (Box)
    reward:          float32[M]
    next_obs:        like obs; the true next observation (an episode's final one where it ended)
    terminated:      bool[M]  the episode reached a terminal state (its value is 0)
    truncated:       bool[M]  the episode was cut here (time limit, or the collection budget):
                              bootstrap from next_obs
    episode_id:      int64[M] 0..E-1; an episode's transitions are contiguous and in time order
    episode_start:   bool[M]  first transition of its episode in this dataset
    episode_return:  float32[E] sum of the episode's rewards in the dataset
    episode_length:  int64[E]
    state, next_state (optional): dict[str, Tensor[M, ...]] privileged state (``env.get_state()``)
    log_prob (optional): float32[M] log-probability of the action under the behaviour policy
    episode_success (optional): bool[E] the episode ended by reaching the task's goal
    episode_cut (optional): bool[E] the episode did not end in the env: the collection budget or the
                     end of the arrays cut it (its last transition is marked truncated, its return is
                     partial); ``None`` when unknown (then every episode counts as complete)
    metadata:        JSON-able dict: ``env_id``, ``observation_space``/``action_space``
                     (:func:`rlcore.spaces.space_to_dict`), ``source`` (what collected it), ...

Invariants (checked by :meth:`TrajectoryDataset.validate`): the last transition of every episode,
and only that one, is terminated or truncated; never both; lengths and returns agree with the
per-transition fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Optional

import torch

from rlcore.batch import TransitionBatch
from rlcore.tensors import Obs, flatten_leading, obs_map

#: Per-transition fields (leading dim M), in a fixed order; ``None`` allowed for the optional ones.
TRANSITION_FIELDS = ("obs", "action", "reward", "next_obs", "terminated", "truncated", "episode_id",
                     "episode_start", "state", "next_state", "log_prob")
#: Per-episode fields (leading dim E).
EPISODE_FIELDS = ("episode_return", "episode_length", "episode_success", "episode_cut")
OPTIONAL_FIELDS = ("state", "next_state", "log_prob", "episode_success", "episode_cut")


class DatasetError(ValueError):
    """A dataset is malformed; the message names the file (if any) and the field."""


@dataclass
class TrajectoryDataset:
    """Flat transitions grouped into episodes; see the module docstring for shapes."""

    obs: Obs
    action: torch.Tensor
    reward: torch.Tensor
    next_obs: Obs
    terminated: torch.Tensor
    truncated: torch.Tensor
    episode_id: torch.Tensor
    episode_start: torch.Tensor
    episode_return: torch.Tensor
    episode_length: torch.Tensor
    state: Optional[dict[str, torch.Tensor]] = None
    next_state: Optional[dict[str, torch.Tensor]] = None
    log_prob: Optional[torch.Tensor] = None
    episode_success: Optional[torch.Tensor] = None
    episode_cut: Optional[torch.Tensor] = None
    metadata: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return int(self.reward.shape[0])

    @property
    def num_episodes(self) -> int:
        return int(self.episode_length.shape[0])

    @property
    def num_complete_episodes(self) -> int:
        """Episodes that ended in the env (terminated, or truncated by its time limit), not cut by the
        collection budget or the end of the arrays (see ``episode_cut``)."""
        return self.num_episodes - (int(self.episode_cut.sum()) if self.episode_cut is not None else 0)

    @property
    def device(self) -> torch.device:
        return self.reward.device

    @property
    def done(self) -> torch.Tensor:
        """bool[M]: an episode ended at this transition."""
        return self.terminated | self.truncated

    def map(self, fn, episode_fn=None) -> "TrajectoryDataset":
        """Apply ``fn`` to every per-transition tensor and ``episode_fn`` (default ``fn``) to the
        per-episode ones; metadata is copied."""
        episode_fn = episode_fn or fn
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "metadata":
                out[f.name] = dict(value)
            elif value is None:
                out[f.name] = None
            else:
                apply = episode_fn if f.name in EPISODE_FIELDS else fn
                out[f.name] = {k: apply(v) for k, v in value.items()} if isinstance(value, dict) else apply(value)
        return replace(self, **out)

    def to(self, device: torch.device | str) -> "TrajectoryDataset":
        return self.map(lambda x: x.to(device))

    # ------------------------------------------------------------------------------ views
    def transitions(self, index: Any = None) -> TransitionBatch:
        """The transitions at ``index`` (all for ``None``; a slice, or int64 indices) as a
        :class:`~rlcore.batch.TransitionBatch` of shape ``[len(index)]`` (log-probs included)."""
        pick = (lambda x: x) if index is None else (lambda x: x[index])
        state = None if self.state is None else {k: pick(v) for k, v in self.state.items()}
        next_state = None if self.next_state is None else {k: pick(v) for k, v in self.next_state.items()}
        return TransitionBatch(
            obs=obs_map(pick, self.obs), action=pick(self.action), reward=pick(self.reward),
            next_obs=obs_map(pick, self.next_obs), terminated=pick(self.terminated), truncated=pick(self.truncated),
            state=state, next_state=next_state, log_prob=None if self.log_prob is None else pick(self.log_prob))

    def sample(self, batch_size: int, sampler: Any = None, generator: Optional[torch.Generator] = None) -> TransitionBatch:
        """A minibatch of ``batch_size`` transitions drawn on the device by ``sampler`` (uniform
        with replacement by default; see :mod:`rlcore.data.sampler`)."""
        if sampler is None:
            from rlcore.data.sampler import UniformSampler

            sampler = UniformSampler(len(self), self.device)
        return self.transitions(sampler.sample(batch_size, generator))

    def relabel(self, reward_module: Any, mode: str = "replace", coef: float = 1.0,
                chunk_size: int = 65_536) -> "TrajectoryDataset":
        """A copy whose rewards come from ``reward_module`` (any :class:`~rlcore.reward.RewardModule`:
        a learned reward, compiled reward code, an exploration bonus).

        ``mode="replace"``: ``coef * module_reward``; ``"add"``: ``reward + coef * module_reward``.
        The module sees the transitions in dataset order, one episode after another, as one env
        (batches ``[C, 1]`` of ``chunk_size`` steps, with the done flags marking episode ends), so
        modules with per-episode memory (episodic bonuses) see whole episodes in time order and
        global ones count in dataset order. Its ``update`` is never called: the module stays as it
        is. A module that reads privileged state needs a dataset that recorded it
        (``collect(..., record_state=True)``). Episode returns are recomputed; the metadata records
        the relabelling. Non-finite rewards raise, naming the module.
        """
        from rlcore.reward import check_finite

        if mode not in ("replace", "add"):
            raise ValueError(f"relabel mode must be 'replace' or 'add', got {mode!r}")
        name = type(reward_module).__name__
        if getattr(reward_module, "needs_state", False) and (self.state is None or self.next_state is None):
            raise DatasetError(f"relabel: reward module '{name}' reads privileged state, which this dataset did not "
                               f"record; collect it with record_state=True")
        chunk_size = int(chunk_size)
        if chunk_size <= 0:
            raise ValueError(f"relabel chunk_size must be positive, got {chunk_size}")
        out = []
        with torch.no_grad():
            for a in range(0, len(self), chunk_size):
                batch = self.transitions(slice(a, a + chunk_size)).map(lambda x: x.unsqueeze(1))
                if not getattr(reward_module, "needs_state", False):
                    batch.state = batch.next_state = None
                values = reward_module.compute(batch)
                if not isinstance(values, torch.Tensor) or tuple(values.shape) != tuple(batch.reward.shape):
                    got = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
                    raise ValueError(f"relabel: reward module '{name}' returned {got}, expected {tuple(batch.reward.shape)}")
                out.append(values.reshape(-1).float())
        module_reward = torch.cat(out).to(self.device)
        check_finite(module_reward, name)
        reward = coef * module_reward if mode == "replace" else self.reward + coef * module_reward
        reward = reward.float()
        returns = torch.zeros(self.num_episodes, dtype=torch.float64, device=self.device).index_add_(
            0, self.episode_id, reward.double()).float()
        meta = dict(self.metadata)
        meta["relabelled"] = {"module": name, "mode": mode, "coef": float(coef), "before": meta.get("relabelled")}
        return replace(self, reward=reward, episode_return=returns, metadata=meta)

    def episode_offsets(self) -> torch.Tensor:
        """int64[E + 1]: episode ``e`` holds transitions ``offsets[e]:offsets[e + 1]``."""
        zero = torch.zeros(1, dtype=torch.int64, device=self.device)
        return torch.cat([zero, self.episode_length.cumsum(0)])

    def select_episodes(self, episodes: torch.Tensor) -> "TrajectoryDataset":
        """A new dataset holding the episodes ``episodes`` (int64 ids or bool[E] mask), in id order,
        renumbered ``0..``."""
        keep_episode = torch.zeros(self.num_episodes, dtype=torch.bool, device=self.device)
        keep_episode[episodes] = True
        keep = keep_episode[self.episode_id]
        rows = keep.nonzero().squeeze(1)
        ep_rows = keep_episode.nonzero().squeeze(1)
        out = self.map(lambda x: x[rows], lambda x: x[ep_rows])
        out.episode_id = torch.cumsum(out.episode_start.long(), 0) - 1
        return out

    # ------------------------------------------------------------------------------ builders
    @classmethod
    def from_steps(cls, batch: TransitionBatch, *, success: Optional[torch.Tensor] = None,
                   keep: Optional[torch.Tensor] = None, metadata: Optional[dict[str, Any]] = None) -> "TrajectoryDataset":
        """Build from time-major batched steps ``[T, N]`` (a rollout, or what the collector
        recorded): each env's steps become contiguous episodes (env-major order), and the last step
        of an env whose episode is still running is marked truncated (cut by the budget).

        Args:
            batch: ``[T, N]`` transitions (``log_prob``, ``state``, ``next_state`` kept when set).
            success: optional bool[T, N], the env's success flag at each step (read where an episode ends).
            keep: optional bool[T, N]; only the episodes whose steps are all kept are stored (the
                collector uses it to drop episodes beyond each env's quota).
            metadata: stored as the dataset's metadata.
        """
        T, N = batch.reward.shape
        env_major = batch.map(lambda x: flatten_leading(x.transpose(0, 1), 2))
        terminated = env_major.terminated.clone()
        truncated = env_major.truncated.clone()
        last_of_env = torch.zeros(N, T, dtype=torch.bool, device=batch.device)
        last_of_env[:, -1] = True
        last_of_env = last_of_env.reshape(-1)
        cut = last_of_env & ~(terminated | truncated)  # still running when the recording stopped
        truncated |= cut
        done = terminated | truncated
        start = torch.ones_like(done)
        start[1:] = done[:-1]
        episode_id = torch.cumsum(start.long(), 0) - 1
        E = int(episode_id[-1]) + 1
        if keep is not None:
            keep_flat = keep.transpose(0, 1).reshape(-1)
            dropped = torch.zeros(E, dtype=torch.int64, device=batch.device).index_add_(0, episode_id, (~keep_flat).long())
            rows = (dropped == 0)[episode_id].nonzero().squeeze(1)
        else:
            rows = None
        pick = (lambda x: x) if rows is None else (lambda x: x[rows])
        env_major = env_major.map(pick)
        terminated, truncated, start, cut = pick(terminated), pick(truncated), pick(start), pick(cut)
        episode_id = torch.cumsum(start.long(), 0) - 1
        E = int(episode_id[-1]) + 1 if episode_id.numel() else 0
        lengths = torch.bincount(episode_id, minlength=E)
        returns = torch.zeros(E, dtype=torch.float32, device=batch.device).index_add_(0, episode_id, env_major.reward.float())
        episode_success = None
        if success is not None:
            succ = pick(success.transpose(0, 1).reshape(-1))
            ends = (terminated | truncated).nonzero().squeeze(1)
            episode_success = succ[ends].bool()
        episode_cut = torch.zeros(E, dtype=torch.bool, device=batch.device)
        episode_cut[episode_id[cut]] = True
        return cls(obs=env_major.obs, action=env_major.action, reward=env_major.reward.float(),
                   next_obs=env_major.next_obs, terminated=terminated, truncated=truncated, episode_id=episode_id,
                   episode_start=start, episode_return=returns, episode_length=lengths, state=env_major.state,
                   next_state=env_major.next_state, log_prob=env_major.log_prob, episode_success=episode_success,
                   episode_cut=episode_cut, metadata=dict(metadata or {}))

    @classmethod
    def from_arrays(cls, *, observations: Any, actions: Any, rewards: Any, terminals: Any, timeouts: Any = None,
                    next_observations: Any = None, device: torch.device | str = "cpu",
                    metadata: Optional[dict[str, Any]] = None, source: str = "arrays") -> "TrajectoryDataset":
        """Build from D4RL-style flat arrays (numpy arrays or tensors, leading dim ``M``, time order).

        An episode ends where ``terminals`` (a terminal state: value 0) or ``timeouts`` (a time limit:
        bootstrap) is set; a final episode that neither marks is cut there and stored as truncated.
        Where both flags are set, the termination wins. ``observations`` may be a dict of arrays.
        Without ``next_observations`` the next observation is the following row inside an episode,
        and at an episode's last transition its own observation (a terminal's next observation is
        never used; a truncation's bootstrap then reads the last observation seen, an approximation:
        pass ``next_observations`` to avoid it). Discrete actions (integer arrays, shape ``[M]``)
        become int64, others float32; rewards float32. Raises :class:`DatasetError` naming ``source``
        and the field for mismatched lengths, NaN/Inf, or an empty dataset.
        """

        def tensor(name: str, x: Any) -> torch.Tensor:
            try:
                return torch.as_tensor(x).to(device)
            except (TypeError, ValueError, RuntimeError) as exc:
                raise DatasetError(f"{source}: field '{name}' cannot be read as an array: {exc}") from exc

        def to_obs(name: str, x: Any) -> Obs:
            return {str(k): tensor(f"{name}/{k}", v) for k, v in x.items()} if isinstance(x, dict) else tensor(name, x)

        obs = to_obs("observations", observations)
        reward = tensor("rewards", rewards)
        M = int(reward.shape[0]) if reward.dim() else -1
        if M <= 0:
            raise DatasetError(f"{source}: field 'rewards' must be a non-empty 1-d array, got shape {tuple(reward.shape)}")

        def check_len(name: str, x: torch.Tensor) -> None:
            if x.dim() == 0 or x.shape[0] != M:
                raise DatasetError(f"{source}: field '{name}' has {x.shape[0] if x.dim() else 0} rows, "
                                   f"expected {M} (the length of 'rewards')")

        for key, value in (obs.items() if isinstance(obs, dict) else [("observations", obs)]):
            check_len(key if key == "observations" else f"observations/{key}", value)
        action = tensor("actions", actions)
        check_len("actions", action)
        terminated = tensor("terminals", terminals)
        check_len("terminals", terminated)
        terminated = terminated.bool().reshape(M)
        truncated = torch.zeros(M, dtype=torch.bool, device=terminated.device)
        if timeouts is not None:
            timeout = tensor("timeouts", timeouts)
            check_len("timeouts", timeout)
            truncated = timeout.bool().reshape(M) & ~terminated
        last_is_cut = not bool(terminated[-1] | truncated[-1])
        truncated[-1] |= ~terminated[-1]
        done = terminated | truncated
        start = torch.ones_like(done)
        start[1:] = done[:-1]
        if next_observations is not None:
            next_obs = to_obs("next_observations", next_observations)
            for key, value in (next_obs.items() if isinstance(next_obs, dict) else [("next_observations", next_obs)]):
                check_len(key if key == "next_observations" else f"next_observations/{key}", value)
        else:
            follow = torch.arange(1, M + 1, device=done.device).clamp_(max=M - 1)
            follow = torch.where(done, torch.arange(M, device=done.device), follow)
            next_obs = obs_map(lambda t: t[follow], obs)
        if action.is_floating_point():
            action = action.float()
        elif action.dim() == 1:
            action = action.long()
        else:
            raise DatasetError(f"{source}: field 'actions' holds integers of shape {tuple(action.shape)}; discrete "
                               f"actions must be 1-d [M]")
        reward = reward.float()
        episode_id = torch.cumsum(start.long(), 0) - 1
        E = int(episode_id[-1]) + 1
        lengths = torch.bincount(episode_id, minlength=E)
        returns = torch.zeros(E, dtype=torch.float64, device=reward.device).index_add_(0, episode_id, reward.double())
        episode_cut = torch.zeros(E, dtype=torch.bool, device=reward.device)
        episode_cut[-1] = last_is_cut
        ds = cls(obs=obs, action=action, reward=reward, next_obs=next_obs, terminated=terminated, truncated=truncated,
                 episode_id=episode_id, episode_start=start, episode_return=returns.float(), episode_length=lengths,
                 episode_cut=episode_cut, metadata=dict(metadata or {}))
        ds.validate(source=source)
        return ds

    # ------------------------------------------------------------------------------ checks
    def validate(self, source: str = "dataset") -> None:
        """Check shapes, dtypes and episode bookkeeping; raise :class:`DatasetError` naming
        ``source`` and the field. Costs a few host syncs: for loading, not for hot loops."""
        M = len(self)

        def fail(name: str, msg: str) -> None:
            raise DatasetError(f"{source}: field '{name}' {msg}")

        def check(name: str, x: Any, dtype: Optional[torch.dtype] = None, lead: int = M) -> None:
            if not isinstance(x, torch.Tensor):
                fail(name, f"must be a tensor, got {type(x).__name__}")
            if x.dim() == 0 or x.shape[0] != lead:
                fail(name, f"has shape {tuple(x.shape)}, expected leading dim {lead}")
            if dtype is not None and x.dtype != dtype:
                fail(name, f"has dtype {x.dtype}, expected {dtype}")
            if x.is_floating_point() and not bool(torch.isfinite(x).all()):
                fail(name, "holds NaN or Inf")

        if self.reward.dim() != 1:
            fail("reward", f"must be 1-d float32[M], got shape {tuple(self.reward.shape)}")
        check("reward", self.reward, torch.float32)
        for name in ("terminated", "truncated", "episode_start"):
            check(name, getattr(self, name), torch.bool)
        check("episode_id", self.episode_id, torch.int64)
        for name in ("obs", "next_obs"):
            value = getattr(self, name)
            if isinstance(value, dict):
                for k, v in value.items():
                    check(f"{name}/{k}", v)
            else:
                check(name, value)
        check("action", self.action)
        if self.action.dtype not in (torch.int64, torch.float32):
            fail("action", f"has dtype {self.action.dtype}, expected int64 (Discrete) or float32 (Box)")
        if self.log_prob is not None:
            check("log_prob", self.log_prob, torch.float32)
        for name in ("state", "next_state"):
            value = getattr(self, name)
            if value is not None:
                for k, v in value.items():
                    check(f"{name}/{k}", v)
        if bool((self.terminated & self.truncated).any()):
            fail("truncated", "is True where terminated is True; an episode ends one way")
        E = self.num_episodes
        check("episode_length", self.episode_length, torch.int64, E)
        check("episode_return", self.episode_return, torch.float32, E)
        if self.episode_success is not None:
            check("episode_success", self.episode_success, torch.bool, E)
        if self.episode_cut is not None:
            check("episode_cut", self.episode_cut, torch.bool, E)
            if M and bool((self.episode_cut & self.terminated[self.done.nonzero().squeeze(1)]).any()):
                fail("episode_cut", "marks an episode that terminated; a cut episode ends truncated")
        if M == 0:
            return
        expected_start = torch.ones_like(self.episode_start)
        expected_start[1:] = self.episode_id[1:] != self.episode_id[:-1]
        if int(self.episode_id[0]) != 0 or bool((self.episode_id.diff() < 0).any()) or bool((self.episode_id.diff() > 1).any()):
            fail("episode_id", "must count episodes 0, 1, ... with each episode's transitions contiguous")
        if int(self.episode_id[-1]) + 1 != E:
            fail("episode_length", f"has {E} episodes, episode_id counts {int(self.episode_id[-1]) + 1}")
        if not torch.equal(self.episode_start, expected_start):
            fail("episode_start", "does not mark the first transition of each episode")
        if not torch.equal(torch.bincount(self.episode_id, minlength=E), self.episode_length):
            fail("episode_length", "does not match the number of transitions of each episode")
        last = torch.zeros_like(self.episode_start)
        last[:-1] = self.episode_start[1:]
        last[-1] = True
        if not torch.equal(self.done, last):
            fail("terminated", "/truncated must be True at the last transition of each episode and only there")
        sums = torch.zeros(E, dtype=torch.float64, device=self.device).index_add_(0, self.episode_id, self.reward.double())
        if not torch.allclose(sums, self.episode_return.double(), rtol=1e-4, atol=1e-3):
            fail("episode_return", "does not match the sum of each episode's rewards")
