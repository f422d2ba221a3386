# expect: refused
# attack: torch.utils.cpp_extension compiles and loads native code
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    ext = torch.utils.cpp_extension.load_inline("x", "")
    return reward, {"dist": dist}
