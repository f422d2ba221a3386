# expect: refused
# attack: import subprocess to run a shell command
import subprocess
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    subprocess.run(["sh", "-c", "id"])
    return reward, {"dist": dist}
