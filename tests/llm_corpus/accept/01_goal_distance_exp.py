import torch
from typing import Tuple, Dict


@torch.jit.script
def compute_reward(state: Dict[str, torch.Tensor], action: torch.Tensor,
                   next_state: Dict[str, torch.Tensor]) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    # distance of the agent to the goal, before and after the step
    dist_before = (state["agent_pos"] - state["goal_pos"]).abs().sum(dim=-1).float()
    dist_after = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(dim=-1).float()

    distance_temperature: float = 0.5
    progress = dist_before - dist_after
    progress_reward = torch.tanh(progress / distance_temperature)

    goal_temperature: float = 2.0
    proximity_reward = torch.exp(-dist_after / goal_temperature)

    reward = 0.5 * progress_reward + 0.1 * proximity_reward
    return reward, {"progress_reward": progress_reward, "proximity_reward": proximity_reward}
