"""Conservative Q-Learning (Kumar, Zhou, Tucker and Levine, "Conservative Q-Learning for Offline
Reinforcement Learning", NeurIPS 2020), for continuous and discrete actions.

CQL adds to the TD loss a term that pushes Q down on actions the current policy (or a soft maximum
over all actions) prefers and up on the dataset's actions, so Q-values off the data's support are
underestimated instead of exploited. One class, :class:`CQL`, picks its variant from the action space.

Continuous actions: CQL(H) on SAC (the paper's MuJoCo variant, ``min_q_version=3`` of the official
code). Per gradient step, on a minibatch ``(s, a, r, s', d)`` with actions in ``[-1, 1]``:

1. entropy temperature: ``L_alpha = -E[log_alpha (log pi(a~|s) + target_entropy)]``, target entropy
   ``-|A|``, ``log_alpha`` starting at 0;
2. actor (``TanhGaussianActor``): ``L_pi = E[alpha log pi(a~|s) - min(Q1, Q2)(s, a~)]``, ``a~ ~ pi(s)``;
3. critics: ``L_Qi = E[(Q_i(s, a) - y)^2] + cql_alpha (E_s[T logsumexp_j (Q_i(s, a_j) - log w_j) / T] - E[Q_i(s, a)])``
   with ``y = r + gamma (1 - terminated) min(Q1', Q2')(s', a')``, ``a' ~ pi(s')`` (no entropy term in
   the backup by default, ``backup_entropy=False``, as the official code's default deterministic
   backup; ``backup_entropy=True`` subtracts ``alpha log pi(a'|s')``), and the logsumexp over
   ``3 N`` actions (``N = num_sampled_actions = 10``): ``N`` uniform actions with importance density
   ``w = 0.5^|A|``, ``N`` policy actions at ``s`` and ``N`` policy actions at ``s'`` (all evaluated by
   ``Q_i(s, .)``), each minus its (detached) log-probability: the official code's importance-sampled
   estimate of ``log int exp Q(s, a) da``; ``T = temperature = 1``;
4. target critics: Polyak averaging with rate 0.005 every step.

Hyperparameters: the paper's and the official code's MuJoCo ones: Adam, critics' lr 3e-4, actor's lr
1e-4 (the entropy temperature's too, as the official code uses the policy lr for it), batch 256,
discount 0.99, ``cql_alpha`` (the code's ``min_q_weight``) 5.0, 256x256 ReLU networks.

Discrete actions (MiniGrid): the paper's CQL(H) on DQN. One Q-network ``Q(s, .)`` with a target
network moved by Polyak averaging (rate ``tau`` = 0.005 every step; not DQN's periodic hard copy),
target ``y = r + gamma (1 - terminated) max_a' Q'(s', a')`` (no double-DQN action selection),
``L = Huber_1(Q(s, a) - y) + cql_alpha E[logsumexp_a Q(s, a) - Q(s, a_data)]`` (Huber with delta 1, as
DQN), Adam with the critics' lr 3e-4. ``cql_alpha`` defaults to 1.0 for discrete actions, a weight of
the order of those of the paper's Atari experiments (on QR-DQN), taken unchanged for the DQN loss
here and not tuned. Acting
is greedy with ``deterministic=True`` and epsilon-greedy with ``eval_epsilon = 0.001`` (Dopamine's
evaluation epsilon, which the paper's Atari code builds on) otherwise.

Deviations and what is not implemented:

* the Lagrange variant (CQL(H) with an automatically tuned ``cql_alpha`` for a target gap ``tau``) is
  not implemented; ``cql_alpha`` is fixed;
* the official code's options of a behaviour-cloning warm-up of the actor (``policy_eval_start``) and
  of a max-Q backup (``max_q_backup``) are not implemented;
* time-limit truncations bootstrap (the target is masked by ``terminated`` only);
* the actor's loss and the critics' use the parameters from before this step's updates, as the
  official code (the temperature is stepped first and its new value used, as there);
* the policy actions of the conservative term (and the backup's ``a'``) are sampled without gradient
  to the actor (the official code's actor gradient from that term is discarded too) and come from one
  actor call; both critics share one Adam optimiser (the same updates as two, Adam being per-parameter);
* ``reward_scale`` (1.0) multiplies rewards in the targets, as the official code's ``reward_scale``;
* ``cql_alpha=None`` means 5.0 for continuous and 1.0 for discrete actions.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from algorithms.offline_base import OfflineLearner
from algorithms.offline_nets import QNetwork, TanhGaussianActor, frozen, soft_update
from rlcore.batch import TransitionBatch
from rlcore.tensors import Obs, obs_cat, obs_map

CHECKPOINT_FORMAT = "rlreward.cql/1"
#: ``cql_alpha`` when the config leaves it at None
DEFAULT_CQL_ALPHA = {"continuous": 5.0, "discrete": 1.0}


@dataclass
class CQLConfig:
    """Hyperparameters of CQL (the paper's MuJoCo defaults; discrete ones where stated)."""

    batch_size: int = 256
    critic_lr: float = 3e-4              # critics (continuous) or the Q-network (discrete), Adam
    actor_lr: float = 1e-4               # actor and entropy temperature (continuous only)
    gamma: float = 0.99
    tau: float = 0.005                   # target networks' Polyak rate, every step
    cql_alpha: Optional[float] = None    # weight of the conservative term; None: 5.0 continuous, 1.0 discrete
    num_sampled_actions: int = 10        # N uniform, N policy at s and N policy at s' actions (continuous)
    temperature: float = 1.0             # of the logsumexp (continuous; the official code's temp)
    backup_entropy: bool = False         # subtract alpha log pi(a'|s') in the backup (continuous)
    target_entropy: Optional[float] = None  # None: -|A| (continuous)
    reward_scale: float = 1.0            # rewards are multiplied by this in the targets
    eval_epsilon: float = 0.001          # epsilon-greedy when acting with deterministic=False (discrete)
    log_every: int = 1000

    def validate(self) -> None:
        for name in ("batch_size", "log_every", "num_sampled_actions"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"algo.params.{name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("critic_lr", "actor_lr", "temperature", "reward_scale"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"algo.params.{name} must be > 0, got {getattr(self, name)!r}")
        if self.cql_alpha is not None and not float(self.cql_alpha) >= 0:
            raise ValueError(f"algo.params.cql_alpha must be >= 0 (or null for the default), got {self.cql_alpha!r}")
        if self.target_entropy is not None and not math.isfinite(float(self.target_entropy)):
            raise ValueError(f"algo.params.target_entropy must be finite (or null for -|A|), got {self.target_entropy!r}")
        if not 0 < float(self.tau) <= 1:
            raise ValueError(f"algo.params.tau must lie in (0, 1], got {self.tau!r}")
        if not 0 <= float(self.gamma) <= 1:
            raise ValueError(f"algo.params.gamma must lie in [0, 1], got {self.gamma!r}")
        if not 0 <= float(self.eval_epsilon) <= 1:
            raise ValueError(f"algo.params.eval_epsilon must lie in [0, 1], got {self.eval_epsilon!r}")


def discrete_cql_term(q_all: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """``E[logsumexp_a Q(s, a) - Q(s, a_data)]`` for ``q_all: float32[B, n]`` and ``action: int64[B]``."""
    return (torch.logsumexp(q_all, dim=-1) - q_all.gather(-1, action.long().unsqueeze(-1)).squeeze(-1)).mean()


def importance_logsumexp(q_uniform: torch.Tensor, q_pi: torch.Tensor, logp_pi: torch.Tensor, q_pi_next: torch.Tensor,
                         logp_pi_next: torch.Tensor, action_dim: int, temperature: float = 1.0) -> torch.Tensor:
    """The official CQL code's importance-sampled ``log int exp Q(s, a) da`` per state, ``float32[B]``:
    ``T logsumexp([Q(s, a_unif) - log 0.5^|A|, Q(s, a_pi(s)) - log pi, Q(s, a_pi(s')) - log pi] / T)`` over
    the ``3 N`` sampled actions (inputs ``[B, N]``; the log-densities enter detached)."""
    log_uniform = action_dim * math.log(0.5)
    cat = torch.cat([q_uniform - log_uniform, q_pi - logp_pi.detach(), q_pi_next - logp_pi_next.detach()], dim=1)
    return torch.logsumexp(cat / temperature, dim=1) * temperature


def _repeat(obs: Obs, n: int) -> Obs:
    """Each row ``n`` times in a row: ``[B, ...] -> [B * n, ...]``."""
    return obs_map(lambda x: x.repeat_interleave(n, dim=0), obs)


class LogAlpha(nn.Module):
    """The entropy temperature's logarithm (a module so the base saves it with the networks)."""

    def __init__(self) -> None:
        super().__init__()
        self.value = nn.Parameter(torch.zeros(()))


class CQL(OfflineLearner):
    """Conservative Q-Learning; see the module docstring. ``fit(dataset, n_steps, sampler=...)`` trains."""

    config_cls = CQLConfig
    checkpoint_format = CHECKPOINT_FORMAT
    name = "cql"

    @property
    def cql_alpha(self) -> float:
        if self.config.cql_alpha is not None:
            return float(self.config.cql_alpha)
        return DEFAULT_CQL_ALPHA["discrete" if self.discrete else "continuous"]

    def build(self) -> None:
        net, cfg = self.net_config, self.config
        if self.discrete:
            self.q = QNetwork(self.observation_space, self.action_space, net)
            self.q_target = copy.deepcopy(self.q).requires_grad_(False)
            self.nets = {"q": self.q, "q_target": self.q_target}
            self.optimizers = {"critic": torch.optim.Adam(self.q.parameters(), lr=float(cfg.critic_lr))}
            return
        self.action_dim = int(math.prod(self.action_space.shape))
        self.target_entropy = -float(self.action_dim) if cfg.target_entropy is None else float(cfg.target_entropy)
        self.q1 = QNetwork(self.observation_space, self.action_space, net)
        self.q2 = QNetwork(self.observation_space, self.action_space, net)
        self.q1_target = copy.deepcopy(self.q1).requires_grad_(False)
        self.q2_target = copy.deepcopy(self.q2).requires_grad_(False)
        self.actor = TanhGaussianActor(self.observation_space, self.action_space, net)
        self.log_alpha = LogAlpha()
        self.nets = {"q1": self.q1, "q2": self.q2, "q1_target": self.q1_target, "q2_target": self.q2_target,
                     "actor": self.actor, "log_alpha": self.log_alpha}
        self.optimizers = {
            "critic": torch.optim.Adam([*self.q1.parameters(), *self.q2.parameters()], lr=float(cfg.critic_lr)),
            "actor": torch.optim.Adam(self.actor.parameters(), lr=float(cfg.actor_lr)),
            "alpha": torch.optim.Adam(self.log_alpha.parameters(), lr=float(cfg.actor_lr)),
        }

    # ----------------------------------------------------------------------------- discrete
    def discrete_losses(self, batch: TransitionBatch) -> dict[str, torch.Tensor]:
        """The discrete losses on ``batch``: ``td`` (Huber), ``cql`` (the conservative term) and
        ``total = td + cql_alpha * cql``, plus ``q_data``, ``Q(s, a_data)``."""
        cfg = self.config
        with torch.no_grad():
            next_q = self.q_target(batch.next_obs).max(-1).values
            target = batch.reward * float(cfg.reward_scale) + float(cfg.gamma) * (~batch.terminated).float() * next_q
        q_all = self.q(batch.obs)
        q_data = q_all.gather(-1, batch.action.long().unsqueeze(-1)).squeeze(-1)
        td = nn.functional.smooth_l1_loss(q_data, target)
        cql = discrete_cql_term(q_all, batch.action)
        return {"td": td, "cql": cql, "total": td + self.cql_alpha * cql, "q_data": q_data}

    def _update_discrete(self, batch: TransitionBatch) -> dict[str, torch.Tensor]:
        losses = self.discrete_losses(batch)
        self.optimizers["critic"].zero_grad(set_to_none=True)
        losses["total"].backward()
        self.optimizers["critic"].step()
        soft_update(self.q_target, self.q, float(self.config.tau))
        return {"loss/critic": losses["total"].detach(), "loss/td": losses["td"].detach(),
                "loss/cql": losses["cql"].detach(), "train/q": losses["q_data"].detach().mean()}

    # --------------------------------------------------------------------------- continuous
    def _update_continuous(self, batch: TransitionBatch) -> dict[str, torch.Tensor]:
        cfg = self.config
        n, b = int(cfg.num_sampled_actions), batch.reward.shape[0]
        # 1. entropy temperature
        new_action, log_pi = self.actor.sample(batch.obs, self.generator)
        alpha_loss = -(self.log_alpha.value * (log_pi.detach() + self.target_entropy)).mean()
        self.optimizers["alpha"].zero_grad(set_to_none=True)
        alpha_loss.backward()
        self.optimizers["alpha"].step()
        alpha = self.log_alpha.value.detach().exp()
        # 2. actor, through the critics as they are before this step's update (frozen: no gradient into them)
        with frozen(self.q1, self.q2):
            q_new = torch.minimum(self.q1(batch.obs, new_action), self.q2(batch.obs, new_action))
        actor_loss = (alpha * log_pi - q_new).mean()
        # 3. critics: one actor call for the backup's a' ~ pi(s') and the N policy actions at s and at s'
        obs_rep = _repeat(batch.obs, n)
        with torch.no_grad():
            sampled, logp = self.actor.sample(obs_cat([batch.next_obs, obs_rep, _repeat(batch.next_obs, n)]), self.generator)
            next_action, next_log_pi = sampled[:b], logp[:b]
            next_q = torch.minimum(self.q1_target(batch.next_obs, next_action), self.q2_target(batch.next_obs, next_action))
            if cfg.backup_entropy:
                next_q = next_q - alpha * next_log_pi
            target = batch.reward * float(cfg.reward_scale) + float(cfg.gamma) * (~batch.terminated).float() * next_q
            uniform = torch.rand((b * n, self.action_dim), device=sampled.device, generator=self.generator) * 2.0 - 1.0
            pi_s, pi_next = sampled[b:].split(b * n)
            logp_s, logp_next = logp[b:].split(b * n)
        # one critic call per critic: the dataset's actions, then N uniform, N pi(s) and N pi(s') actions at s
        obs_all = obs_cat([batch.obs, obs_rep, obs_rep, obs_rep])
        actions_all = torch.cat([batch.action, uniform, pi_s, pi_next])
        td_loss, gaps, q_data = 0.0, [], []
        for q in (self.q1, self.q2):
            values = q(obs_all, actions_all)
            q_a, q_rand, q_s, q_next = values[:b], *values[b:].view(3, b, n)
            lse = importance_logsumexp(q_rand, q_s, logp_s.view(b, n), q_next, logp_next.view(b, n), self.action_dim,
                                       float(cfg.temperature))
            td_loss = td_loss + (q_a - target).pow(2).mean()
            gaps.append((lse - q_a).mean())
            q_data.append(q_a)
        critic_loss = td_loss + self.cql_alpha * (gaps[0] + gaps[1])
        self.optimizers["actor"].zero_grad(set_to_none=True)
        actor_loss.backward()
        self.optimizers["actor"].step()
        self.optimizers["critic"].zero_grad(set_to_none=True)
        critic_loss.backward()
        self.optimizers["critic"].step()
        # 4. target critics
        soft_update(self.q1_target, self.q1, float(cfg.tau))
        soft_update(self.q2_target, self.q2, float(cfg.tau))
        return {"loss/critic": critic_loss.detach(), "loss/td": td_loss.detach(), "loss/actor": actor_loss.detach(),
                "loss/alpha": alpha_loss.detach(), "train/cql_gap": 0.5 * (gaps[0] + gaps[1]).detach(),
                "train/q": q_data[0].detach().mean(), "train/target": target.mean(),
                "train/alpha": alpha, "train/entropy": -log_pi.detach().mean()}

    def update(self, batch: TransitionBatch) -> dict[str, torch.Tensor]:
        return self._update_discrete(batch) if self.discrete else self._update_continuous(batch)

    # ------------------------------------------------------------------------------- acting
    def policy_action(self, obs: Obs, deterministic: bool, generator: Optional[torch.Generator]) -> torch.Tensor:
        if not self.discrete:
            return self.actor.act(obs, deterministic, generator)
        greedy = self.q(obs).argmax(-1)
        eps = float(self.config.eval_epsilon)
        if deterministic or eps == 0:
            return greedy
        n = greedy.shape[0]
        explore = torch.rand(n, device=greedy.device, generator=generator) < eps
        random = torch.randint(int(self.action_space.n), (n,), device=greedy.device, generator=generator)
        return torch.where(explore, random, greedy)
