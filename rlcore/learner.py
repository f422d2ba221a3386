"""The learner contract: what the training app, evaluation and the collector need from any learner.

Two kinds of learner implement it:

* **online** learners (``offline = False``, e.g. native PPO) step a batched env:
  ``learn(total_timesteps, callback=...)``; their progress counter ``num_timesteps`` counts env
  frames (all envs together);
* **offline** learners (``offline = True``, e.g. behaviour cloning) never step an env; they train
  from a :class:`~rlcore.data.TrajectoryDataset`: ``fit(dataset, n_steps, callback=...)``; their
  ``num_timesteps`` counts gradient steps.

Both share the surface the app drives (run dir, logging, checkpoints, resume, evaluation and
``summary.json`` are the same for both kinds):

* ``from_config(env, algo_cfg, reward_module=None, seed=0)``: build from the ``algo`` config group;
* ``act(obs, deterministic=False, generator=None) -> actions``: env actions for a batch of
  observations on ``env.device`` (the action function of evaluation and of the collector);
* ``predict(observation, deterministic=False)``: stable-baselines3's signature, numpy or tensors;
* ``state_dict()`` / ``load_state_dict(payload, source=...)``: everything needed to resume, tensors
  and plain values only (checked by :mod:`rlcore.checkpoint`), with ``checkpoint_format``;
* ``save(path)`` / ``load(path, env=None, device=...)``;
* ``on_non_finite``: a hook the learner calls (through :meth:`Learner.fail_non_finite`) when a loss
  becomes NaN/Inf, before raising :class:`NonFiniteLossError`; the app uses it to save the last
  good state (:func:`checkpoint_on_non_finite`).

Callbacks (:mod:`rlcore.callbacks`) get ``on_step`` per batched env step (online only) and
``on_rollout_end(metrics)`` once per iteration: a PPO rollout + update, or ``log_every`` gradient
steps of an offline learner.
"""

from __future__ import annotations

import abc
import os
from pathlib import Path
from typing import Any, Callable, ClassVar, Optional

import torch

from rlcore.callbacks import CallbackLike
from rlcore.checkpoint import CheckpointError, all_finite, latest_valid_checkpoint, save_checkpoint
from rlcore.spaces import same_space, space_to_dict
from rlcore.tensors import Obs, obs_map


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or Inf; raised after the ``on_non_finite`` hook ran (e.g. saved the last good state)."""


#: ``hook(learner) -> note``: called before :class:`NonFiniteLossError` is raised; ``note`` (or None)
#: is appended to the error message, e.g. where the last good state was saved.
NonFiniteHook = Callable[["Learner"], Optional[str]]


def checkpoint_on_non_finite(path: str | os.PathLike) -> NonFiniteHook:
    """A hook that saves the learner's current state to ``path`` as the last good one, and says so.

    Only a finite state is saved: if the weights themselves are already NaN/Inf (a previous update
    produced them), nothing is written and the note names the newest finite checkpoint in the same
    directory instead (or says there is none)."""
    path = Path(path)

    def hook(learner: "Learner") -> str:
        state = learner.state_dict()
        if all_finite(state):
            save_checkpoint(path, state)
            return f"last good state saved to {path}"
        found = latest_valid_checkpoint(path.parent, learner.checkpoint_format, accept=all_finite)
        if found is None:
            return "the weights are already non-finite and no finite checkpoint exists"
        return f"the weights are already non-finite; the newest finite checkpoint is {found[0]}"

    return hook


class Learner(abc.ABC):
    """Base class of every learner; see the module docstring for the contract.

    Attributes:
        offline: class attribute, True for learners trained with :meth:`fit` from a dataset.
        checkpoint_format: class attribute, the ``format`` tag of this learner's checkpoints.
        device: the torch device its networks and tensors live on.
        num_timesteps: progress: env frames (online) or gradient steps (offline).
        on_non_finite: optional :data:`NonFiniteHook`.
    """

    offline: ClassVar[bool] = False
    checkpoint_format: ClassVar[str] = ""
    device: torch.device
    num_timesteps: int = 0
    on_non_finite: Optional[NonFiniteHook] = None

    @classmethod
    @abc.abstractmethod
    def from_config(cls, env: Any, algo_cfg: dict[str, Any], reward_module: Any = None, seed: int = 0) -> "Learner":
        """Build from the ``algo`` config group (a plain dict); errors name ``algo.<key>``."""

    def learn(self, total_timesteps: int, callback: CallbackLike = None, reset_num_timesteps: bool = True,
              progress_bar: bool = False) -> "Learner":
        """Online training until ``num_timesteps >= total_timesteps`` env frames."""
        raise NotImplementedError(f"{type(self).__name__} is an offline learner: train it with fit(dataset, n_steps)")

    def fit(self, dataset: Any, n_steps: int, callback: CallbackLike = None, reset_num_timesteps: bool = True,
            progress_bar: bool = False, sampler: Any = None) -> "Learner":
        """Offline training until ``num_timesteps >= n_steps`` gradient steps on ``dataset``, drawing
        minibatch indices from ``sampler`` (a :class:`rlcore.data.Sampler` over the dataset's
        transitions; ``None``: uniform)."""
        raise NotImplementedError(f"{type(self).__name__} is an online learner: train it with learn(total_timesteps)")

    @abc.abstractmethod
    def act(self, obs: Obs, deterministic: bool = False, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Env actions for a batch of observations ``[N, ...]`` on ``self.device`` (no grad)."""

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None,
                deterministic: bool = False) -> tuple[Any, None]:
        """SB3-style ``(actions, None)`` for a batch ``[N, ...]`` through :meth:`act`: tensors (or
        dicts of tensors) in -> tensors out, numpy arrays (or dicts of them) in -> numpy out."""
        import numpy as np

        as_numpy = not isinstance(observation, torch.Tensor) and not (
            isinstance(observation, dict) and all(isinstance(v, torch.Tensor) for v in observation.values()))
        obs = obs_map(lambda x: torch.as_tensor(np.asarray(x) if as_numpy else x, device=self.device), observation)
        actions = self.act(obs, deterministic=deterministic)
        return (actions.cpu().numpy() if as_numpy else actions), None

    def check_saved_spaces(self, payload: dict[str, Any], source: str) -> None:
        """Raise :class:`~rlcore.checkpoint.CheckpointError` naming ``source`` when a checkpoint's
        ``observation_space``/``action_space`` are not this learner's (``self.observation_space``,
        ``self.action_space``)."""
        for key in ("observation_space", "action_space"):
            mine = getattr(self, key)
            if not same_space(payload.get(key), mine):
                raise CheckpointError(f"{source}: {key} {payload.get(key)} does not match the env's {space_to_dict(mine)}")

    @abc.abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume training, with ``"format": checkpoint_format`` and ``num_timesteps``."""

    @abc.abstractmethod
    def load_state_dict(self, payload: dict[str, Any], source: str = "checkpoint") -> None:
        """Restore from :meth:`state_dict`; raise :class:`~rlcore.checkpoint.CheckpointError` naming ``source``."""

    def save(self, path: str | os.PathLike) -> None:
        """Write :meth:`state_dict` to ``path`` atomically."""
        save_checkpoint(path, self.state_dict())

    @classmethod
    @abc.abstractmethod
    def load(cls, path: str | os.PathLike, env: Any = None, device: str | torch.device = "cpu", **kwargs: Any) -> "Learner":
        """Load a saved learner; without ``env`` it can ``predict``/``act`` but not train."""

    def fail_non_finite(self, losses: dict[str, torch.Tensor], where: str = "") -> None:
        """Raise :class:`NonFiniteLossError` naming the non-finite entries of ``losses`` and the
        progress counter, after running ``on_non_finite``. ``where`` adds context (e.g. the iteration)."""
        bad = [name for name, value in losses.items() if not bool(torch.isfinite(value).all())]
        note = self.on_non_finite(self) if self.on_non_finite is not None else None
        unit = "gradient step" if self.offline else "timestep"
        raise NonFiniteLossError(
            f"non-finite {', '.join(bad) or 'unknown'} loss at {unit} {self.num_timesteps}"
            + (f" ({where})" if where else "") + (f"; {note}" if note else ""))


def as_action_fn(policy: Any, device: torch.device, deterministic: bool = False) -> Callable[[Obs], torch.Tensor]:
    """An ``obs -> env actions`` function on ``device`` for any policy (``deterministic``: the
    policy's mode, for learners and SB3 models):

    * a :class:`Learner` (its :meth:`Learner.act`);
    * a stable-baselines3 model (anything with ``predict`` that takes numpy): observations are
      copied to the host and the actions back (one round trip per batched step);
    * a plain callable ``obs -> actions`` (random or scripted policies), used as is.
    """
    if isinstance(policy, Learner):
        return lambda obs: policy.act(obs, deterministic=deterministic)
    if hasattr(policy, "predict") and not callable(getattr(policy, "act", None)):
        import numpy as np

        def sb3_act(obs: Obs) -> torch.Tensor:
            host = {k: v.cpu().numpy() for k, v in obs.items()} if isinstance(obs, dict) else obs.cpu().numpy()
            actions, _ = policy.predict(host, deterministic=deterministic)
            return torch.as_tensor(np.asarray(actions), device=device)

        return sb3_act
    if callable(policy):
        return policy
    raise TypeError(f"cannot act with {type(policy).__name__}: pass a Learner, an SB3 model or a callable obs -> actions")
