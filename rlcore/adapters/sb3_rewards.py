"""Any :class:`~rlcore.reward.RewardModule` inside stable-baselines3 algorithms.

Two bridges, for the two places where SB3 lets outside code touch the reward:

* :class:`RewardModuleCallback` (on-policy: PPO, A2C). It watches the rollout step by step, and at the
  end of the rollout builds one ``[T, N]`` :class:`~rlcore.batch.TransitionBatch`, scores it with the
  module, and makes the result reach the loss as ``mode`` says (a :class:`~rlcore.reward.RewardRouting`
  or its value, default the module's ``routing``; the one vocabulary of native PPO):

  - ``mode="intrinsic"`` (default for intrinsic modules): a small intrinsic critic of its own
    (encoder + MLP, discount ``gamma_int``, returns run across episodes unless ``module.episodic``)
    gives intrinsic GAE advantages ``A_int``; the buffer's advantages become
    ``ext_coef * A_ext + int_coef * A_int`` while SB3's value head keeps fitting extrinsic returns
    (the two-stream PPO of Burda et al. 2019, RND);
  - ``mode="add"`` (default for ``ADD`` modules): ``coef * bonus`` is added to ``rollout_buffer.rewards``
    and the buffer's own ``compute_returns_and_advantage`` is run again with the last values and dones
    of the rollout;
  - ``mode="replace"`` (default for ``REPLACE`` modules, e.g. a learned reward model): the
    env reward is replaced by ``coef * r_module`` (the bootstrap term SB3 adds on time-limit
    truncations, ``gamma * V(terminal_obs)``, is kept) and returns/advantages are recomputed.

  Then ``module.update(batch)`` trains the module on the rollout and its metrics go to SB3's logger.

* :class:`RewardModuleVecEnvWrapper` (any algorithm, incl. off-policy DQN/SAC): a ``VecEnvWrapper``
  that scores every step as a ``[1, N]`` batch, returns ``env reward + coef * bonus`` (or the module's
  reward alone in ``replace`` mode), and calls ``module.update`` every ``update_every`` steps on
  the buffered ``[T, N]`` transitions.

Pitfalls these avoid:

* SB3's ``collect_rollouts`` computes returns and advantages *before* ``on_rollout_end``; editing
  ``rollout_buffer.rewards`` there alone changes nothing the loss sees. The callback recomputes (or
  adds intrinsic advantages) itself.
* ``new_obs`` of a finished env is already the first observation of the next episode; the true
  next observation is ``infos[i]["terminal_observation"]``, which both bridges use as ``next_obs``.
* ``dones`` merges terminations and time-limit truncations; ``infos[i]["TimeLimit.truncated"]`` keeps
  them apart, so truncated steps bootstrap (intrinsic critic, episodic mode) and SB3's own timeout
  bootstrap (folded into ``rollout_buffer.rewards``) survives a reward replacement.
* NaN/Inf from a module raises :class:`~rlcore.reward.NonFiniteRewardError` naming the module; it is
  never fed to the learner.

Privileged state: for a module with ``needs_state = True`` both bridges fill ``batch.state`` (before
each action) and ``batch.next_state`` (the true state after it: the finished episode's last state where
an episode ended), restricted to the module's ``state_keys`` when it sets them. They read it from the
:class:`~rlcore.env.BatchedEnv` under the ``VecEnv`` (:class:`~rlcore.adapters.sb3.SB3VecEnv`, found
through any ``VecEnvWrapper`` layers) with ``get_state()`` and, after each step, ``env.final_state``
(they switch ``record_final_state`` on). Other modules get ``None``, and nothing is recorded.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper, VecTransposeImage, unwrap_vec_wrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn
from torch import nn

from rlcore.batch import TransitionBatch
from rlcore.env import BatchedEnv
from rlcore.nets import make_encoder
from rlcore.normalization import DiscountedReturnNormalizer
from rlcore.rollout import compute_gae, module_needs_state, select_state, step_next_state
from rlcore.reward import RewardModule, RewardRouting, RoutingLike, check_finite, parse_routing, route_reward, routing_of
from rlcore.tensors import Obs, obs_cat, obs_flatten_leading, obs_index

__all__ = [
    "RewardModuleCallback",
    "RewardModuleVecEnvWrapper",
    "IntrinsicCritic",
    "module_name",
    "module_device",
]



# ---------------------------------------------------------------------------------------------- helpers
def module_name(module: nn.Module) -> str:
    """The name used for ``module`` in errors and logs: its ``name`` attribute, else its class name."""
    name = getattr(module, "name", None)
    return name if isinstance(name, str) and name else type(module).__name__


def module_device(module: nn.Module) -> torch.device:
    """Device of the module's first parameter or buffer (CPU for a module without tensors)."""
    for t in module.parameters():
        return t.device
    for t in module.buffers():
        return t.device
    return torch.device("cpu")


def _default_normalize(module: RewardModule) -> bool:
    """Normalise intrinsic rewards, unless the module already does (``IntrinsicReward(normalize=True)``)."""
    return routing_of(module) is RewardRouting.INTRINSIC and getattr(module, "normalize", False) is not True


def _obs_to_torch(obs: VecEnvObs, space: gym.Space, lead: tuple[int, ...], device: torch.device,
                  untranspose: bool | frozenset = False) -> Obs:
    """numpy obs (array or dict of arrays) -> torch on ``device``, each shaped ``[*lead, *space.shape]``.

    ``space`` is the env's own (module-facing) space. SB3 stores Discrete observations with a trailing
    ``1``; the reshape restores the space's shape. ``untranspose`` (True, or the Dict keys) undoes
    SB3's ``VecTransposeImage`` (channel-first ``[.., C, H, W]`` back to the env's ``[.., H, W, C]``).
    """
    if isinstance(space, spaces.Dict):
        assert isinstance(obs, dict)
        keys = untranspose if isinstance(untranspose, frozenset) else frozenset()
        return {k: _obs_to_torch(obs[k], s, lead, device, k in keys) for k, s in space.spaces.items()}
    x = torch.as_tensor(np.asarray(obs), device=device)
    if untranspose is True:
        x = x.movedim(-3, -1)
    shape = tuple(space.shape or ())
    return x.reshape(*lead, *shape)


def _actions_to_torch(actions: np.ndarray, space: gym.Space, lead: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """SB3 actions -> int64[*lead] (Discrete), float32[*lead, A] (Box) or the space's shape."""
    a = torch.as_tensor(np.asarray(actions), device=device)
    if isinstance(space, spaces.Discrete):
        return a.reshape(*lead).long()
    if isinstance(space, spaces.Box):
        return a.reshape(*lead, *space.shape).float()
    return a.reshape(*lead, *(space.shape or ()))


def _copy_obs(obs: VecEnvObs) -> VecEnvObs:
    if isinstance(obs, dict):
        return {k: np.array(v, copy=True) for k, v in obs.items()}
    return np.array(obs, copy=True)


def _patch_terminal(next_obs: VecEnvObs, terminal: Iterable[tuple[Any, Optional[VecEnvObs]]]) -> None:
    """Write each ``(row, terminal_observation)`` into ``next_obs[row]`` (in place); ``row`` is an env
    index ``i`` (one step) or a ``(t, i)`` pair (a rollout). Entries without an observation are skipped."""
    for row, term in terminal:
        if term is None:
            continue
        if isinstance(next_obs, dict):
            for k in next_obs:
                next_obs[k][row] = np.asarray(term[k]).reshape(next_obs[k][row].shape)
        else:
            next_obs[row] = np.asarray(term).reshape(next_obs[row].shape)


def _truncated_flags(dones: np.ndarray, infos: list[dict]) -> np.ndarray:
    """bool[N]: done by a time limit (``TimeLimit.truncated``), not by reaching a terminal state."""
    trunc = np.zeros(len(dones), dtype=bool)
    for i in np.flatnonzero(dones).tolist():
        trunc[i] = bool(infos[i].get("TimeLimit.truncated", False))
    return trunc


def _find_batched_env(venv: VecEnv) -> Optional[BatchedEnv]:
    """The :class:`~rlcore.env.BatchedEnv` held (as ``.env``) by ``venv`` or by a ``VecEnv`` it wraps."""
    current: Optional[VecEnv] = venv
    while current is not None:
        env = getattr(current, "env", None)
        if isinstance(env, BatchedEnv):
            return env
        current = getattr(current, "venv", None)
    return None


class _StateSource:
    """Privileged state of the batched env under an SB3 ``VecEnv``, for a module with ``needs_state``.

    Turns ``record_final_state`` on. :meth:`current` copies ``get_state()``; :meth:`final` takes the
    ``env.final_state`` the latest step left and clears it, so a step that did not record one is
    caught instead of reusing an old one. Both restrict to the module's ``state_keys`` and return
    fresh tensors ``[N, ...]`` on ``device``.
    """

    def __init__(self, venv: Optional[VecEnv], module: RewardModule, owner: str, device: torch.device) -> None:
        env = _find_batched_env(venv) if venv is not None else None
        if env is None:
            raise ValueError(
                f"reward module '{owner}' needs privileged state, but the VecEnv "
                f"({type(venv).__name__}) does not wrap an rlcore BatchedEnv; build it with "
                "rlcore.adapters.sb3.SB3VecEnv(batched_env)")
        self.env, self.owner, self.device = env, owner, device
        env.record_final_state = True
        env.final_state = None
        self.keys = list(select_state(env.get_state(), getattr(module, "state_keys", None), f"reward module '{owner}'"))

    def _copy(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: state[k].to(self.device, copy=True) for k in self.keys}

    def current(self) -> dict[str, torch.Tensor]:
        return self._copy(self.env.get_state())

    def final(self) -> dict[str, torch.Tensor]:
        final, self.env.final_state = self.env.final_state, None
        info = {} if final is None else {"final_state": final}
        return self._copy(step_next_state(info, self.keys, f"reward module '{self.owner}'"))


def _stack_states(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """``T`` dicts of ``[N, ...]`` tensors -> one dict of ``[T, N, ...]`` tensors."""
    return {k: torch.stack([s[k] for s in states]) for k in states[0]}


class _FlattenAny(nn.Module):
    """Obs (tensor or dict of tensors) -> float32[B, D]: flattens Box, one-hot encodes Discrete."""

    def __init__(self, space: gym.Space) -> None:
        super().__init__()
        self.parts: list[tuple[Optional[str], int, int]] = []  # (key, discrete n or 0, flat dim)
        items = space.spaces.items() if isinstance(space, spaces.Dict) else [(None, space)]
        for key, s in items:
            if isinstance(s, spaces.Discrete):
                self.parts.append((key, int(s.n), int(s.n)))
            elif isinstance(s, (spaces.Box, spaces.MultiBinary, spaces.MultiDiscrete)):
                self.parts.append((key, 0, int(np.prod(s.shape))))
            else:
                raise ValueError(f"intrinsic critic cannot embed observation space {s}")
        self.out_dim = sum(p[2] for p in self.parts)

    def forward(self, obs: Obs) -> torch.Tensor:
        feats = []
        for key, n, _ in self.parts:
            x = obs[key] if key is not None else obs
            if n:
                feats.append(nn.functional.one_hot(x.long().reshape(-1), n).float())
            else:
                feats.append(x.reshape(x.shape[0], -1).float())
        return torch.cat(feats, dim=1)


class IntrinsicCritic(nn.Module):
    """The callback's intrinsic value function: an observation encoder and an MLP -> float32[B].

    The encoder is :func:`rlcore.nets.make_encoder` (MiniGrid CNN for MiniGrid dicts, flatten for
    Box/Discrete) where it applies, else a flatten-and-concatenate over a Dict's entries.
    """

    def __init__(self, observation_space: gym.Space, hidden: int = 64) -> None:
        super().__init__()
        try:
            self.encoder: nn.Module = make_encoder(observation_space, "auto", owner="intrinsic critic")
        except ValueError:
            self.encoder = _FlattenAny(observation_space)
        self.head = nn.Sequential(
            nn.Linear(int(self.encoder.out_dim), hidden), nn.Tanh(),
            nn.Linear(hidden, hidden), nn.Tanh(),
            nn.Linear(hidden, 1),
        )

    def forward(self, obs: Obs) -> torch.Tensor:
        return self.head(self.encoder(obs)).squeeze(-1)


# ---------------------------------------------------------------------------------------------- callback
class RewardModuleCallback(BaseCallback):
    """Route a reward module's reward into an on-policy SB3 algorithm's update (PPO, A2C).

    Args:
        module: the reward module (``compute``/``update``; ``routing`` and ``episodic`` attributes).
        mode: a :class:`~rlcore.reward.RewardRouting` or its value, ``"intrinsic"``, ``"add"`` or
            ``"replace"``; default the module's ``routing`` (``"intrinsic"`` for exploration bonuses).
        coef: scale of the module's reward in ``add``/``replace`` modes.
        int_coef: weight of the intrinsic advantages in ``intrinsic`` mode.
        ext_coef: weight of SB3's extrinsic advantages in ``intrinsic`` mode.
        normalize: divide the module's reward by the running std of its discounted returns
            (:class:`~rlcore.normalization.DiscountedReturnNormalizer`); default True for intrinsic
            modules, False for others and for modules that normalise themselves (a module with
            ``normalize = True``, e.g. :class:`rewards.intrinsic.combine.IntrinsicReward`).
        gamma_int: discount of the intrinsic stream (``intrinsic`` mode); the normaliser uses it there
            and the algorithm's ``gamma`` in the other modes.
        lam_int: GAE lambda of the intrinsic stream (default: the algorithm's ``gae_lambda``).
        critic_lr, critic_epochs, critic_batch_size, critic_hidden: the intrinsic critic's Adam step
            size, passes over each rollout, minibatch size (transitions) and hidden width.
        update_module: call ``module.update(batch)`` after each rollout (train the bonus model).
        device: where batches and the critic live; default the module's device.
        log_prefix: logger key prefix; default ``"intrinsic"`` (modules routed ``INTRINSIC``) or
            ``"reward_model"``.
        name: name for errors and logs (default ``module.name`` or the class name).

    After each rollout ``last_batch`` holds the ``[T, N]`` batch, ``last_reward`` the float32[T, N]
    reward that was routed (after normalisation, before ``coef``), ``last_int_advantages`` the
    intrinsic advantages (``intrinsic`` mode) and ``last_metrics`` what was logged. Observations reach
    the module in the env's own layout (SB3's ``VecTransposeImage`` is undone). ``state_dict`` /
    ``load_state_dict`` checkpoint the critic and the normaliser.
    """

    def __init__(self, module: RewardModule, mode: Optional[RoutingLike] = None, coef: float = 1.0,
                 int_coef: float = 1.0, ext_coef: float = 1.0, normalize: Optional[bool] = None,
                 gamma_int: float = 0.99, lam_int: Optional[float] = None, critic_lr: float = 1e-3,
                 critic_epochs: int = 4, critic_batch_size: int = 256, critic_hidden: int = 64,
                 update_module: bool = True, device: Optional[torch.device | str] = None,
                 log_prefix: Optional[str] = None, name: Optional[str] = None, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.module = module
        routing = routing_of(module)
        self.mode = parse_routing(routing if mode is None else mode, name="RewardModuleCallback mode")
        self.coef, self.int_coef, self.ext_coef = float(coef), float(int_coef), float(ext_coef)
        self.normalize = _default_normalize(module) if normalize is None else bool(normalize)
        self.gamma_int, self.lam_int = float(gamma_int), lam_int
        self.critic_lr, self.critic_epochs = float(critic_lr), int(critic_epochs)
        self.critic_batch_size, self.critic_hidden = int(critic_batch_size), int(critic_hidden)
        self.update_module = bool(update_module)
        self.device = torch.device(device) if device is not None else module_device(module)
        self.log_prefix = log_prefix or ("intrinsic" if routing is RewardRouting.INTRINSIC else "reward_model")
        self.name = name or module_name(module)
        self.episodic = bool(getattr(module, "episodic", False))
        self.normalizer: Optional[DiscountedReturnNormalizer] = None
        self.critic: Optional[IntrinsicCritic] = None
        self.critic_optim: Optional[torch.optim.Optimizer] = None
        self.last_batch: Optional[TransitionBatch] = None
        self.last_reward: Optional[torch.Tensor] = None
        self.last_metrics: dict[str, float] = {}
        self.last_int_advantages: Optional[torch.Tensor] = None
        self._stream_next: Optional[Obs] = None
        self._generator: Optional[torch.Generator] = None
        self._pending_state: dict = {}
        self._obs_space: Optional[gym.Space] = None
        self._untranspose: bool | frozenset = False
        self._steps: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list]] = []
        self._state_source: Optional[_StateSource] = None
        self._state: Optional[dict[str, torch.Tensor]] = None
        self._state_steps: list[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]] = []

    # ------------------------------------------------------------------ checkpointing
    def state_dict(self) -> dict:
        """The callback's own state (intrinsic critic + optimiser, normaliser); the module saves itself."""
        out: dict = {}
        if self.critic is not None and self.critic_optim is not None:
            out["critic"] = self.critic.state_dict()
            out["critic_optim"] = self.critic_optim.state_dict()
        if self.normalizer is not None:
            out["normalizer"] = self.normalizer.state_dict()
        return out

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`. Before the first ``learn`` the state is kept and applied when
        the critic and normaliser are built."""
        self._pending_state = dict(state)
        self._apply_pending_state()

    def _apply_pending_state(self) -> None:
        state = self._pending_state
        if not state:
            return
        if "critic" in state and self.critic is not None and self.critic_optim is not None:
            self.critic.load_state_dict(state.pop("critic"))
            self.critic_optim.load_state_dict(state.pop("critic_optim"))
        if "normalizer" in state and self.normalizer is not None:
            self.normalizer.load_state_dict(state.pop("normalizer"))

    # ------------------------------------------------------------------ SB3 hooks
    def _init_callback(self) -> None:
        buffer = getattr(self.model, "rollout_buffer", None)
        if buffer is None or not hasattr(buffer, "compute_returns_and_advantage"):
            raise TypeError(
                f"RewardModuleCallback needs an on-policy algorithm with a rollout buffer (PPO, A2C); "
                f"{type(self.model).__name__} has none. Use RewardModuleVecEnvWrapper for off-policy algorithms."
            )
        # SB3 wraps image observations in VecTransposeImage (channel-first) outside the user's env;
        # the module sees observations in the env's own layout and space.
        env = self.model.get_env()
        transpose = unwrap_vec_wrapper(env, VecTransposeImage) if env is not None else None
        if transpose is not None:
            self._obs_space = transpose.venv.observation_space
            keys = getattr(transpose, "image_space_keys", None)
            self._untranspose = frozenset(keys) if isinstance(self._obs_space, spaces.Dict) else True
        else:
            self._obs_space, self._untranspose = self.model.observation_space, False
        gamma = self.gamma_int if self.mode is RewardRouting.INTRINSIC else float(self.model.gamma)
        if self.normalize and self.normalizer is None:
            self.normalizer = DiscountedReturnNormalizer(gamma).to(self.device)
        if self.mode is RewardRouting.INTRINSIC and self.critic is None:
            # The critic's initialisation and minibatch order draw from their own random streams, so
            # adding the callback leaves the algorithm's (seeded) stream, hence its rollouts, unchanged.
            seed = getattr(self.model, "seed", None)
            if seed is None:  # fresh OS entropy; draws nothing from numpy's or torch's global streams
                seed = int(np.random.SeedSequence().entropy % 2**31)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(seed) + 1)
                self.critic = IntrinsicCritic(self._obs_space, self.critic_hidden).to(self.device)
            self.critic_optim = torch.optim.Adam(self.critic.parameters(), lr=self.critic_lr)
            self._generator = torch.Generator(device=self.device).manual_seed(int(seed) + 2)
        self._apply_pending_state()
        if module_needs_state(self.module):
            self._state_source = _StateSource(env, self.module, self.name, self.device)

    def _on_rollout_start(self) -> None:
        self._steps = []
        self._state_steps = []
        if self._state_source is not None:
            self._state = self._state_source.current()

    def _on_step(self) -> bool:
        loc = self.locals
        if "new_obs" not in loc or "dones" not in loc:  # not inside collect_rollouts
            return True
        dones = np.asarray(loc["dones"], dtype=bool).copy()
        infos = loc["infos"]
        # rewards: copied now, before SB3 folds gamma * V(terminal_obs) into truncated steps
        rewards = np.array(loc["rewards"], dtype=np.float32, copy=True)
        actions = np.array(loc.get("clipped_actions", loc["actions"]), copy=True)
        trunc = _truncated_flags(dones, infos)
        done_idx = np.flatnonzero(dones)
        terminal = [(i, infos[i].get("terminal_observation")) for i in done_idx.tolist()]
        self._steps.append((actions, rewards, dones, trunc, terminal))
        if self._state_source is not None and self._state is not None:
            self._state_steps.append((self._state, self._state_source.final()))
            self._state = self._state_source.current()
        return True

    def _on_rollout_end(self) -> None:
        buffer = self.model.rollout_buffer
        if len(self._steps) != buffer.buffer_size:
            raise RuntimeError(
                f"RewardModuleCallback saw {len(self._steps)} steps but the rollout buffer holds "
                f"{buffer.buffer_size}; was on_step skipped?"
            )
        batch = self._build_batch(buffer)
        self.last_batch = batch
        with torch.no_grad():
            raw = self.module.compute(batch)
        if raw.shape != batch.batch_shape:
            raise ValueError(f"reward module '{self.name}' returned shape {tuple(raw.shape)}, "
                             f"expected {tuple(batch.batch_shape)}")
        raw = raw.float()
        check_finite(raw, self.name)
        reward = raw
        if self.normalizer is not None:
            cut = batch.done if (self.mode is not RewardRouting.INTRINSIC or self.episodic) else None
            reward = self.normalizer(raw, cut)
        self.last_reward = reward
        metrics: dict[str, float] = {f"{self.name}_raw_mean": float(raw.mean()),
                                     f"{self.name}_raw_std": float(raw.std()) if raw.numel() > 1 else 0.0,
                                     f"{self.name}_mean": float(reward.mean())}
        if self.mode is RewardRouting.INTRINSIC:
            metrics.update(self._separate_value(batch, reward, buffer))
        else:
            self._recompute(reward, buffer)
        if self.update_module:
            module_metrics = self.module.update(batch) or {}
            metrics.update({f"{self.name}/{k}": float(v) for k, v in module_metrics.items()})
        self.last_metrics = metrics
        for key, value in metrics.items():
            self.logger.record(f"{self.log_prefix}/{key}", value)

    # ------------------------------------------------------------------ pieces
    def _build_batch(self, buffer) -> TransitionBatch:
        """The rollout as a ``[T, N]`` batch; ``next_obs`` uses ``terminal_observation`` at episode ends."""
        T, N, dev, untr = buffer.buffer_size, buffer.n_envs, self.device, self._untranspose
        space = self._obs_space
        obs_np = buffer.observations  # [T, N, *obs_shape] (dict for Dict spaces)
        last_obs = self.locals["new_obs"]  # observation after the last step (stream order)
        if isinstance(obs_np, dict):
            nxt = {k: np.concatenate([v[1:], np.asarray(last_obs[k]).reshape(1, *v.shape[1:])], 0) for k, v in obs_np.items()}
        else:
            nxt = np.concatenate([obs_np[1:], np.asarray(last_obs).reshape(1, *obs_np.shape[1:])], 0)
        stream_next = _obs_to_torch(nxt, space, (T, N), dev, untr) if self.mode is RewardRouting.INTRINSIC else None
        terminal = [((t, i), term) for t, step in enumerate(self._steps) for i, term in step[4] if term is not None]
        if terminal:  # patch a copy so the stream order stays intact
            nxt = _copy_obs(nxt)
            _patch_terminal(nxt, terminal)
        actions = np.stack([s[0] for s in self._steps])
        rewards = np.stack([s[1] for s in self._steps])
        dones = np.stack([s[2] for s in self._steps])
        trunc = np.stack([s[3] for s in self._steps])
        obs = _obs_to_torch(obs_np, space, (T, N), dev, untr)
        next_obs = _obs_to_torch(nxt, space, (T, N), dev, untr)
        truncated = torch.as_tensor(trunc, device=dev)
        terminated = torch.as_tensor(dones, device=dev) & ~truncated
        self._stream_next = stream_next
        state = next_state = None
        if self._state_source is not None:
            if len(self._state_steps) != T:
                raise RuntimeError(f"RewardModuleCallback recorded state for {len(self._state_steps)} of {T} steps")
            state = _stack_states([s for s, _ in self._state_steps])
            next_state = _stack_states([n for _, n in self._state_steps])
        return TransitionBatch(
            obs=obs,
            action=_actions_to_torch(actions, self.model.action_space, (T, N), dev),
            reward=torch.as_tensor(rewards, device=dev),
            next_obs=next_obs,
            terminated=terminated,
            truncated=truncated,
            state=state,
            next_state=next_state,
        )

    def _recompute(self, reward: torch.Tensor, buffer) -> None:
        """add / replace: route the reward into the buffer's rewards and recompute GAE with SB3's code.

        ``ADD`` adds ``coef * reward`` to ``buffer.rewards`` (the env's reward, plus SB3's
        ``gamma * V(terminal_obs)`` on truncated steps); ``REPLACE`` replaces the env's part and keeps
        that bootstrap term.
        """
        current = torch.from_numpy(buffer.rewards)  # float32[T, N], shares memory with the buffer
        routed = route_reward(self.mode, current, reward.cpu().float(), self.coef)
        if self.mode is RewardRouting.REPLACE:
            env_rewards = torch.from_numpy(np.stack([s[1] for s in self._steps]))
            routed = routed + (current - env_rewards)  # gamma * V(terminal_obs) on truncated steps, else 0
        buffer.rewards[...] = routed.numpy()
        buffer.compute_returns_and_advantage(last_values=self.locals["values"], dones=self.locals["dones"])

    def _separate_value(self, batch: TransitionBatch, reward: torch.Tensor, buffer) -> dict[str, float]:
        """Intrinsic critic + GAE; adds ``int_coef * A_int`` to the buffer's advantages."""
        assert self.critic is not None and self.critic_optim is not None
        T, N = reward.shape
        lam = float(self.model.gae_lambda if self.lam_int is None else self.lam_int)
        critic = self.critic
        with torch.no_grad():
            values = critic(obs_flatten_leading(batch.obs, 2)).reshape(T, N)
            if self.episodic:
                next_values = critic(obs_flatten_leading(batch.next_obs, 2)).reshape(T, N)
                terminated, done = batch.terminated, batch.done
            else:
                next_values = critic(obs_flatten_leading(self._stream_next, 2)).reshape(T, N)
                terminated = done = torch.zeros_like(batch.terminated)
            adv, _ = compute_gae(reward, values, next_values, terminated, done, self.gamma_int, lam)
            returns = adv + values
        self._stream_next = None
        # train the critic on the rollout's intrinsic returns
        flat_obs = obs_flatten_leading(batch.obs, 2)
        flat_ret = returns.reshape(-1)
        n = flat_ret.shape[0]
        bs = min(self.critic_batch_size, n)
        losses = []
        for _ in range(self.critic_epochs):
            perm = torch.randperm(n, device=self.device, generator=self._generator)
            for start in range(0, n, bs):
                idx = perm[start : start + bs]
                loss = (critic(obs_index(flat_obs, idx)) - flat_ret[idx]).pow(2).mean()
                self.critic_optim.zero_grad(set_to_none=True)
                loss.backward()
                self.critic_optim.step()
                losses.append(loss.detach())
        self.last_int_advantages = adv
        adv_np = adv.cpu().numpy().astype(np.float32)
        if self.ext_coef != 1.0:
            buffer.advantages *= self.ext_coef
        buffer.advantages += self.int_coef * adv_np
        var_ret = returns.var()
        explained = 1.0 - (returns - values).var() / var_ret if float(var_ret) > 0 else torch.zeros(())
        return {
            "adv_int_mean": float(adv.mean()),
            "adv_int_std": float(adv.std()) if adv.numel() > 1 else 0.0,
            "value_int_mean": float(values.mean()),
            "critic_loss": float(torch.stack(losses).mean()) if losses else 0.0,
            "critic_explained_variance": float(explained),
        }


# ---------------------------------------------------------------------------------------------- wrapper
class RewardModuleVecEnvWrapper(VecEnvWrapper):
    """Adds a reward module's reward to a ``VecEnv``'s rewards at step time (any SB3 algorithm).

    Each step builds a ``[1, N]`` :class:`~rlcore.batch.TransitionBatch` (previous obs, action, env
    reward, true next obs with ``terminal_observation`` for finished envs, terminated, truncated),
    scores it, and returns :func:`~rlcore.reward.route_reward` of it: ``env_reward + coef * r``
    (``mode="add"``, default for ``ADD`` and ``INTRINSIC`` modules: a step-time wrapper has no value
    stream of its own to give them) or ``coef * r`` (``mode="replace"``, default for ``REPLACE``
    modules). Every ``update_every``
    steps ``module.update`` is called on the buffered ``[update_every, N]`` batch. Box and Dict
    observations are supported.

    Args:
        venv: the vectorised env (e.g. :class:`~rlcore.adapters.sb3.SB3VecEnv`).
        module: the reward module.
        coef: scale of the module's reward.
        mode: ``"add"`` or ``"replace"`` (or the :class:`~rlcore.reward.RewardRouting`); default from the
            module's ``routing`` as above.
        normalize: divide by the running std of the reward's discounted returns (default as in
            :class:`RewardModuleCallback`); ``gamma`` is that return's discount.
        update_every: steps (per env) between ``module.update`` calls; 0 never updates.
        device: where batches live; default the module's device.
        info_all_envs: also write ``extrinsic_reward``/``intrinsic_reward`` into the infos of envs that
            did not finish (finished envs always get them); costs a dict per env and step.
        name: name for errors (default ``module.name`` or the class name).

    ``last_metrics`` holds the metrics of the latest ``module.update``; ``last_bonus`` the latest
    float32[N] reward of the module (after normalisation, before ``coef``).
    """

    def __init__(self, venv: VecEnv, module: RewardModule, coef: float = 1.0, mode: Optional[RoutingLike] = None,
                 normalize: Optional[bool] = None, gamma: float = 0.99, update_every: int = 128,
                 device: Optional[torch.device | str] = None, info_all_envs: bool = False,
                 name: Optional[str] = None) -> None:
        super().__init__(venv)
        self.module = module
        if mode is None:
            mode = RewardRouting.REPLACE if routing_of(module) is RewardRouting.REPLACE else RewardRouting.ADD
        self.mode = parse_routing(mode, (RewardRouting.ADD, RewardRouting.REPLACE), name="RewardModuleVecEnvWrapper mode")
        self.coef = float(coef)
        self.normalize = _default_normalize(module) if normalize is None else bool(normalize)
        self.update_every = int(update_every)
        self.device = torch.device(device) if device is not None else module_device(module)
        self.info_all_envs = bool(info_all_envs)
        self.name = name or module_name(module)
        self.normalizer = DiscountedReturnNormalizer(gamma).to(self.device) if self.normalize else None
        self.last_metrics: dict[str, float] = {}
        self.last_bonus: Optional[np.ndarray] = None
        self._last_obs: Optional[VecEnvObs] = None
        self._actions: Optional[np.ndarray] = None
        self._pending: list[TransitionBatch] = []
        self._state_source = _StateSource(venv, module, self.name, self.device) if module_needs_state(module) else None
        self._state: Optional[dict[str, torch.Tensor]] = None

    def reset(self) -> VecEnvObs:
        obs = self.venv.reset()
        self._last_obs = _copy_obs(obs)
        if self._state_source is not None:
            self._state = self._state_source.current()
        self.module.reset(torch.ones(self.num_envs, dtype=torch.bool, device=self.device))
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.array(actions, copy=True)
        self.venv.step_async(actions)

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, dones, infos = self.venv.step_wait()
        if self._last_obs is None or self._actions is None:
            raise RuntimeError("RewardModuleVecEnvWrapper: call reset() and step_async() before step_wait()")
        N, dev, space = self.num_envs, self.device, self.observation_space
        dones = np.asarray(dones, dtype=bool)
        trunc = _truncated_flags(dones, infos)
        done_idx = np.flatnonzero(dones)
        next_obs = _copy_obs(obs)
        _patch_terminal(next_obs, [(i, infos[i].get("terminal_observation")) for i in done_idx.tolist()])
        truncated = torch.as_tensor(trunc, device=dev).reshape(1, N)
        terminated = torch.as_tensor(dones, device=dev).reshape(1, N) & ~truncated
        env_rewards = np.asarray(rewards, dtype=np.float32)
        state = next_state = None
        if self._state_source is not None and self._state is not None:
            state = {k: v.unsqueeze(0) for k, v in self._state.items()}
            next_state = {k: v.unsqueeze(0) for k, v in self._state_source.final().items()}
            self._state = self._state_source.current()
        batch = TransitionBatch(
            obs=_obs_to_torch(self._last_obs, space, (1, N), dev),
            action=_actions_to_torch(self._actions, self.action_space, (1, N), dev),
            reward=torch.as_tensor(env_rewards, device=dev).reshape(1, N),
            next_obs=_obs_to_torch(next_obs, space, (1, N), dev),
            terminated=terminated,
            truncated=truncated,
            state=state,
            next_state=next_state,
        )
        with torch.no_grad():
            r = self.module.compute(batch)
        if r.shape != batch.batch_shape:
            raise ValueError(f"reward module '{self.name}' returned shape {tuple(r.shape)}, expected {(1, N)}")
        r = r.float()
        if self.normalizer is not None:
            # checked before normalising so the normaliser's statistics never absorb NaN
            check_finite(r, self.name)
            r = self.normalizer(r, batch.done)
        bonus = r.reshape(N).cpu().numpy()  # the one device->host copy of the step
        if self.normalizer is None and not np.isfinite(bonus).all():
            check_finite(torch.from_numpy(bonus), self.name)
        self.last_bonus = bonus
        scaled = (self.coef * bonus).astype(np.float32)
        new_rewards = route_reward(self.mode, torch.from_numpy(env_rewards), torch.from_numpy(bonus), self.coef).numpy()
        if self.info_all_envs:
            for i in range(N):
                infos[i] = dict(infos[i])  # infos may share one empty dict between envs
                infos[i]["extrinsic_reward"] = float(env_rewards[i])
                infos[i]["intrinsic_reward"] = float(scaled[i])
        else:
            for i in done_idx.tolist():
                infos[i]["extrinsic_reward"] = float(env_rewards[i])
                infos[i]["intrinsic_reward"] = float(scaled[i])
        self._last_obs = _copy_obs(obs)
        self._actions = None
        if self.update_every > 0:
            self._pending.append(batch)
            if len(self._pending) >= self.update_every:
                self._update()
        return obs, new_rewards, dones, infos

    def state_dict(self) -> dict:
        """The wrapper's own state (normaliser); the module saves itself."""
        return {"normalizer": self.normalizer.state_dict()} if self.normalizer is not None else {}

    def load_state_dict(self, state: dict) -> None:
        if self.normalizer is not None and "normalizer" in state:
            self.normalizer.load_state_dict(state["normalizer"])

    def _update(self) -> None:
        steps, self._pending = self._pending, []
        batch = _cat_batches(steps)
        self.last_metrics = {k: float(v) for k, v in (self.module.update(batch) or {}).items()}


def _cat_batches(steps: list[TransitionBatch]) -> TransitionBatch:
    """Concatenate ``[1, N]`` batches along time into one ``[T, N]`` batch."""
    def cat(get):
        return None if get(steps[0]) is None else obs_cat([get(s) for s in steps])

    return TransitionBatch(
        obs=cat(lambda b: b.obs), action=cat(lambda b: b.action), reward=cat(lambda b: b.reward),
        next_obs=cat(lambda b: b.next_obs), terminated=cat(lambda b: b.terminated),
        truncated=cat(lambda b: b.truncated), state=cat(lambda b: b.state),
        next_state=cat(lambda b: b.next_state),
    )
