"""The batched-environment contract every environment in the library implements.

Semantics follow gymnasium's vector envs (``num_envs``, ``single_observation_space``,
``single_action_space``, ``reset(seed=)``, ``step(actions)``), with three differences:

* every array is a ``torch.Tensor`` on ``env.device`` (CPU or CUDA);
* auto-reset happens *inside* ``step`` ("same-step" auto-reset): the observation returned for an
  env whose episode just ended is already the first observation of its next episode, and the last
  observation of the finished episode is kept in ``info["final_obs"]``;
* privileged simulator state is readable as tensors through :meth:`BatchedEnv.get_state`, because
  reward code and exploration bonuses need it.

Shapes (``N = num_envs``)::

    obs:        Tensor[N, ...] or dict[str, Tensor[N, ...]]   (see ``single_observation_space``)
    actions:    int64[N] (Discrete) or float32[N, A] (Box)
    reward:     float32[N]
    terminated: bool[N]    the episode reached a terminal state of the MDP
    truncated:  bool[N]    the episode was cut (time limit); never both True with ``terminated``
    info:       dict with at least
                ``final_obs``: same structure as obs; rows of finished envs hold the last
                               observation of the finished episode, other rows equal ``obs``
                ``success``:   bool[N], True where an episode ended by reaching the task's goal
                ``final_state``: only while ``env.record_final_state`` is True (see below)

Final privileged state. With same-step auto-reset, ``get_state()`` after ``step`` already shows the
*new* episode of an env that just finished, so the state its last action led to would be lost. A
consumer that needs it (a reward module with ``needs_state``, see :mod:`rlcore.reward`) sets the
plain attribute ``env.record_final_state = True`` once; from then on ``step`` adds

    ``info["final_state"]``: dict with the same keys, shapes and dtypes as ``get_state()``; rows of
                             finished envs hold the state after the episode's last step (before the
                             reset), other rows equal the current state. Its tensors never alias the
                             env's live state: later steps do not change them.

and keeps the same dict as ``env.final_state`` (for bridges that sit behind code which drops
``info``, such as SB3's ``VecEnv`` API). The flag is off by default so ``step`` costs nothing extra
when nobody reads it. An env whose ``get_state()`` is empty need not add the key. ``get_state()``
itself may return views of the live state (in-place updates by the next ``step`` show through): copy
what must outlive a step.

Self-description. Two methods say what the env is, once at setup (never in the stepping loop):

* :meth:`BatchedEnv.state_spec` -> ``dict[str, StateField]``: for each key of ``get_state()`` (and of
  ``info["final_state"]``) its dtype, per-env shape (without ``N``) and a one-line meaning (units,
  coordinate order, value codes, with code tables as data in ``StateField.codes``). The dicts match
  it exactly: same keys, dtypes and shapes (:func:`rlcore.spec.check_state` checks one).
* :meth:`BatchedEnv.task_info` -> :class:`~rlcore.spec.TaskInfo`: the task family, whether
  ``info["success"]`` can be True and by which rule, and for symbolic grid worlds the
  :class:`~rlcore.spec.SymbolicGrid` vocabulary (object/colour/state names, wall code, blocking
  objects), the grid size and the state key of the grid. Such envs also attach the vocabulary to
  ``single_observation_space`` (:func:`rlcore.spec.describe_grid_obs`) for code that only sees spaces.

For example (batched MiniGrid)::

    env.state_spec()["grid"]    # StateField(dtype=torch.uint8, shape=(8, 8, 3), meaning="object, colour,
                                #   state per cell, indexed [y, x] ...", codes={"object": {0: "unseen", ...}})
    env.task_info().grid.wall   # 2

Both default to "nothing known": ``{}`` and ``TaskInfo()`` (family ``"other"``, no success).

Implementations must not loop over environments in Python inside ``step`` and must not force a
device-to-host synchronisation there (no ``.item()``, ``.cpu()``, ``bool(tensor)``), except the
gymnasium adapter, which by its nature steps host-side environments.
"""

from __future__ import annotations

import abc
from typing import Any

import gymnasium as gym
import torch

from rlcore.spec import StateField, TaskInfo
from rlcore.tensors import Obs

StepResult = tuple[Obs, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]


class EnvOptionError(ValueError):
    """A constructor option of a batched env (``env.options.<option>`` in a config) has a bad value.

    Backends raise it for the keyword options their ``make`` passes on, so the training app can name
    the config key (``env.options.layout must be one of ...``) without parsing the message.
    ``option`` is the keyword's name; the message starts with it.
    """

    def __init__(self, option: str, message: str):
        super().__init__(f"{option} {message}")
        self.option = option


class BatchedEnv(abc.ABC):
    """Abstract batched environment; see the module docstring for the contract."""

    num_envs: int
    device: torch.device
    single_observation_space: gym.Space
    single_action_space: gym.Space
    #: Farama-style id of the task, e.g. ``"MiniGrid-DoorKey-8x8-v0"`` (informational).
    env_id: str = ""
    #: When True, ``step`` puts ``info["final_state"]`` (see the module docstring); set by learners
    #: and bridges whose reward module ``needs_state``. Off by default: no extra work per step.
    record_final_state: bool = False
    #: While ``record_final_state`` is True: the ``info["final_state"]`` of the latest ``step``.
    final_state: dict[str, torch.Tensor] | None = None

    @abc.abstractmethod
    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Obs, dict[str, Any]]:
        """Reset every env. ``seed`` makes the whole batch reproducible."""

    @abc.abstractmethod
    def step(self, actions: torch.Tensor) -> StepResult:
        """Advance every env by one step, auto-resetting the ones that finish."""

    def get_state(self) -> dict[str, torch.Tensor]:
        """Privileged state as tensors with leading dim ``N`` (empty when the env has none)."""
        return {}

    def state_spec(self) -> dict[str, StateField]:
        """Dtype, per-env shape and meaning of each key of :meth:`get_state` (empty when it has none).

        ``get_state()`` and ``info["final_state"]`` have exactly these keys, dtypes and shapes
        (``[N, *shape]``). Called at setup, not per step.
        """
        return {}

    def task_info(self) -> TaskInfo:
        """Task family, success rule and (grid worlds) symbolic-grid vocabulary; see :class:`TaskInfo`."""
        return TaskInfo()

    def close(self) -> None:
        """Release resources (worker processes, simulators); nothing to release by default."""
        return None

    # ------------------------------------------------------------------ helpers shared by all envs
    def check_actions(self, actions: torch.Tensor) -> torch.Tensor:
        """Validate shape, dtype and device of ``actions`` (no host sync); return them as expected.

        Raises ``ValueError`` naming the problem. Range checks that would need a host sync are left
        to the implementations' debug paths.
        """
        if not isinstance(actions, torch.Tensor):
            raise TypeError(f"actions must be a torch.Tensor on {self.device}, got {type(actions).__name__}")
        if actions.device != self.device:
            raise ValueError(f"actions are on {actions.device}, env is on {self.device}")
        space = self.single_action_space
        if isinstance(space, gym.spaces.Discrete):
            if actions.shape != (self.num_envs,):
                raise ValueError(f"actions must have shape ({self.num_envs},) for a Discrete space, got {tuple(actions.shape)}")
            if actions.dtype.is_floating_point or actions.dtype == torch.bool:
                raise ValueError(f"Discrete actions must be an integer tensor, got {actions.dtype}")
            return actions.long()
        if isinstance(space, gym.spaces.Box):
            expected = (self.num_envs, *space.shape)
            if tuple(actions.shape) != expected:
                raise ValueError(f"actions must have shape {expected} for a Box space, got {tuple(actions.shape)}")
            return actions.float()
        return actions

    def __repr__(self) -> str:
        return f"{type(self).__name__}(env_id={self.env_id!r}, num_envs={self.num_envs}, device={self.device})"
