"""rlcore: the spine of the library — batched-env contract, adapters, rollouts, PPO runtime, training app."""

from rlcore.env import BatchedEnv, EnvOptionError
from rlcore.tensors import Obs

__all__ = ["BatchedEnv", "EnvOptionError", "Obs"]
