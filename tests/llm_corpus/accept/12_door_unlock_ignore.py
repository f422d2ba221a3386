import torch
from typing import Tuple, Dict

LOCKED, OPEN = 2, 0


@torch.jit.ignore
def unlocked(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    return ((before == LOCKED) & (after != LOCKED)).float()


@torch.jit.script
def compute_reward(state: Dict[str, torch.Tensor], action: torch.Tensor,
                   next_state: Dict[str, torch.Tensor]) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    unlock_reward = unlocked(state["door_state"], next_state["door_state"])
    through_door = ((next_state["agent_pos"][:, 0] > next_state["door_pos"][:, 0])
                    & (next_state["door_state"] == OPEN)).float()
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(dim=-1).float()
    temperature: float = 5.0
    goal_reward = through_door * torch.exp(-dist / temperature)
    reward = unlock_reward + 0.5 * through_door * 0.1 + 0.2 * goal_reward
    return reward, {"unlock": unlock_reward, "through_door": through_door, "goal_reward": goal_reward}
