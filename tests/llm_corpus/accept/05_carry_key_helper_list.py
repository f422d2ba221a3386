import torch
from typing import Dict, List, Tuple

KEY_ID: int = 5
WEIGHTS: Tuple[float, float] = (1.0, 0.5)


@torch.jit.script
def is_carrying(carrying: torch.Tensor, obj_id: int) -> torch.Tensor:
    return (carrying[:, 0] == obj_id).float()


@torch.jit.script
def compute_reward(state: Dict[str, torch.Tensor], action: torch.Tensor,
                   next_state: Dict[str, torch.Tensor]) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    carrying_key = is_carrying(next_state["carrying"], KEY_ID)
    picked = carrying_key - is_carrying(state["carrying"], KEY_ID)
    parts: List[torch.Tensor] = [picked.clamp(min=0.0), carrying_key * 0.01]
    pickup_reward = WEIGHTS[0] * parts[0]
    hold_reward = WEIGHTS[1] * parts[1]
    total = pickup_reward + hold_reward
    return total, {"pickup_reward": pickup_reward, "hold_reward": hold_reward}
