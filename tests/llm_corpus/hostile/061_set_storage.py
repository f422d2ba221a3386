# expect: refused
# attack: set_ points an input at other memory
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    action.set_(torch.zeros(1, dtype=torch.int64))
    return reward, {"dist": dist}
