# expect: refused
# attack: open('/etc/passwd') to read a file
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    secret = open("/etc/passwd").read()
    return reward, {"dist": dist}
