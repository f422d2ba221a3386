"""Policy evaluation on a batched env: the first episode of every env, so no bias to short episodes."""

from __future__ import annotations

from typing import Callable

import torch

from rlcore.env import BatchedEnv
from rlcore.tensors import Obs


@torch.no_grad()
def evaluate_policy(
    act: Callable[[Obs], torch.Tensor],
    env: BatchedEnv,
    seed: int | None = None,
    max_steps: int = 100_000,
    check_every: int = 32,
) -> dict[str, float]:
    """Run ``act`` on every env of ``env`` until each has finished one episode.

    Args:
        act: maps a batch observation to env actions (already clipped / on ``env.device``).
        env: evaluation env; it is reset first. ``num_envs`` episodes are measured.
        seed: reset seed (evaluation layouts are reproducible for a fixed seed).
        max_steps: safety bound on batched steps; envs unfinished by then count as failures.
        check_every: steps between the host syncs that test whether all envs are done.

    Returns:
        ``return_mean``, ``return_std``, ``success_rate``, ``length_mean``, ``episodes``.
    """
    obs, _ = env.reset(seed=seed)
    N, device = env.num_envs, env.device
    running = torch.zeros(N, device=device)
    lengths = torch.zeros(N, device=device)
    final_return = torch.zeros(N, device=device)
    final_length = torch.zeros(N, device=device)
    success = torch.zeros(N, dtype=torch.bool, device=device)
    finished = torch.zeros(N, dtype=torch.bool, device=device)
    for step in range(1, max_steps + 1):
        obs, reward, terminated, truncated, info = env.step(act(obs))
        active = ~finished
        running += reward * active
        lengths += active.float()
        done = (terminated | truncated) & active
        final_return = torch.where(done, running, final_return)
        final_length = torch.where(done, lengths, final_length)
        if "success" in info:
            success |= done & info["success"]
        finished |= done
        if step % check_every == 0 and bool(finished.all()):
            break
    final_return = torch.where(finished, final_return, running)
    return {
        "return_mean": float(final_return.mean()),
        "return_std": float(final_return.std()) if N > 1 else 0.0,
        "success_rate": float(success.float().mean()),
        "length_mean": float(torch.where(finished, final_length, lengths).mean()),
        "episodes": N,
    }
