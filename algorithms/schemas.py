"""Hydra structured configs of the learners: the dataclasses are the one source of defaults.

``register_configs()`` stores ``algo/<name>_schema`` (ppo, bc, iql, td3bc, cql) in Hydra's ConfigStore;
``configs/algo/<name>.yaml`` extends its schema in its defaults list and carries only overrides.
Composition then refuses an unknown key (``algo.params.lerning_rate``) or a wrong type or enum value
(``algo.params.n_steps=abc``, ``algo.policy.activation=gelu``), naming the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from algorithms.bc import BCConfig
from algorithms.cql import CQLConfig
from algorithms.iql import IQLConfig
from algorithms.offline_nets import OfflineNetConfig
from algorithms.ppo import PPOConfig
from algorithms.td3bc import TD3BCConfig
from rlcore.config import ConfigChoice


class Encoder(ConfigChoice):
    """Observation encoders of :class:`~algorithms.policies.ActorCritic` (see ``rlcore.nets.make_encoder``)."""

    auto = "auto"
    mlp = "mlp"
    grid = "grid"          # the symbolic-grid encoder (rlcore.nets.GridEncoder)
    minigrid = "minigrid"  # the same encoder under its MiniGrid name


class Activation(ConfigChoice):
    tanh = "tanh"
    relu = "relu"


@dataclass
class PolicyConfig:
    """Keyword arguments of :class:`~algorithms.policies.ActorCritic`."""

    encoder: Encoder = Encoder.auto
    hidden_sizes: list[int] = field(default_factory=lambda: [64, 64])
    activation: Activation = Activation.tanh
    log_std_init: float = 0.0


@dataclass
class PPOAlgoConfig:
    name: str = "ppo"
    class_path: str = "algorithms.ppo.PPO"
    params: PPOConfig = field(default_factory=PPOConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)


@dataclass
class BCAlgoConfig:
    name: str = "bc"
    class_path: str = "algorithms.bc.BC"
    params: BCConfig = field(default_factory=BCConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)


@dataclass
class IQLAlgoConfig:
    name: str = "iql"
    class_path: str = "algorithms.iql.IQL"
    params: IQLConfig = field(default_factory=IQLConfig)
    policy: OfflineNetConfig = field(default_factory=OfflineNetConfig)


@dataclass
class TD3BCAlgoConfig:
    name: str = "td3bc"
    class_path: str = "algorithms.td3bc.TD3BC"
    params: TD3BCConfig = field(default_factory=TD3BCConfig)
    policy: OfflineNetConfig = field(default_factory=OfflineNetConfig)


@dataclass
class CQLAlgoConfig:
    name: str = "cql"
    class_path: str = "algorithms.cql.CQL"
    params: CQLConfig = field(default_factory=CQLConfig)
    policy: OfflineNetConfig = field(default_factory=OfflineNetConfig)


def register_configs() -> None:
    """Store the learners' schemas in Hydra's ConfigStore (idempotent)."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(group="algo", name="ppo_schema", node=PPOAlgoConfig)
    cs.store(group="algo", name="bc_schema", node=BCAlgoConfig)
    cs.store(group="algo", name="iql_schema", node=IQLAlgoConfig)
    cs.store(group="algo", name="td3bc_schema", node=TD3BCAlgoConfig)
    cs.store(group="algo", name="cql_schema", node=CQLAlgoConfig)
