"""Combining exploration bonuses: normalisation, coefficients, schedules, sums and products.

:class:`IntrinsicReward` is the reward module learners receive. It holds one or more bonuses and

* **sum** (``combine="sum"``): ``r = c(t) * sum_i coef_i * b_i / std(R_i)``, each bonus scaled by the
  running std of its own discounted return ``R_i`` (Burda et al. 2019: normalise intrinsic rewards
  over time, not across the envs of one step);
* **product** (``combine="product"``): ``r = c(t) * prod_i coef_i * b_i / mean(b_i)``, then scaled by
  the running std of the product's discounted return — the global x episodic combination studied in
  Henaff et al. 2023 ("A Study of Global and Episodic Bonuses for Exploration in Contextual MDPs"),
  e.g. E3B x RND, with each factor divided by its running mean so neither dominates by scale;
* a coefficient schedule ``c(t)`` over the transitions seen: constant, linear decay to
  ``final_fraction`` over ``decay_steps``, or exponential with ``decay_rate`` per ``decay_steps``.

A bonus producing NaN or Inf is caught here and reported with its name; the learner never sees it.
"""

from __future__ import annotations

from typing import Callable, Mapping, Optional, Union

import gymnasium as gym
import torch
from torch import nn

from rlcore.batch import TransitionBatch
from rlcore.normalization import DiscountedReturnNormalizer, RunningMeanStd
from rlcore.reward import RewardModule, RewardRouting, check_finite

BonusLike = Union[RewardModule, Callable[..., RewardModule]]


class IntrinsicReward(RewardModule):
    """One or more bonuses, normalised and combined into the intrinsic reward a learner optimises.

    Args:
        observation_space, action_space: single-env spaces, passed to bonus factories.
        bonuses: name -> a reward module, or a factory ``f(observation_space, action_space)`` (a Hydra
            ``_partial_`` config instantiates to one).
        combine: ``"sum"`` or ``"product"``.
        coefs: name -> coefficient (default 1 each).
        normalize: scale by the running std of discounted returns (True) or pass raw values (False).
        gamma: discount of the normalising returns (use the learner's intrinsic discount).
        schedule: ``"constant"``, ``"linear"`` or ``"exponential"``; ``decay_steps``, ``final_fraction``
            and ``decay_rate`` parameterise it (steps = transitions, all envs together).
        episodic: whether the combined intrinsic return stops at episode ends; default: True only if
            every bonus is episodic.
    """

    routing = RewardRouting.INTRINSIC

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, bonuses: Mapping[str, BonusLike],
                 combine: str = "sum", coefs: Optional[Mapping[str, float]] = None, normalize: bool = True,
                 gamma: float = 0.99, schedule: str = "constant", decay_steps: int = 1_000_000,
                 final_fraction: float = 0.0, decay_rate: float = 0.5, episodic: Optional[bool] = None) -> None:
        super().__init__()
        if not bonuses:
            raise ValueError("IntrinsicReward needs at least one bonus")
        if combine not in ("sum", "product"):
            raise ValueError(f"reward.combine must be 'sum' or 'product', got {combine!r}")
        if schedule not in ("constant", "linear", "exponential"):
            raise ValueError(f"reward.schedule must be 'constant', 'linear' or 'exponential', got {schedule!r}")
        built = {}
        for name, bonus in bonuses.items():
            built[name] = bonus if isinstance(bonus, nn.Module) else bonus(observation_space=observation_space,
                                                                          action_space=action_space)
        self.bonuses = nn.ModuleDict(built)
        coefs = dict(coefs or {})
        unknown = set(coefs) - set(built)
        if unknown:
            raise ValueError(f"reward.coefs names unknown bonuses {sorted(unknown)}; bonuses: {sorted(built)}")
        self.coefs = {name: float(coefs.get(name, 1.0)) for name in built}
        self.combine, self.normalize, self.gamma = combine, bool(normalize), float(gamma)
        self.schedule, self.decay_steps = schedule, int(decay_steps)
        self.final_fraction, self.decay_rate = float(final_fraction), float(decay_rate)
        self.episodic = all(getattr(b, "episodic", False) for b in built.values()) if episodic is None else bool(episodic)
        # state/next_state are recorded when any bonus needs them: the union of their keys (None = all keys)
        needing = [b for b in built.values() if getattr(b, "needs_state", False)]
        self.needs_state = bool(needing)
        wanted = [getattr(b, "state_keys", None) for b in needing]
        self.state_keys = None if any(k is None for k in wanted) else sorted({k for keys in wanted for k in keys}) or None
        keys = list(built) if combine == "sum" else ["product"]
        self.normalizers = nn.ModuleDict({k: DiscountedReturnNormalizer(self.gamma) for k in keys})
        self.means = nn.ModuleDict({k: RunningMeanStd(()) for k in built}) if combine == "product" else None
        self.register_buffer("steps_seen", torch.zeros((), dtype=torch.float64))
        self._last: dict[str, torch.Tensor] = {}

    def coefficient(self) -> float:
        """The schedule's multiplier ``c(t)`` at the current number of transitions seen."""
        t = float(self.steps_seen)
        if self.schedule == "linear":
            frac = min(t / max(self.decay_steps, 1), 1.0)
            return 1.0 - (1.0 - self.final_fraction) * frac
        if self.schedule == "exponential":
            return self.decay_rate ** (t / max(self.decay_steps, 1))
        return 1.0

    def _episode_stops(self, module: RewardModule, batch: TransitionBatch) -> Optional[torch.Tensor]:
        return batch.done if getattr(module, "episodic", False) else None

    @torch.no_grad()
    def compute(self, batch: TransitionBatch) -> torch.Tensor:
        raw = {}
        for name, bonus in self.bonuses.items():
            values = bonus.compute(batch).float()
            check_finite(values, name)
            raw[name] = values
        scale = self.coefficient()
        self.steps_seen += batch.reward.numel()
        if self.combine == "sum":
            total = torch.zeros_like(batch.reward, dtype=torch.float32)
            for name, values in raw.items():
                scaled = self.normalizers[name](values, self._episode_stops(self.bonuses[name], batch)) \
                    if self.normalize else values
                total = total + self.coefs[name] * scaled
        else:
            total = torch.ones_like(batch.reward, dtype=torch.float32)
            for name, values in raw.items():
                self.means[name].update(values)
                total = total * self.coefs[name] * values / self.means[name].mean.float().clamp(min=1e-8)
            if self.normalize:
                total = self.normalizers["product"](total, batch.done if self.episodic else None)
        total = scale * total
        check_finite(total, "combined intrinsic reward")
        self._last = {**{f"{k}_mean": v.mean() for k, v in raw.items()}, **{f"{k}_std": v.std() for k, v in raw.items()},
                      "intrinsic_mean": total.mean(), "intrinsic_std": total.std()}
        return total

    def update(self, batch: TransitionBatch) -> dict[str, float]:
        metrics = {k: float(v) for k, v in self._last.items()}
        metrics["coefficient"] = self.coefficient()
        for name, bonus in self.bonuses.items():
            for key, value in (bonus.update(batch) or {}).items():
                metrics[f"{name}/{key}"] = float(value)
        return metrics

    def reset(self, mask: torch.Tensor) -> None:
        for bonus in self.bonuses.values():
            bonus.reset(mask)
