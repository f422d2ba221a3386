# expect: refused
# attack: torch.from_file maps any file into a tensor
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    secret = torch.from_file("/etc/passwd", size=64, dtype=torch.uint8)
    return reward, {"dist": dist}
