"""Reward code as a reward module: what a training run of one candidate uses in place of the env's reward.

:class:`CodeReward` loads a reward program (``def compute_reward(state, action, next_state)``,
see :mod:`rewards.llm.sandbox`), compiles it with the sandbox's restricted builtins and calls it on
every rollout: the ``[T, N]`` batch is flattened to ``[T * N]`` (the program is written for a batch
of ``N`` envs; it sees ``T * N`` rows). ``compute`` returns the program's reward; its ``routing`` tells
the learner to replace the env's reward with it (``RewardRouting.REPLACE``, default) or to add it to the
env's reward (``RewardRouting.ADD``), which the learner does with :func:`rlcore.reward.route_reward`
(the total is ``route_reward(module.routing, batch.reward, module.compute(batch))``). Its named
components are kept and reported by ``update`` as ``component/<name>/mean|min|max`` (the training log
shows them as ``reward/component/...``), which is what the search's reward reflection reads back.
With ``call_timeout_s`` (the reward search sets ``search.reward_call_timeout_s``), a call that runs
longer is stopped with an error saying "the reward call exceeded N s" (a ``SIGALRM`` deadline, see
:func:`rewards.llm.sandbox.runtime.call_deadline`): a hang on batches the validation sample did not
contain ends the run at once instead of at the search's wall-clock limit.

:class:`TaskMetricReward` is the "task metric used directly as reward" baseline: ``1`` on a
transition where the episode ends in success (``terminated`` with a positive env reward, the
success rule of MiniGrid), else ``0``.

Both need the privileged state the learner records (``needs_state``); ``TaskMetricReward`` does not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import gymnasium as gym
import torch

from rewards.llm.sandbox import DEFAULT_MAX_COMPONENTS, RewardFunction, tensor_stats
from rlcore.batch import TransitionBatch
from rlcore.reward import RewardModule, RewardRouting, RoutingLike, parse_routing


def _flat(tensors: dict[str, torch.Tensor], lead: int) -> dict[str, torch.Tensor]:
    return {k: v.reshape(-1, *v.shape[lead:]) for k, v in tensors.items()}


class CodeReward(RewardModule):
    """A compiled reward program as the task reward.

    Args:
        observation_space, action_space: single-env spaces (unused; the program reads the state).
        code_path: file holding the program (or pass ``code``).
        code: the program's source.
        routing: ``RewardRouting.REPLACE`` / ``"replace"`` (the program's reward is the learner's
            reward) or ``RewardRouting.ADD`` / ``"add"`` (the learner adds it to the env's reward).
        check_outputs: check shape, dtype and finiteness of every call (one host sync per rollout).
        max_components: most components the program may return (more raise ``RewardCodeError``).
        call_timeout_s: wall-clock seconds one call of the program may take (``None``: no deadline);
            a longer call raises ``RewardCodeError`` ("the reward call exceeded N s"). Enforced in
            the main thread only (``SIGALRM``).

    The program runs on copies of the batch's tensors: a write to its inputs (``action[:] = 6``)
    cannot reach the learner's rollout storage.

    Raises:
        ValueError: neither or both of ``code`` / ``code_path``; a routing other than replace / add;
            a ``call_timeout_s`` that is not ``None`` or > 0.
    """

    needs_state = True
    name = "code_reward"

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, code_path: Optional[str] = None,
                 code: Optional[str] = None, routing: RoutingLike = RewardRouting.REPLACE,
                 check_outputs: bool = True, max_components: int = DEFAULT_MAX_COMPONENTS,
                 call_timeout_s: Optional[float] = None) -> None:
        super().__init__()
        if (code is None) == (code_path is None):
            raise ValueError("CodeReward needs exactly one of code= or code_path=")
        try:
            self.routing = parse_routing(routing, (RewardRouting.REPLACE, RewardRouting.ADD), name="CodeReward routing")
        except ValueError as err:
            raise ValueError(f"{err} (the routing mode of the program's reward: 'replace' uses it in place of the "
                             "env's reward, 'add' adds it to the env's reward)") from None
        self.code = Path(code_path).read_text() if code_path is not None else str(code)
        # checked and compiled, not validated: the search validated it in its isolated child
        self.fn = RewardFunction(self.code, check_outputs=check_outputs, max_components=max_components,
                                 call_timeout_s=call_timeout_s)
        self._components: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def compute(self, batch: TransitionBatch) -> torch.Tensor:
        """The program's reward float32[*batch.batch_shape] (the env's reward is not added here, in
        either routing: for ``ADD`` the learner adds it)."""
        if batch.state is None or batch.next_state is None:
            raise ValueError("CodeReward needs the privileged state in the batch (state/next_state); the learner "
                             "records it for modules with needs_state=True")
        lead = batch.reward.dim()
        action = batch.action.reshape(-1, *batch.action.shape[lead:])
        # the RewardFunction hands the program copies of these views of the rollout storage
        reward, components = self.fn(_flat(batch.state, lead), action, _flat(batch.next_state, lead))
        self._components = {k: v.detach() for k, v in components.items()}
        return reward.reshape(batch.batch_shape).float()

    def update(self, batch: TransitionBatch) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, v in self._components.items():
            out.update({f"component/{name}/{stat}": x for stat, x in tensor_stats(v).items()})
        return out


class TaskMetricReward(RewardModule):
    """``1.0`` where an episode ends in success (``terminated`` and env reward > 0), else ``0.0``."""

    routing = RewardRouting.REPLACE
    name = "task_metric"

    def __init__(self, observation_space: gym.Space, action_space: gym.Space) -> None:
        super().__init__()

    @torch.no_grad()
    def compute(self, batch: TransitionBatch) -> torch.Tensor:
        return (batch.terminated & (batch.reward > 0)).float()
