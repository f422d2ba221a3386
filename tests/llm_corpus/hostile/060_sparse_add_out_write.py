# expect: refused
# attack: torch.add(buf, sp, out=buf): a sparse tensor with a bad index writes out of bounds
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    idx = torch.tensor([[0, 1000000]])
    sp = torch.sparse_coo_tensor(idx, torch.ones(2), (dist.shape[0],), check_invariants=False)
    buf = torch.zeros(dist.shape[0])
    torch.add(buf, sp, out=buf)
    reward = reward + buf
    return reward, {"dist": dist}
