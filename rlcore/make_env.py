"""Build a batched env from the ``env`` config group (no static import of ``envs``: the batched
backend module is named in the config and imported by name)."""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Mapping, Optional

import torch

from rlcore.env import BatchedEnv, EnvOptionError

GYMNASIUM_ADAPTER = "rlcore.adapters.gymnasium"
#: ``env.batched_module`` when the config names none (the configs' default batched backend)
DEFAULT_BATCHED_MODULE = "envs.minigrid"


def _batched_backend(module_name: str):
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"env.batched_module={module_name!r} cannot be imported: {exc}") from exc


def _registered_gym_ids() -> set[str]:
    """Every id the gymnasium adapter can build (it imports the packages that register ids)."""
    return importlib.import_module(GYMNASIUM_ADAPTER).registered_ids()


def resolve_backend(env_cfg: Mapping[str, Any]) -> str:
    """Which backend builds ``env_cfg.id``: ``"batched"`` or ``"gymnasium"``.

    Raises ``ValueError`` naming ``env.id`` / ``env.backend`` when nothing can build it.
    """
    env_id, backend = str(env_cfg["id"]), str(env_cfg.get("backend", "auto"))
    if backend not in ("auto", "batched", "gymnasium"):
        raise ValueError(f"env.backend must be 'auto', 'batched' or 'gymnasium', got {backend!r}")
    supported: tuple[str, ...] = ()
    if backend in ("auto", "batched"):
        supported = tuple(getattr(_batched_backend(env_cfg.get("batched_module", DEFAULT_BATCHED_MODULE)), "SUPPORTED_IDS", ()))
        if env_id in supported:
            return "batched"
        if backend == "batched":
            raise ValueError(f"env.id={env_id!r} is not supported by the batched backend; supported ids: {', '.join(supported)}")
    if env_id in _registered_gym_ids():
        return "gymnasium"
    hint = f"batched ids: {', '.join(supported)}; " if supported else ""
    raise ValueError(f"env.id={env_id!r} is not a known environment ({hint}or any registered gymnasium id)")


def _checked_options(make: Any, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` if the backend's ``make`` (or the env class it documents as taking its extra
    keyword arguments, ``make.env_class``) names each one; else ``ValueError`` naming the key."""
    target = getattr(make, "env_class", make)
    params = inspect.signature(target).parameters
    reserved = {"self", "env_id", "spec", "num_envs", "device", "seed"}
    accepted = sorted(k for k, p in params.items() if k not in reserved
                      and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
    for key in options:
        if key not in accepted:
            raise ValueError(f"env.options.{key} is not an option of this env backend; options: {', '.join(accepted)}")
    return options


def make_env(env_cfg: Mapping[str, Any], device: torch.device | str, seed: Optional[int],
             num_envs: Optional[int] = None) -> BatchedEnv:
    """Create the env described by ``env_cfg`` (keys ``id``, ``num_envs``, ``backend``, ...)."""
    n = int(num_envs if num_envs is not None else env_cfg["num_envs"])
    if n <= 0:
        raise ValueError(f"env.num_envs must be a positive integer, got {n}")
    backend = resolve_backend(env_cfg)
    env_id = str(env_cfg["id"])
    raw = env_cfg.get("options", None)
    if raw is not None and not isinstance(raw, Mapping):
        raise ValueError(f"env.options must be a mapping of option names to values, got {raw!r}")
    options = {str(k): v for k, v in (raw or {}).items()}
    if backend == "batched":
        module = _batched_backend(env_cfg.get("batched_module", DEFAULT_BATCHED_MODULE))
        try:
            return module.make(env_id, num_envs=n, device=device, seed=seed, **_checked_options(module.make, options))
        except EnvOptionError as exc:
            if exc.option not in options:  # a default the config did not set: not the config's fault
                raise
            raise ValueError(f"env.options.{exc}") from exc
    if options:
        raise ValueError(f"env.options ({', '.join(sorted(options))}) are options of the batched backend; "
                         f"env.id={env_id!r} is built by the gymnasium adapter, which takes none")
    adapter = importlib.import_module(GYMNASIUM_ADAPTER)
    return adapter.make_gym_env(env_id, num_envs=n, device=device, seed=seed,
                                vectorization=str(env_cfg.get("vectorization", "sync")))
