import torch
from typing import Tuple, Dict

TOGGLE, PICKUP = 5, 3
DIRS = ((1, 0), (0, 1), (-1, 0), (0, -1))


def front_cell(pos: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    steps = torch.tensor(DIRS, dtype=pos.dtype, device=pos.device)
    return pos + steps[direction]


@torch.jit.script
def compute_reward(state: Dict[str, torch.Tensor], action: torch.Tensor,
                   next_state: Dict[str, torch.Tensor]) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    front = front_cell(state["agent_pos"], state["agent_dir"])
    facing_door = (front == state["door_pos"]).all(dim=-1).float()
    toggled = (action == TOGGLE).float() * facing_door
    door_opened = ((state["door_state"] != 0) & (next_state["door_state"] == 0)).float()
    useless_toggle = (action == TOGGLE).float() * (1.0 - facing_door)
    temperature: float = 0.2
    toggle_reward = torch.exp(toggled / temperature) - 1.0
    reward = 0.05 * toggle_reward + door_opened - 0.01 * useless_toggle
    return reward, {"toggle_reward": toggle_reward, "door_opened": door_opened, "useless_toggle": useless_toggle}
