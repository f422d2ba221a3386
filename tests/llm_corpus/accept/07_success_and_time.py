import torch
from typing import Tuple, Dict


@torch.jit.script
def compute_reward(state: Dict[str, torch.Tensor], action: torch.Tensor,
                   next_state: Dict[str, torch.Tensor]) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    at_goal = (next_state["agent_pos"] == next_state["goal_pos"]).all(dim=-1)
    success = at_goal.float()
    steps = next_state["step_count"].float()
    time_temperature: float = 100.0
    time_bonus = success * torch.exp(-steps / time_temperature)
    dist: torch.Tensor = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(dim=-1).float()
    shaping = -0.01 * dist
    reward = success + time_bonus + shaping
    components: Dict[str, torch.Tensor] = {"success": success, "time_bonus": time_bonus, "shaping": shaping}
    return reward, components
