"""Gymnasium environments behind the :class:`~rlcore.env.BatchedEnv` contract.

:class:`GymnasiumBatchedEnv` wraps a gymnasium env id (built into a ``SyncVectorEnv`` or
``AsyncVectorEnv``) or an existing gymnasium ``VectorEnv`` that uses same-step auto-reset, and
converts everything it returns to torch tensors on ``device``::

    env = GymnasiumBatchedEnv("CartPole-v1", num_envs=8, device="cpu")
    obs, info = env.reset(seed=0)                  # obs: float32[8, 4]
    obs, rew, term, trunc, info = env.step(torch.zeros(8, dtype=torch.long))
    info["final_obs"]                              # float32[8, 4], terminal obs where done
    info["success"]                                # bool[8]

Conversions (``N = num_envs``):

* ``Box``            -> tensor ``[N, *shape]`` with the space's dtype, except float64 which becomes
                        float32 (``single_observation_space`` is updated to say so);
* ``Discrete``       -> int64 ``[N]``;  ``MultiDiscrete`` -> int64 ``[N, *nvec.shape]``;
* ``MultiBinary``    -> int8 ``[N, *shape]``;
* ``Dict`` (flat) of the above -> ``dict[str, Tensor]``; keys whose space cannot be a tensor
  (e.g. MiniGrid's ``mission`` text) are dropped and listed in :attr:`dropped_obs_keys`.

Self-description (:meth:`GymnasiumBatchedEnv.state_spec`, :meth:`GymnasiumBatchedEnv.task_info`):
Farama MiniGrid (family ``"minigrid"``, success = terminated with positive reward, the
:class:`~rlcore.spec.SymbolicGrid` vocabulary read from ``minigrid.core.constants`` and attached to the
observation space), MuJoCo (``"mujoco"``, ``qpos``/``qvel`` state, no success rule) and any other
gymnasium env (family = the package of its entry point, e.g. ``"classic_control"``; no state).

The environments run on the host, so ``step`` copies actions device->host once and every returned
array host->device once; this is the one place in the library where that is expected.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv, VectorEnv

from rlcore.env import BatchedEnv, StepResult
from rlcore.spec import StateField, SymbolicGrid, TaskInfo, describe_grid_obs
from rlcore.tensors import Obs

__all__ = ["FinalStateInfo", "GymnasiumBatchedEnv", "make_gym_env", "registered_ids"]

#: Env-id prefixes whose registration lives in the ``minigrid`` package (the library's one copy).
_MINIGRID_PREFIXES = ("MiniGrid-", "BabyAI-")
#: packages that register gymnasium ids when imported
_PLUGINS = ("minigrid",)
#: Farama MiniGrid's ``agent_dir`` codes (``DIR_TO_VEC``)
_MINIGRID_DIRECTIONS = {0: "right (+x)", 1: "down (+y)", 2: "left (-x)", 3: "up (-y)"}
#: what each Farama MiniGrid action (``minigrid.core.actions.Actions``) does
_MINIGRID_ACTIONS = {
    "left": "turn left (counter-clockwise)",
    "right": "turn right (clockwise)",
    "forward": "move one cell in the facing direction (blocked by walls, closed doors and objects)",
    "pickup": "pick up the object in front (keys, balls, boxes) if the hand is empty",
    "drop": "drop the carried object onto the empty cell in front",
    "toggle": "open/close the door in front (a locked door needs a carried key of its colour), open a box",
    "done": "no-op",
}

Wrapper = Callable[[gym.Env], gym.Env]


# ---------------------------------------------------------------------------------------- helpers
def registered_ids() -> set[str]:
    """Every registered gymnasium id, after importing the packages that register more (MiniGrid)."""
    import importlib

    for plugin in _PLUGINS:
        try:
            importlib.import_module(plugin)
        except ImportError:
            pass
    return set(gym.registry.keys())


def _minigrid_vocabulary() -> SymbolicGrid:
    """Farama MiniGrid's cell encoding (``minigrid.core.constants``) as a :class:`SymbolicGrid`."""
    from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX, STATE_TO_IDX

    def names(table: dict[str, int]) -> tuple[str, ...]:
        return tuple(sorted(table, key=table.__getitem__))

    blocking = tuple(OBJECT_TO_IDX[k] for k in ("wall", "door", "key", "ball", "box"))
    return SymbolicGrid(objects=names(OBJECT_TO_IDX), colors=names(COLOR_TO_IDX), states=names(STATE_TO_IDX),
                        wall=OBJECT_TO_IDX["wall"], blocking=blocking, open_state=STATE_TO_IDX["open"])


def _minigrid_action_meanings(num_actions: int) -> tuple[str, ...]:
    """``"name: meaning"`` of Farama MiniGrid's first ``num_actions`` actions, in code order."""
    from minigrid.core.actions import Actions

    return tuple(f"{a.name}: {_MINIGRID_ACTIONS.get(a.name, a.name)}" for a in Actions)[:num_actions]


def _entry_point_family(env_id: str) -> str:
    """``"classic_control"`` for ``gymnasium.envs.classic_control...``, else the entry point's top package."""
    try:
        entry = gym.spec(env_id).entry_point
    except gym.error.Error:
        return "other"
    module = entry.split(":")[0] if isinstance(entry, str) else getattr(entry, "__module__", "") or ""
    parts = module.split(".")
    if parts[:2] == ["gymnasium", "envs"] and len(parts) > 2:
        return parts[2]
    return parts[0] or "other"


def _ensure_registered(env_id: str) -> None:
    """Import the package that registers ``env_id`` (MiniGrid) and check the id exists.

    Raises ``ValueError`` naming the id when gymnasium does not know it.
    """
    if env_id.startswith(_MINIGRID_PREFIXES):
        try:
            import minigrid  # noqa: F401  (registers MiniGrid-* and BabyAI-* ids)
        except ImportError as exc:  # pragma: no cover - minigrid is a dependency
            raise ValueError(f"env id {env_id!r} needs the 'minigrid' package: {exc}") from exc
    try:
        gym.spec(env_id)
    except gym.error.Error as exc:
        raise ValueError(f"unknown gymnasium env id {env_id!r}: {exc}") from exc


def _make_env_fn(env_id: str, wrappers: Sequence[Wrapper], make_kwargs: dict[str, Any]) -> Callable[[], gym.Env]:
    """A picklable thunk that builds one wrapped env (also in a worker process); MiniGrid and MuJoCo
    envs get :class:`FinalStateInfo` outermost, so their final privileged state survives auto-reset."""

    def thunk() -> gym.Env:
        if env_id.startswith(_MINIGRID_PREFIXES):
            import minigrid  # noqa: F401  (registration inside worker processes)
        env = gym.make(env_id, **make_kwargs)
        for wrap in wrappers:
            env = wrap(env)
        if _state_reader(env.unwrapped) is not None:
            env = FinalStateInfo(env)
        return env

    return thunk


# ------------------------------------------------------------------------------- privileged state
#: ``info`` key under which :class:`FinalStateInfo` puts the privileged state at an episode's end.
FINAL_STATE_INFO_KEY = "privileged_state"


def _minigrid_state(env: gym.Env) -> dict[str, np.ndarray]:
    """``agent_pos`` int64[2] (x, y), ``agent_dir`` int64[] of a Farama ``MiniGridEnv``."""
    return {"agent_pos": np.asarray(env.agent_pos, dtype=np.int64).reshape(2),
            "agent_dir": np.asarray(env.agent_dir, dtype=np.int64).reshape(())}


def _mujoco_state(env: gym.Env) -> dict[str, np.ndarray]:
    """``qpos`` float32[nq], ``qvel`` float32[nv] of a gymnasium ``MujocoEnv``."""
    sv = np.asarray(env.state_vector(), dtype=np.float32)
    nq = int(np.asarray(env.init_qpos).shape[0])
    return {"qpos": sv[:nq].copy(), "qvel": sv[nq:].copy()}


def _state_reader(unwrapped: gym.Env) -> Callable[[gym.Env], dict[str, np.ndarray]] | None:
    """The privileged-state reader for this (unwrapped) env, or None if it has none."""
    try:
        from minigrid.minigrid_env import MiniGridEnv
        if isinstance(unwrapped, MiniGridEnv):
            return _minigrid_state
    except ImportError:  # pragma: no cover - minigrid is a dependency
        pass
    try:
        from gymnasium.envs.mujoco.mujoco_env import MujocoEnv
        if isinstance(unwrapped, MujocoEnv):
            return _mujoco_state
    except Exception:  # mujoco not installed
        pass
    return None


class FinalStateInfo(gym.Wrapper):
    """Puts the privileged state reached by an episode's last step into that step's ``info``.

    Gymnasium's same-step auto-reset resets a sub-env right after its last step, so the vector env
    only keeps that step's ``info`` (as ``info["final_info"]``). This wrapper adds
    ``info["privileged_state"]`` (MiniGrid: ``agent_pos`` int64[2], ``agent_dir`` int64[]; MuJoCo:
    ``qpos`` float32[nq], ``qvel`` float32[nv]) on steps that end an episode only, so ordinary steps
    pay one Python call. :class:`GymnasiumBatchedEnv` adds it to envs it builds from an id; wrap each
    sub-env of a ``VectorEnv`` you build yourself with it to get ``info["final_state"]`` from one.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        reader = _state_reader(env.unwrapped)
        if reader is None:
            raise ValueError(f"FinalStateInfo: no privileged state known for {type(env.unwrapped).__name__} "
                             "(MiniGrid and MuJoCo envs have one)")
        self._read = reader

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            info = {**info, FINAL_STATE_INFO_KEY: self._read(self.env.unwrapped)}
        return obs, reward, terminated, truncated, info


def _tensorable(space: spaces.Space) -> bool:
    return isinstance(space, (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary))


def _host_dtype(space: spaces.Space) -> np.dtype:
    """numpy dtype the adapter emits for a (non-Dict) space."""
    if isinstance(space, (spaces.Discrete, spaces.MultiDiscrete)):
        return np.dtype(np.int64)
    if isinstance(space, spaces.MultiBinary):
        return np.dtype(np.int8)
    if isinstance(space, spaces.Box):
        return np.dtype(np.float32) if space.dtype == np.float64 else np.dtype(space.dtype)
    raise TypeError(f"unsupported space {space}")


def _converted_space(space: spaces.Space) -> spaces.Space:
    """The space as the adapter emits it (float64 Box -> float32, Discrete dtype int64)."""
    if isinstance(space, spaces.Box) and space.dtype == np.float64:
        return spaces.Box(space.low.astype(np.float32), space.high.astype(np.float32), space.shape, np.float32)
    if isinstance(space, spaces.Discrete) and space.dtype != np.int64:
        return spaces.Discrete(int(space.n), start=int(space.start))
    return space


def _is_minigrid(vec: VectorEnv, env_id: str) -> bool:
    if env_id.startswith(_MINIGRID_PREFIXES):
        return True
    if isinstance(vec, SyncVectorEnv):
        try:
            from minigrid.minigrid_env import MiniGridEnv
        except ImportError:  # pragma: no cover
            return False
        return isinstance(vec.envs[0].unwrapped, MiniGridEnv)
    return False


def _is_mujoco(vec: VectorEnv, env_id: str) -> bool:
    if isinstance(vec, SyncVectorEnv):
        try:
            from gymnasium.envs.mujoco.mujoco_env import MujocoEnv
        except Exception:  # mujoco not installed
            return False
        return isinstance(vec.envs[0].unwrapped, MujocoEnv)
    if env_id:
        try:
            entry = gym.spec(env_id).entry_point
        except gym.error.Error:
            return False
        return isinstance(entry, str) and entry.startswith("gymnasium.envs.mujoco")
    return False


# ------------------------------------------------------------------------------------------ class
class GymnasiumBatchedEnv(BatchedEnv):
    """A gymnasium env id or ``VectorEnv`` adapted to the batched-env contract.

    Args:
        env: a registered gymnasium env id (``"CartPole-v1"``, ``"MiniGrid-DoorKey-5x5-v0"``,
            ``"HalfCheetah-v5"``) or a gymnasium ``VectorEnv`` built with
            ``autoreset_mode=AutoresetMode.SAME_STEP``.
        num_envs: number of copies ``N`` (ignored, and must match, when ``env`` is a VectorEnv).
        device: torch device every returned tensor lives on.
        vectorization: ``"sync"`` (one process, ``SyncVectorEnv``) or ``"async"`` (worker
            processes, ``AsyncVectorEnv``); only used with an env id.
        wrappers: callables ``env -> env`` applied, in order, to each single env (env id only).
        **make_kwargs: forwarded to ``gymnasium.make`` (e.g. ``max_episode_steps=5``).

    Raises:
        ValueError: unknown env id, bad ``vectorization``, a VectorEnv without same-step
            auto-reset, or an observation space that cannot be expressed as tensors.
    """

    def __init__(
        self,
        env: str | VectorEnv,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        vectorization: str = "sync",
        wrappers: Sequence[Wrapper] | None = None,
        **make_kwargs: Any,
    ) -> None:
        self.device = torch.device(device)
        if isinstance(env, VectorEnv):
            mode = env.metadata.get("autoreset_mode")
            if mode != AutoresetMode.SAME_STEP:
                raise ValueError(
                    "GymnasiumBatchedEnv needs a VectorEnv with autoreset_mode=AutoresetMode.SAME_STEP, "
                    f"got {mode!r}"
                )
            if wrappers or make_kwargs:
                raise ValueError("wrappers/make_kwargs only apply when an env id is given")
            self._vec: VectorEnv = env
            spec = getattr(env, "spec", None)
            if spec is None:
                try:
                    spec = env.get_attr("spec")[0]
                except Exception:  # sub-envs without a spec
                    spec = None
            self.env_id = spec.id if spec is not None else ""
        elif isinstance(env, str):
            if num_envs < 1:
                raise ValueError(f"num_envs must be >= 1, got {num_envs}")
            _ensure_registered(env)
            thunk = _make_env_fn(env, list(wrappers or []), dict(make_kwargs))
            fns = [thunk for _ in range(num_envs)]
            if vectorization == "sync":
                self._vec = SyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)
            elif vectorization == "async":
                self._vec = AsyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)
            else:
                raise ValueError(f"vectorization must be 'sync' or 'async', got {vectorization!r}")
            self.env_id = env
        else:
            raise TypeError(f"env must be a gymnasium env id or VectorEnv, got {type(env).__name__}")

        self.num_envs = int(self._vec.num_envs)
        self.single_action_space = self._vec.single_action_space
        raw_space = self._vec.single_observation_space
        self.dropped_obs_keys: tuple[str, ...] = ()
        if isinstance(raw_space, spaces.Dict):
            kept = {k: s for k, s in raw_space.spaces.items() if _tensorable(s)}
            self.dropped_obs_keys = tuple(k for k in raw_space.spaces if k not in kept)
            if not kept:
                raise ValueError(f"no observation key of {self.env_id!r} can be a tensor: {raw_space}")
            self._obs_dtypes: dict[str, np.dtype] | np.dtype = {k: _host_dtype(s) for k, s in kept.items()}
            self.single_observation_space = spaces.Dict({k: _converted_space(s) for k, s in kept.items()})
        elif _tensorable(raw_space):
            self._obs_dtypes = _host_dtype(raw_space)
            self.single_observation_space = _converted_space(raw_space)
        else:
            raise ValueError(
                f"observation space {raw_space} of {self.env_id!r} is not Box/Discrete/MultiDiscrete/"
                "MultiBinary or a flat Dict of those; add a wrapper (e.g. FlattenObservation)"
            )
        act = self.single_action_space
        self._act_dtype = np.dtype(act.dtype) if act.dtype is not None else None

        self._minigrid = _is_minigrid(self._vec, self.env_id)
        self._mujoco = (not self._minigrid) and _is_mujoco(self._vec, self.env_id)
        self._nq = int(np.asarray(self._vec.get_attr("init_qpos")[0]).shape[0]) if self._mujoco else 0
        self._nv = int(np.asarray(self._vec.get_attr("init_qvel")[0]).shape[0]) if self._mujoco else 0
        self._grid_size: tuple[int, int] | None = None
        if self._minigrid:
            self._grid_size = (int(self._vec.get_attr("width")[0]), int(self._vec.get_attr("height")[0]))
            self._describe_symbolic_image()
        # Sync/Async vector envs with copy=True hand out fresh arrays on every step; CPU tensors
        # may then share their memory instead of copying them again.
        self._fresh = isinstance(self._vec, (SyncVectorEnv, AsyncVectorEnv)) and bool(getattr(self._vec, "copy", False))

    def _describe_symbolic_image(self) -> None:
        """Attach MiniGrid's vocabulary to the observation space when ``image`` is the symbolic encoding:
        the agent's view or the whole grid (``FullyObsWrapper``), not e.g. an RGB rendering."""
        space = self.single_observation_space
        if not isinstance(space, spaces.Dict) or "image" not in space.spaces:
            return
        view = int(self._vec.get_attr("agent_view_size")[0])
        width, height = self._grid_size or (0, 0)
        if tuple(space.spaces["image"].shape) in ((view, view, 3), (width, height, 3)):
            describe_grid_obs(space, _minigrid_vocabulary())

    # --------------------------------------------------------------------------- self-description
    def state_spec(self) -> dict[str, StateField]:
        """The keys of :meth:`get_state`: MiniGrid ``agent_pos``/``agent_dir``, MuJoCo ``qpos``/``qvel``, else none."""
        if self._minigrid:
            return {"agent_pos": StateField(torch.int64, (2,), "(x, y) grid cell of the agent; x = column, y = row (down)"),
                    "agent_dir": StateField(torch.int64, (), "heading: 0 right (+x), 1 down (+y), 2 left, 3 up",
                                                     {"direction": _MINIGRID_DIRECTIONS})}
        if self._mujoco:
            return {"qpos": StateField(torch.float32, (self._nq,), "MuJoCo generalised positions data.qpos (m, rad; "
                                       "free joints: position then unit quaternion w, x, y, z)"),
                    "qvel": StateField(torch.float32, (self._nv,), "MuJoCo generalised velocities data.qvel (m/s, rad/s)")}
        return {}

    def task_info(self) -> TaskInfo:
        """Family, success rule and (MiniGrid) symbolic-grid vocabulary of the wrapped task."""
        reported = "info['success'] is the env's own info['is_success'] / info['success'] at an episode's end"
        if self._minigrid:
            return TaskInfo(family="minigrid", has_success=True,
                            success_rule="the episode terminates with reward > 0 (Farama MiniGrid rewards only "
                                         f"completing the mission), unless the env reports success itself: {reported}",
                            grid=_minigrid_vocabulary(), grid_size=self._grid_size, grid_key=None,
                            action_meanings=_minigrid_action_meanings(int(getattr(self.single_action_space, "n", 0))),
                            notes="get_state() has agent_pos and agent_dir only (no grid)")
        family = "mujoco" if self._mujoco else (_entry_point_family(self.env_id) if self.env_id else "other")
        return TaskInfo(family=family, has_success=False,
                        success_rule=f"not defined by the task: info['success'] is False, except that {reported} "
                                     "where the env reports one")

    # --------------------------------------------------------------------------- properties
    @property
    def vector_env(self) -> VectorEnv:
        """The underlying gymnasium ``VectorEnv`` (host-side)."""
        return self._vec

    @property
    def render_mode(self) -> str | None:
        return getattr(self._vec, "render_mode", None)

    # --------------------------------------------------------------------------- conversion
    def _host_obs(self, obs: Any) -> dict[str, np.ndarray] | np.ndarray:
        """Batched gymnasium obs -> contiguous numpy with the emitted dtypes (drops text keys)."""
        if isinstance(self._obs_dtypes, dict):
            return {k: np.ascontiguousarray(obs[k], dtype=dt) for k, dt in self._obs_dtypes.items()}
        return np.ascontiguousarray(obs, dtype=self._obs_dtypes)

    def _to_device(self, arr: np.ndarray, fresh: bool = False) -> torch.Tensor:
        """One host->device copy. On CPU the tensor shares ``arr``'s memory when ``fresh`` says
        nobody else holds it, and is a copy otherwise (never aliasing gymnasium's buffers)."""
        t = torch.from_numpy(arr)
        if self.device.type == "cpu":
            return t if fresh else t.clone()
        return t.to(self.device)

    def _obs_to_device(self, obs: dict[str, np.ndarray] | np.ndarray, fresh: bool = False) -> Obs:
        if isinstance(obs, dict):
            return {k: self._to_device(v, fresh) for k, v in obs.items()}
        return self._to_device(obs, fresh)

    # --------------------------------------------------------------------------- contract
    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Obs, dict[str, Any]]:
        """Reset every env; env ``i`` is seeded with ``seed + i``.

        Returns:
            obs: as described in the module docstring; info: ``{}``.
        """
        obs, _ = self._vec.reset(seed=seed, options=options)
        host = self._host_obs(obs)
        return self._obs_to_device(host, self._fresh), {}

    def step(self, actions: torch.Tensor) -> StepResult:
        """Step all envs; finished ones auto-reset in the same step.

        Args:
            actions: int64[N] (Discrete) or float32[N, A] (Box) on ``self.device``.

        Returns:
            obs, reward float32[N], terminated bool[N], truncated bool[N], info with
            ``final_obs`` (same structure as obs) and ``success`` bool[N].
        """
        actions = self.check_actions(actions)
        act_np = actions.cpu().numpy()  # the one device->host copy
        if self._act_dtype is not None and act_np.dtype != self._act_dtype:
            act_np = act_np.astype(self._act_dtype)
        obs, reward, terminated, truncated, info = self._vec.step(act_np)

        host_obs = self._host_obs(obs)
        terminated = np.asarray(terminated, dtype=np.bool_)
        truncated = np.asarray(truncated, dtype=np.bool_)
        reward = np.asarray(reward, dtype=np.float32)
        done = terminated | truncated

        # final_obs: rows of finished envs hold the terminal obs, others equal obs.
        if done.any():
            final_host: dict[str, np.ndarray] | np.ndarray
            if isinstance(host_obs, dict):
                final_host = {k: v.copy() for k, v in host_obs.items()}
            else:
                final_host = host_obs.copy()
            raw_final = info.get("final_obs")
            mask = info.get("_final_obs", done)
            for i in np.flatnonzero(mask):  # loop over finished envs only
                last = raw_final[i]
                if isinstance(final_host, dict):
                    for k, dt in self._obs_dtypes.items():  # type: ignore[union-attr]
                        final_host[k][i] = np.asarray(last[k], dtype=dt)
                else:
                    final_host[i] = np.asarray(last, dtype=self._obs_dtypes)  # type: ignore[arg-type]
            success = self._success(info, terminated, truncated, reward, done)
            final_obs: Obs = self._obs_to_device(final_host, fresh=True)
            new_obs: Obs = self._obs_to_device(host_obs, self._fresh)
        else:
            success = np.zeros(self.num_envs, dtype=np.bool_)
            new_obs = self._obs_to_device(host_obs, self._fresh)
            final_obs = new_obs  # no env finished: final_obs == obs (shared tensors, read-only use)

        fresh = self._fresh
        out_info: dict[str, Any] = {"final_obs": final_obs, "success": self._to_device(success, fresh=True)}
        if self.record_final_state:
            out_info["final_state"] = self.final_state = self._final_state(info, done)
        return (
            new_obs,
            self._to_device(reward, fresh),
            self._to_device(terminated, fresh),
            self._to_device(truncated, fresh),
            out_info,
        )

    def _success(
        self,
        info: dict[str, Any],
        terminated: np.ndarray,
        truncated: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
    ) -> np.ndarray:
        """bool[N]: the env's ``is_success``/``success`` at episode end, else the MiniGrid rule
        (terminated with positive reward), else all False."""
        final_info = info.get("final_info", {})
        for key in ("is_success", "success"):
            if key in final_info:
                vals = np.asarray(final_info[key]).astype(np.bool_)
                has = np.asarray(final_info.get(f"_{key}", done), dtype=np.bool_)
                return vals & has & done
        if self._minigrid:
            return terminated & (reward > 0)
        return terminated & False

    def _final_state(self, info: dict[str, Any], done: np.ndarray) -> dict[str, torch.Tensor]:
        """``info["final_state"]``: :meth:`get_state` (fresh tensors) with the rows of finished envs
        replaced by the state :class:`FinalStateInfo` read before their reset.

        Raises ``RuntimeError`` if a finished env did not report it (a ``VectorEnv`` whose sub-envs
        lack the :class:`FinalStateInfo` wrapper).
        """
        state = self.get_state()
        if not state or not done.any():
            return state
        final_info = info.get("final_info", {})
        recorded = final_info.get(FINAL_STATE_INFO_KEY)
        has = np.asarray(final_info.get(f"_{FINAL_STATE_INFO_KEY}", np.zeros_like(done)), dtype=np.bool_)
        missing = np.flatnonzero(done & ~has)
        if recorded is None or missing.size:
            raise RuntimeError(
                f"{self.env_id or 'the VectorEnv'}: record_final_state is set but envs {missing.tolist()} finished "
                f"without info[{FINAL_STATE_INFO_KEY!r}]; wrap each sub-env with "
                "rlcore.adapters.gymnasium.FinalStateInfo (done automatically for envs built from an id)")
        rows = torch.as_tensor(np.flatnonzero(done), device=self.device)
        out = {}
        for key, current in state.items():
            if key not in recorded:
                raise RuntimeError(f"{self.env_id}: final state has no {key!r}; it has {sorted(recorded)}")
            values = torch.as_tensor(np.asarray(recorded[key])[done], dtype=current.dtype).to(self.device)
            out[key] = current.index_put((rows,), values)
        return out

    def get_state(self) -> dict[str, torch.Tensor]:
        """Privileged state, leading dim ``N``.

        * MiniGrid: ``agent_pos`` int64[N, 2] (x, y grid cells), ``agent_dir`` int64[N] (0=right,
          1=down, 2=left, 3=up).
        * MuJoCo: ``qpos`` float32[N, nq], ``qvel`` float32[N, nv] (generalised coordinates, SI).
        * otherwise ``{}``.
        """
        if self._minigrid:
            pos = np.asarray(self._vec.get_attr("agent_pos"), dtype=np.int64).reshape(self.num_envs, 2)
            direction = np.asarray(self._vec.get_attr("agent_dir"), dtype=np.int64).reshape(self.num_envs)
            return {"agent_pos": self._to_device(pos), "agent_dir": self._to_device(direction)}
        if self._mujoco:
            sv = np.stack([np.asarray(s) for s in self._vec.call("state_vector")]).astype(np.float32)
            return {
                "qpos": self._to_device(np.ascontiguousarray(sv[:, : self._nq])),
                "qvel": self._to_device(np.ascontiguousarray(sv[:, self._nq :])),
            }
        return {}

    # --------------------------------------------------------------------------- per-env access
    def get_attr(self, name: str) -> tuple[Any, ...]:
        """Attribute ``name`` of every sub-env (through wrappers), host-side."""
        return tuple(self._vec.get_attr(name))

    def set_attr(self, name: str, values: Any) -> None:
        """Set attribute ``name`` on every sub-env (one value, or a list of ``N``)."""
        self._vec.set_attr(name, values)

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """Call method ``name`` on every sub-env and return the results."""
        return tuple(self._vec.call(name, *args, **kwargs))

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper]) -> list[bool]:
        """Whether each sub-env is wrapped with ``wrapper_class`` (always False with async workers)."""
        if not isinstance(self._vec, SyncVectorEnv):
            return [False] * self.num_envs
        out = []
        for env in self._vec.envs:
            found = False
            while isinstance(env, gym.Wrapper):
                if isinstance(env, wrapper_class):
                    found = True
                    break
                env = env.env
            out.append(found)
        return out

    def close(self) -> None:
        self._vec.close()


def make_gym_env(
    env_id: str,
    num_envs: int = 1,
    device: str | torch.device = "cpu",
    seed: int | None = None,
    **kwargs: Any,
) -> GymnasiumBatchedEnv:
    """Build a :class:`GymnasiumBatchedEnv`; with ``seed``, reset it once with that seed so later
    resets without a seed are reproducible. ``kwargs`` go to the constructor."""
    env = GymnasiumBatchedEnv(env_id, num_envs=num_envs, device=device, **kwargs)
    if seed is not None:
        env.reset(seed=seed)
        env.single_action_space.seed(seed)
    return env
