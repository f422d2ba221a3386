import torch
import torch.nn.functional as F
from typing import Tuple, Dict

KEY, DOOR, GOAL = 5, 4, 8


def count_objects(grid: torch.Tensor, obj: int) -> torch.Tensor:
    return (grid[..., 0] == obj).flatten(1).sum(dim=-1).float()


@torch.jit.script
def compute_reward(state: Dict[str, torch.Tensor], action: torch.Tensor,
                   next_state: Dict[str, torch.Tensor]) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    keys_before = count_objects(state["grid"], KEY)
    keys_after = count_objects(next_state["grid"], KEY)
    key_taken = F.relu(keys_before - keys_after)
    goal_visible = (count_objects(next_state["grid"], GOAL) > 0).float()
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(dim=-1).float()
    temperature = 4.0
    goal_term = goal_visible * torch.exp(-dist / temperature)
    reward = key_taken + 0.1 * goal_term
    return reward, {"key_taken": key_taken, "goal_term": goal_term}
