# expect: refused
# attack: import torch.utils.data (a torch submodule outside the allowed list)
import torch
import torch.utils.data


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    return reward, {"dist": dist}
