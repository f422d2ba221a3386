# expect: refused
# attack: co_code/co_consts of a code object (bytecode rewriting)
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    fn = lambda: 0
    bytecode = fn.__code__.co_code
    return reward, {"dist": dist}
