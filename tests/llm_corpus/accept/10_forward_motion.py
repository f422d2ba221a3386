import torch
from typing import Tuple, Dict

LEFT, RIGHT, FORWARD = 0, 1, 2
MOVE_BONUS, TURN_COST = 0.01, 0.005


@torch.jit.script
def compute_reward(state: Dict[str, torch.Tensor], action: torch.Tensor,
                   next_state: Dict[str, torch.Tensor]) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    moved = (next_state["agent_pos"] != state["agent_pos"]).any(dim=-1).float()
    turned = ((action == LEFT) | (action == RIGHT)).float()
    with torch.no_grad():
        move_reward = MOVE_BONUS * moved
        turn_penalty = -TURN_COST * turned
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(dim=-1).float()
    temperature = 2.0
    goal_reward = torch.exp(-dist / temperature)
    reward = move_reward + turn_penalty + 0.3 * goal_reward
    return reward, {"move_reward": move_reward, "turn_penalty": turn_penalty, "goal_reward": goal_reward}
