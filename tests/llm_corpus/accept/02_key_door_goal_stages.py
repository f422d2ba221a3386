import torch
from typing import Tuple, Dict

KEY, DOOR, GOAL = 5, 4, 8
OPEN, CLOSED, LOCKED = 0, 1, 2


@torch.jit.script
def manhattan(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).abs().sum(dim=-1).float()


def compute_reward(state: Dict[str, torch.Tensor], action: torch.Tensor,
                   next_state: Dict[str, torch.Tensor]) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    has_key_before = (state["carrying"][:, 0] == KEY).float()
    has_key_after = (next_state["carrying"][:, 0] == KEY).float()
    door_open_before = (state["door_state"] == OPEN).float()
    door_open_after = (next_state["door_state"] == OPEN).float()

    key_pickup_reward = (has_key_after - has_key_before).clamp(min=0.0)
    door_open_reward = (door_open_after - door_open_before).clamp(min=0.0)

    goal_temperature: float = 3.0
    goal_dist = manhattan(next_state["agent_pos"], next_state["goal_pos"])
    goal_reward = door_open_after * torch.exp(-goal_dist / goal_temperature)

    reward = 1.0 * key_pickup_reward + 1.0 * door_open_reward + 0.2 * goal_reward
    return reward, {"key_pickup": key_pickup_reward, "door_open": door_open_reward, "goal_proximity": goal_reward}
