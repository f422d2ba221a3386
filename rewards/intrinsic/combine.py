"""Combining exploration bonuses: combination rules, coefficients, schedules, sums and products.

:class:`IntrinsicReward` is the reward module learners receive. It holds one or more bonuses,
combines them (``combine="sum"`` or ``"product"``) and scales the result by one of two rules
(``rule``):

* ``rule="return_std"`` (the default; this library's rule):

  * **sum**: ``r = c(t) * sum_i coef_i * b_i / std(R_i)``, each bonus scaled by the running std of
    its own discounted return ``R_i`` — Burda et al. 2019 ("Exploration by Random Network
    Distillation"; their ``RewardForwardFilter``): normalise intrinsic rewards by the std of the
    intrinsic return over time, not across the envs of one step;
  * **product**: ``r = c(t) * prod_i coef_i * b_i / mean(b_i)``, then scaled by the running std of
    the product's discounted return. Dividing each factor by its running mean (so neither dominates
    by scale) is this library's choice, not the study's;
  * episodic (the returns stop at episode ends, in the normaliser and in the learner) only if every
    bonus is; no clipping.

* ``rule="e3b_icml2023"``: the rule of the code of Henaff et al. 2023 ("A Study of Global and
  Episodic Bonuses for Exploration in Contextual MDPs", facebookresearch/e3b,
  ``minihack/torchbeast/src/algos/e3b_noveld.py``, ``learn``; ``count.py`` for the counts products,
  and ``e3b.py`` scales E3B alone the same way):

  * the raw bonuses are combined — ``prod_i coef_i * b_i`` (``bonus_combine='mult'``, the default
    there: ``intrinsic_rewards = episodic_bonus * noveld``) or ``sum_i coef_i * b_i`` (``'add'``:
    ``episodic + global_bonus_coeff * noveld``), with no per-factor scaling;
  * the combined per-step values are divided by their running std (``reward_norm='int'``:
    ``model.update_running_moments(intrinsic_rewards)`` then ``intrinsic_rewards /= std`` if
    ``std > 0``; ``models.py``'s ``update_running_moments`` pools every value seen so far, this batch
    included, with no discounting);
  * the result is clipped to ``[-clip, clip]``, ``clip = 1`` (``clip_rewards=1``:
    ``torch.clamp(total_rewards, -1, 1)``);
  * episodic by default: IMPALA there has one reward stream with ``discounts = (~done) *
    discounting``, so the intrinsic return stops at episode ends.

  Deviations, stated: the original clips the *total* reward ``r_ext + intrinsic_reward_coef *
  r_int``; learners here add the extrinsic reward in a value stream of their own (``int_coef``
  weighs the advantages), so only the intrinsic reward is clipped, before ``int_coef``. The
  original's ``update_running_moments`` counts ``len(reward_batch)`` = ``T`` per ``[T, B]`` batch
  (its rows, not its ``T * B`` values), so its running mean is ``B`` times the true one and its
  "std" about ``sqrt(B (sigma^2 + (B - 1)^2 mu^2))``; here the count is the number of values, i.e.
  the per-step std that code means. ``coef_i`` applies to every bonus (the original has
  ``global_bonus_coeff`` for ``'add'`` only, and ``intrinsic_reward_coef`` — here the learner's
  ``int_coef`` — after the normalisation).

* a coefficient schedule ``c(t)`` over the transitions seen (both rules): constant, linear decay to
  ``final_fraction`` over ``decay_steps``, or exponential with ``decay_rate`` per ``decay_steps``.

``normalize=False`` skips the division by a std under either rule (RND without reward
normalisation, or the original's ``reward_norm`` other than ``'int'``). A bonus producing NaN or
Inf is caught here and reported with its name; the learner never sees it.
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
#: scaling rules of :class:`IntrinsicReward` (see the module docstring)
RULES = ("return_std", "e3b_icml2023")


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
            every bonus is episodic under ``rule="return_std"``, True under ``rule="e3b_icml2023"``.
        rule: ``"return_std"`` or ``"e3b_icml2023"`` (see the module docstring).
        clip: clip the intrinsic reward to ``[-clip, clip]``; ``"auto"``: 1 under
            ``rule="e3b_icml2023"``, no clipping under ``rule="return_std"``; ``None``: no clipping.
    """

    routing = RewardRouting.INTRINSIC

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, bonuses: Mapping[str, BonusLike],
                 combine: str = "sum", coefs: Optional[Mapping[str, float]] = None, normalize: bool = True,
                 gamma: float = 0.99, schedule: str = "constant", decay_steps: int = 1_000_000,
                 final_fraction: float = 0.0, decay_rate: float = 0.5, episodic: Optional[bool] = None,
                 rule: str = "return_std", clip: Union[float, str, None] = "auto") -> None:
        super().__init__()
        if not bonuses:
            raise ValueError("IntrinsicReward needs at least one bonus")
        if combine not in ("sum", "product"):
            raise ValueError(f"reward.combine must be 'sum' or 'product', got {combine!r}")
        if rule not in RULES:
            raise ValueError(f"reward.rule must be one of {list(RULES)}, got {rule!r}")
        if clip == "auto":
            clip = 1.0 if rule == "e3b_icml2023" else None
        if clip is not None and not float(clip) > 0:
            raise ValueError(f"reward.clip must be > 0, None or 'auto', got {clip!r}")
        self.rule, self.clip = rule, None if clip is None else float(clip)
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
        if episodic is None:
            episodic = rule == "e3b_icml2023" or all(getattr(b, "episodic", False) for b in built.values())
        self.episodic = bool(episodic)
        # state/next_state are recorded when any bonus needs them: the union of their keys (None = all keys)
        needing = [b for b in built.values() if getattr(b, "needs_state", False)]
        self.needs_state = bool(needing)
        wanted = [getattr(b, "state_keys", None) for b in needing]
        self.state_keys = None if any(k is None for k in wanted) else sorted({k for keys in wanted for k in keys}) or None
        if rule == "return_std":
            keys = list(built) if combine == "sum" else ["product"]
            self.normalizers = nn.ModuleDict({k: DiscountedReturnNormalizer(self.gamma) for k in keys})
            self.means = nn.ModuleDict({k: RunningMeanStd(()) for k in built}) if combine == "product" else None
            self.step_stats = None
        else:  # running moments of the combined per-step values, as the original's (count starts ~0)
            self.normalizers, self.means = nn.ModuleDict(), None
            self.step_stats = RunningMeanStd((), epsilon=1e-8)
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
        if self.rule == "e3b_icml2023":
            total = self._raw_combination(raw, batch)
            if self.normalize:
                self.step_stats.update(total)
                std = self.step_stats.std.float()
                total = torch.where(std > 0, total / std.clamp(min=1e-30), total)
        elif self.combine == "sum":
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
        clipped = {}
        if self.clip is not None:
            clipped = {"intrinsic_clipped_fraction": (total.abs() > self.clip).float().mean()}
            total = total.clamp(-self.clip, self.clip)
        self._last = {**{f"{k}_mean": v.mean() for k, v in raw.items()}, **{f"{k}_std": v.std() for k, v in raw.items()},
                      "intrinsic_mean": total.mean(), "intrinsic_std": total.std(), **clipped}
        return total

    def _raw_combination(self, raw: Mapping[str, torch.Tensor], batch: TransitionBatch) -> torch.Tensor:
        """``sum_i coef_i b_i`` or ``prod_i coef_i b_i`` of the raw bonuses (``rule="e3b_icml2023"``)."""
        if self.combine == "sum":
            total = torch.zeros_like(batch.reward, dtype=torch.float32)
            for name, values in raw.items():
                total = total + self.coefs[name] * values
            return total
        total = torch.ones_like(batch.reward, dtype=torch.float32)
        for name, values in raw.items():
            total = total * (self.coefs[name] * values)
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
