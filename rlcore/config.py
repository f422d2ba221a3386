"""Structured configs of the apps: the dataclasses here (and the learners' in their packages) are the
one source of defaults; ``configs/*.yaml`` extend them and carry only overrides.

Hydra composes ``configs/train.yaml`` on top of ``train_schema`` (:class:`TrainConfig`), so an
unknown key, a wrong type or a bad enum value is refused at composition, naming the key. Learners
register their own schemas (``algo/<name>_schema``) through the modules in
:data:`SCHEMA_PROVIDERS`, imported by name at app start (like the ``_target_`` / ``class_path``
strings of the configs, so ``rlcore`` imports none of them statically).

Python callers compose as the CLI does::

    from rlcore.config import compose_config
    from rlcore.train import train
    summary = train(compose_config("train", ["algo=bc", "dataset.path=demos.safetensors"]), "runs/bc")
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Optional, Sequence

from omegaconf import DictConfig

#: Modules with a ``register_configs()`` that stores learner schemas in Hydra's ConfigStore.
SCHEMA_PROVIDERS: tuple[str, ...] = ("algorithms.schemas",)
#: The repository's Hydra config directory.
CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


class ConfigError(ValueError):
    """A config value is invalid; the message names the key."""


class ConfigChoice(str, Enum):
    """Base of the enums in config schemas: members are named as users type them, and ``str()``
    gives the value (``"auto"``, not ``"Backend.auto"``) wherever a config value is formatted."""

    def __str__(self) -> str:
        return self.value


class Backend(ConfigChoice):
    """How ``env.id`` is built (see :func:`rlcore.make_env.make_env`)."""

    auto = "auto"
    batched = "batched"
    gymnasium = "gymnasium"


@dataclass
class EnvConfig:
    id: str = "MiniGrid-DoorKey-5x5-v0"
    num_envs: int = 64
    backend: Backend = Backend.auto
    batched_module: str = "envs.minigrid"   # module with make(env_id, num_envs, device, seed) and SUPPORTED_IDS
    vectorization: str = "sync"             # gymnasium backend only: sync | async
    #: keyword options of the batched backend's ``make`` (batched backend only), e.g. for
    #: ``envs.minigrid``: ``layout: fixed`` and ``layout_seed`` (the task's "singleton" version),
    #: ``obs_mode: full``; an option the backend does not take is refused, naming ``env.options.<key>``.
    #: A mapping, set whole: ``'env.options={layout: fixed, layout_seed: 0}'`` (None: no options)
    options: Any = None


@dataclass
class EvalConfig:
    num_episodes: int = 64          # one episode per env of a separate eval env
    every_timesteps: int = 100_000  # online learners; also once at the end; 0 = only at the end
    every_fit_steps: int = 2_000    # offline learners, in gradient steps
    deterministic: bool = False
    seed_offset: int = 10_000       # eval env seeds start at seed + seed_offset


@dataclass
class CheckpointConfig:
    every_timesteps: int = 100_000
    every_fit_steps: int = 2_000
    keep_last: int = 3


@dataclass
class DiagnosticsConfig:
    visitation: str = "auto"        # auto | true | false: state-visitation heatmap (grid envs)


@dataclass
class LoggerConfig:
    tensorboard: bool = True
    csv: bool = True
    plot: bool = True


@dataclass
class DatasetConfig:
    path: Optional[str] = None      # offline learners: a dataset file (python -m rlcore.collect ...)
    # how offline learners draw minibatches (rlcore.data.trajectory_weights, Hong et al. 2023):
    sampler: str = "uniform"        # uniform | rw (by return) | aw (by advantage over V(s0)) | topk
    alpha: float = 0.1              # temperature of rw / aw (the paper's 0.1); larger is closer to uniform
    top_k_percent: float = 10.0     # topk: the best trajectories kept, in percent of trajectories
    baseline: str = "auto"          # aw's V(s0): linear (the paper's) | learned | auto


@dataclass
class RewardConfig:
    name: str = "none"
    module: Optional[Any] = None    # a Hydra ``_target_`` node building a RewardModule, or null


@dataclass
class TrainConfig:
    """``python -m rlcore.train``: everything but ``algo`` (a learner's schema) has its defaults here."""

    env: EnvConfig = field(default_factory=EnvConfig)
    algo: Any = None
    reward: RewardConfig = field(default_factory=RewardConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    seed: int = 0
    total_timesteps: int = 500_000  # env frames, all envs together (online learners)
    fit_steps: int = 5_000          # gradient steps (offline learners), on dataset.path
    device: str = "cpu"             # cpu | cuda | cuda:N | auto
    run_name: str = "${sanitize:${env.id}}-${algo.name}-${reward.name}-seed${seed}"
    resume: bool = False
    overwrite: bool = False
    progress_bar: bool = True
    num_threads: Optional[int] = None
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    diagnostics: DiagnosticsConfig = field(default_factory=DiagnosticsConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)


@dataclass
class PolicySource:
    path: Optional[str] = None      # a learner checkpoint; null: uniformly random actions
    deterministic: bool = False


@dataclass
class CollectConfig:
    """``python -m rlcore.collect``: record a dataset with a saved learner or random actions."""

    env: EnvConfig = field(default_factory=EnvConfig)
    algo: Any = None
    seed: int = 0
    device: str = "cpu"
    policy: PolicySource = field(default_factory=PolicySource)
    n_episodes: Optional[int] = 200
    n_steps: Optional[int] = None
    record_state: bool = False
    out: str = "datasets/${sanitize:${env.id}}-seed${seed}.safetensors"
    progress_bar: bool = True


def register_configs() -> None:
    """Store the apps' schemas and the learners' (from :data:`SCHEMA_PROVIDERS`) in Hydra's
    ConfigStore, and the ``${sanitize:...}`` resolver. Idempotent; the apps call it before composing."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    OmegaConf.register_new_resolver("sanitize", lambda s: re.sub(r"[^A-Za-z0-9_.-]+", "_", str(s)), replace=True)
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(name="collect_schema", node=CollectConfig)
    for name in SCHEMA_PROVIDERS:
        importlib.import_module(name).register_configs()


def compose_config(config_name: str = "train", overrides: Sequence[str] = ()) -> DictConfig:
    """Compose ``configs/<config_name>.yaml`` with command-line style ``overrides``, as the CLI does.

    Raises :class:`ConfigError` naming the key for an unknown key, a wrong type or a bad enum value;
    an unknown config group option (``algo=sac``) raises Hydra's ``MissingConfigException``.
    """
    from hydra import compose, initialize_config_dir
    from hydra.errors import ConfigCompositionException, MissingConfigException

    register_configs()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        try:
            cfg = compose(config_name=config_name, overrides=list(overrides))
        except MissingConfigException:
            raise
        except ConfigCompositionException as exc:
            raise ConfigError(explain_config_error(exc)) from exc
    check_known_keys(cfg)
    return cfg


def check_known_keys(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` for a key that no schema knows. Hydra's ``+key=value`` adds keys
    even to structured nodes; this walks every node typed by a dataclass and refuses keys that are
    not its fields (``+algo.params.lerning_rate=...``, ``+sede=1``)."""
    import dataclasses

    from omegaconf import OmegaConf

    def walk(node: Any, prefix: str) -> None:
        if not isinstance(node, DictConfig):
            return
        kind = OmegaConf.get_type(node)
        known = {f.name for f in dataclasses.fields(kind)} if dataclasses.is_dataclass(kind) else None
        for key in node.keys():
            full = f"{prefix}{key}"
            if known is not None and key not in known:
                raise ConfigError(f"{full} is not a known key; known under {prefix.rstrip('.') or 'the root'}: "
                                  f"{', '.join(sorted(known))}")
            if key == "hydra":
                continue
            walk(node._get_node(key), f"{full}.")

    walk(cfg, "")


def explain_config_error(exc: BaseException) -> str:
    """One line naming the key of a composition error (OmegaConf's ``full_key``), with the allowed
    values of an enum."""
    cause: Optional[BaseException] = exc
    while cause is not None and getattr(cause, "full_key", None) is None:
        cause = cause.__cause__
    if cause is None:
        return str(exc).splitlines()[0]
    key = cause.full_key
    msg = str(cause).splitlines()[0]
    enum = re.match(r"Invalid value '(.*)', expected one of \[(.*)\]", msg)
    if enum:
        return f"{key} must be one of {enum.group(2)}, got {enum.group(1)!r}"
    if "not in" in msg or "Key '" in msg:
        return f"{key} is not a known key ({msg})"
    return f"{key}: {msg}"
