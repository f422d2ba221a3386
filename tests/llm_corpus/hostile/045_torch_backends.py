# expect: refused
# attack: torch.backends to flip global flags for the trainer
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    flag = torch.backends.cudnn.enabled
    return reward, {"dist": dist}
