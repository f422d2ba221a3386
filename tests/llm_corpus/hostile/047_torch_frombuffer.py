# expect: refused
# attack: torch.frombuffer wraps a raw buffer
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    raw = torch.frombuffer(b"abcd", dtype=torch.uint8)
    return reward, {"dist": dist}
