# expect: refused
# attack: torch.ops.aten to call raw operators
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    y = torch.ops.aten.add(action, 1)
    return reward, {"dist": dist}
