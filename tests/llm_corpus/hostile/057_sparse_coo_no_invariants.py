# expect: refused
# attack: sparse_coo_tensor(..., check_invariants=False) with out-of-range indices
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    idx = torch.tensor([[0, 1000000]])
    sp = torch.sparse_coo_tensor(idx, torch.ones(2), (dist.shape[0],), check_invariants=False)
    reward = reward + sp.to_dense()
    return reward, {"dist": dist}
