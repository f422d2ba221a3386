"""Any :class:`~rlcore.env.BatchedEnv` as a stable-baselines3 ``VecEnv``.

:class:`SB3VecEnv` lets SB3 algorithms (PPO, A2C, DQN, SAC, ...) and SB3 VecEnv wrappers
(``VecNormalize``, ``VecMonitor``, ``VecFrameStack``, ``VecCheckNan``) run on the library's batched,
on-device environments::

    from stable_baselines3 import PPO
    venv = SB3VecEnv(GymnasiumBatchedEnv("CartPole-v1", num_envs=8))
    PPO("MlpPolicy", venv).learn(10_000)

Per step the bridge

* moves the SB3 actions host->device once;
* packs next obs, final obs, reward, terminated, truncated, success and the running episode
  return/length into ONE byte buffer on the device (``torch.cat`` of byte views, ordered by element
  size so every field stays aligned) and copies it device->host with a single ``.cpu()``; the
  numpy arrays handed to SB3 are zero-copy views into that host buffer;
* builds an info dict only for finished envs (``terminal_observation``, ``TimeLimit.truncated``,
  ``is_success``, ``episode``); every other env gets a fresh empty ``{}`` (or, with
  ``shared_empty_info=True``, one shared empty dict).

Per-step host work is therefore O(N) only in the list of empty dicts (about 20 ns per env) plus
O(number of finished envs); the environment itself never runs a Python loop over envs.
"""

from __future__ import annotations

import time
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvObs, VecEnvStepReturn

from rlcore.env import BatchedEnv
from rlcore.tensors import Obs

__all__ = ["SB3VecEnv"]

_OBS = "__obs__"  # key used for a non-Dict observation in the packing plan


def _torch_dtype(np_dtype: np.dtype) -> torch.dtype:
    return torch.from_numpy(np.empty(0, dtype=np_dtype)).dtype


def _numpy_dtype(t_dtype: torch.dtype) -> np.dtype:
    return torch.empty(0, dtype=t_dtype).numpy().dtype


class _Field:
    """One tensor's place in the packed byte buffer."""

    __slots__ = ("name", "np_dtype", "shape", "start", "stop")

    def __init__(self, name: tuple[str, str], np_dtype: np.dtype, shape: tuple[int, ...], start: int, stop: int):
        self.name, self.np_dtype, self.shape, self.start, self.stop = name, np_dtype, shape, start, stop


def _as_dtype(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return t if t.dtype == dtype else t.to(dtype)


def _view(host: np.ndarray, f: _Field) -> np.ndarray:
    """Zero-copy numpy view of field ``f`` in the host byte buffer."""
    return host[f.start : f.stop].view(f.np_dtype).reshape(f.shape)


class SB3VecEnv(VecEnv):
    """Expose a :class:`~rlcore.env.BatchedEnv` through SB3's ``VecEnv`` API.

    Args:
        env: the batched environment (any device). Its ``single_observation_space`` and
            ``single_action_space`` become ``observation_space`` / ``action_space``.
        track_episodes: keep the running episode return and length (float32, exact up to 2**24
            steps) on the device and put SB3's ``info["episode"] = {"r", "l", "t"}`` (return, steps, seconds
            since construction) into the info of finished envs, like SB3's ``Monitor``.
        shared_empty_info: give every unfinished env the same empty dict instead of a fresh ``{}``
            (saves about 20 ns per env and step; only safe when no callback or wrapper writes into
            the info of an env that did not finish).

    Shapes returned to SB3 (``N = num_envs``): obs ``[N, ...]`` numpy (dict of arrays for a
    Dict space) with the observation space's dtypes, rewards float32[N], dones bool[N],
    infos ``list[dict]`` of length ``N``.
    """

    def __init__(self, env: BatchedEnv, track_episodes: bool = True, shared_empty_info: bool = False) -> None:
        self.env = env
        self.shared_empty_info = shared_empty_info
        self._empty_info: dict[str, Any] = {}
        self.device = env.device
        self.track_episodes = track_episodes
        obs_space = env.single_observation_space
        if isinstance(obs_space, spaces.Dict):
            self._obs_keys: list[str] | None = list(obs_space.spaces)
            self._obs_tdtypes = {k: _torch_dtype(s.dtype) for k, s in obs_space.spaces.items()}
        else:
            self._obs_keys = None
            self._obs_tdtypes = {_OBS: _torch_dtype(obs_space.dtype)}
        super().__init__(env.num_envs, obs_space, env.single_action_space)
        self._act_space = env.single_action_space
        if isinstance(self._act_space, spaces.Discrete):
            self._act_shape: tuple[int, ...] = (self.num_envs,)
        else:
            self._act_shape = (self.num_envs, *(self._act_space.shape or ()))
        self._actions: torch.Tensor | None = None
        # packing plans (field layout of the byte buffer), one per call site, keyed by signature
        self._plans: dict[str, tuple[tuple, list[int], dict[tuple[str, str], _Field]]] = {}
        self._t_start = time.time()
        # running episode stats on the device: row 0 return (reward units), row 1 length (steps)
        self._ep = torch.zeros(2, self.num_envs, dtype=torch.float32, device=self.device)
        self._ones = torch.ones(self.num_envs, dtype=torch.float32, device=self.device)

    # ------------------------------------------------------------------ packing (one D2H copy)
    def _obs_items(self, obs: Obs, prefix: str) -> list[tuple[tuple[str, str], torch.Tensor]]:
        if self._obs_keys is None:
            assert isinstance(obs, torch.Tensor)
            return [((prefix, _OBS), _as_dtype(obs, self._obs_tdtypes[_OBS]))]
        assert isinstance(obs, dict)
        return [((prefix, k), _as_dtype(obs[k], self._obs_tdtypes[k])) for k in self._obs_keys]

    def _pack(self, site: str, items: list[tuple[tuple[str, str], torch.Tensor]]) -> tuple[np.ndarray, dict]:
        """Concatenate the byte views of ``items`` on the device and copy them to the host once.

        Returns the host byte buffer and the field layout; :func:`_view` reads a field from it as a
        zero-copy numpy array. Fields are ordered by decreasing element size so each stays aligned.
        """
        sig = tuple((t.dtype, t.shape) for _, t in items)
        plan = self._plans.get(site)
        if plan is None or plan[0] != sig:
            order = sorted(range(len(items)), key=lambda i: -items[i][1].element_size())
            fields, offset = {}, 0
            for i in order:
                name, t = items[i]
                nbytes = t.numel() * t.element_size()
                fields[name] = _Field(name, _numpy_dtype(t.dtype), tuple(t.shape), offset, offset + nbytes)
                offset += nbytes
            plan = (sig, order, fields)
            self._plans[site] = plan
        _, order, fields = plan
        chunks = []
        for i in order:
            t = items[i][1]
            if t.dim() != 1 or not t.is_contiguous():
                t = t.reshape(-1)
            chunks.append(t.view(torch.uint8))
        host = torch.cat(chunks).cpu().numpy()  # the single device->host copy
        return host, fields

    def _obs_view(self, host: np.ndarray, fields: dict, prefix: str) -> VecEnvObs:
        if self._obs_keys is None:
            return _view(host, fields[(prefix, _OBS)])
        return {k: _view(host, fields[(prefix, k)]) for k in self._obs_keys}

    # ------------------------------------------------------------------ VecEnv API
    def reset(self) -> VecEnvObs:
        """Reset all envs, using the seed/options set by :meth:`seed` / ``set_options`` once.

        SB3's per-env seeds are ``seed + i``, which is what ``BatchedEnv.reset(seed)`` applies.
        """
        seed = self._seeds[0]
        options = self._options[0] or None
        obs, _ = self.env.reset(seed=seed, options=options)
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = [{} for _ in range(self.num_envs)]
        self._ep.zero_()
        host, fields = self._pack("reset", self._obs_items(obs, "obs"))
        return self._obs_view(host, fields, "obs")

    def step_async(self, actions: np.ndarray) -> None:
        """Move ``actions`` ([N] or [N, ...] numpy, as SB3 produces) to the device (one copy)."""
        a = torch.from_numpy(np.ascontiguousarray(actions))
        if a.shape != self._act_shape:
            a = a.reshape(self._act_shape)
        self._actions = a if self.device.type == "cpu" else a.to(self.device)

    def step_wait(self) -> VecEnvStepReturn:
        """Step the batched env; returns obs, rewards float32[N], dones bool[N], infos."""
        if self._actions is None:
            raise RuntimeError("step_wait() called without a pending step_async()")
        actions, self._actions = self._actions, None
        obs, reward, terminated, truncated, info = self.env.step(actions)
        items = self._obs_items(obs, "obs") + self._obs_items(info["final_obs"], "final")
        items += [
            (("reward", ""), _as_dtype(reward, torch.float32)),
            (("terminated", ""), _as_dtype(terminated, torch.bool)),
            (("truncated", ""), _as_dtype(truncated, torch.bool)),
            (("success", ""), _as_dtype(info["success"], torch.bool)),
        ]
        if self.track_episodes:
            self._ep.add_(torch.stack((reward, self._ones)))
            items.append((("episode", ""), self._ep))
        host, fields = self._pack("step", items)  # copies the episode stats before the reset below
        if self.track_episodes:
            self._ep.masked_fill_(terminated | truncated, 0.0)

        term = _view(host, fields[("terminated", "")])
        trunc = _view(host, fields[("truncated", "")])
        dones = term | trunc
        if self.shared_empty_info:
            self._empty_info.clear()
            infos: list[dict[str, Any]] = [self._empty_info] * self.num_envs
        else:
            infos = [{} for _ in range(self.num_envs)]
        finished = np.flatnonzero(dones)
        if finished.size:
            final = self._obs_view(host, fields, "final")
            success = _view(host, fields[("success", "")])
            ep = _view(host, fields[("episode", "")]) if self.track_episodes else None
            now = round(time.time() - self._t_start, 6)
            for i in finished.tolist():  # finished envs only
                term_obs = {k: v[i] for k, v in final.items()} if isinstance(final, dict) else final[i]
                inf: dict[str, Any] = {
                    "terminal_observation": term_obs,
                    "TimeLimit.truncated": bool(trunc[i] and not term[i]),
                    "is_success": bool(success[i]),
                }
                if ep is not None:
                    inf["episode"] = {"r": float(ep[0, i]), "l": int(ep[1, i]), "t": now}
                infos[i] = inf
        return self._obs_view(host, fields, "obs"), _view(host, fields[("reward", "")]), dones, infos

    def close(self) -> None:
        self.env.close()

    # ------------------------------------------------------------------ attribute access
    def _indices(self, indices: VecEnvIndices) -> list[int]:
        return list(self._get_indices(indices))

    def _per_env(self) -> bool:
        """Whether the batched env offers per-env ``get_attr``/``set_attr``/``call``."""
        return all(callable(getattr(self.env, m, None)) for m in ("get_attr", "set_attr", "call"))

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """Per-env attribute when the batched env exposes sub-envs (gymnasium adapter), else the
        batched env's own attribute repeated; ``render_mode`` defaults to ``None``."""
        idx = self._indices(indices)
        if self._per_env():
            try:
                values = self.env.get_attr(attr_name)  # type: ignore[attr-defined]
                return [values[i] for i in idx]
            except AttributeError:
                if attr_name != "render_mode":
                    raise
        if hasattr(self.env, attr_name):
            value = getattr(self.env, attr_name)
            return [value for _ in idx]
        if attr_name == "render_mode":
            return [None for _ in idx]
        raise AttributeError(f"{type(self.env).__name__} has no attribute {attr_name!r}")

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set on the selected sub-envs (per-env envs) or on the batched env (all indices only)."""
        idx = self._indices(indices)
        if self._per_env():
            if len(idx) == self.num_envs:
                self.env.set_attr(attr_name, value)  # type: ignore[attr-defined]
                return
            values = list(self.env.get_attr(attr_name))  # type: ignore[attr-defined]
            for i in idx:
                values[i] = value
            self.env.set_attr(attr_name, values)  # type: ignore[attr-defined]
            return
        if len(idx) != self.num_envs:
            raise ValueError(f"{type(self.env).__name__} is one batched object; set_attr applies to all envs")
        setattr(self.env, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any) -> list[Any]:
        """Call a method per sub-env (per-env envs, all envs called) or once on the batched env."""
        idx = self._indices(indices)
        if self._per_env():
            if len(idx) != self.num_envs:
                raise ValueError("env_method on a subset of envs is not supported by the batched env")
            results = self.env.call(method_name, *method_args, **method_kwargs)  # type: ignore[attr-defined]
            return list(results)
        result = getattr(self.env, method_name)(*method_args, **method_kwargs)
        return [result for _ in idx]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        idx = self._indices(indices)
        fn = getattr(self.env, "env_is_wrapped", None)
        if callable(fn):
            flags = fn(wrapper_class)
            return [bool(flags[i]) for i in idx]
        return [False for _ in idx]

    # ------------------------------------------------------------------ extras
    def get_state(self) -> dict[str, torch.Tensor]:
        """Privileged state of the batched env (tensors on its device)."""
        return self.env.get_state()

    def __repr__(self) -> str:
        return f"SB3VecEnv({self.env!r})"
