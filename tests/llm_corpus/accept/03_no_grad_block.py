import torch
from typing import Tuple, Dict


def compute_reward(state: Dict[str, torch.Tensor], action: torch.Tensor,
                   next_state: Dict[str, torch.Tensor]) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    with torch.no_grad():
        agent = next_state["agent_pos"].float()
        goal = next_state["goal_pos"].float()
        dist = torch.norm(agent - goal, dim=-1)
        temperature = 1.5
        dist_reward = torch.exp(-dist / temperature)
        reached = (dist == 0).float()
        step_penalty = -0.01 * torch.ones_like(dist)
        reward = 0.3 * dist_reward + 10.0 * reached + step_penalty
    return reward, {"dist_reward": dist_reward, "reached": reached, "step_penalty": step_penalty}
