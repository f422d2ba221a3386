from typing import Dict, Optional, Tuple

import torch


@torch.jit.script
def shaped_distance(pos: torch.Tensor, target: torch.Tensor, scale: Optional[float] = None) -> torch.Tensor:
    d = (pos - target).abs().sum(dim=-1).float()
    if scale is not None:
        d = d / scale
    return d


@torch.jit.script
def compute_reward(state: Dict[str, torch.Tensor], action: torch.Tensor,
                   next_state: Dict[str, torch.Tensor]) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    has_key = (next_state["carrying"][:, 0] == 5).float()
    key_dist = shaped_distance(next_state["agent_pos"], next_state["door_pos"], 8.0)
    goal_dist = shaped_distance(next_state["agent_pos"], next_state["goal_pos"], 8.0)
    key_temp: float = 0.5
    goal_temp: float = 0.5
    door_approach = has_key * torch.exp(-key_dist / key_temp)
    goal_approach = (next_state["door_state"] == 0).float() * torch.exp(-goal_dist / goal_temp)
    reward = 0.1 * door_approach + 0.2 * goal_approach
    return reward, {"door_approach": door_approach, "goal_approach": goal_approach}
