//! Minimal cost-complexity pruning (`ccp_alpha`), Breiman's weakest-link algorithm as
//! scikit-learn implements it.
//!
//! The cost of a subtree is `R(T) + alpha * |leaves(T)|`, with `R` the weighted impurity of its
//! leaves (weights as fractions of the tree's total). Repeatedly collapse the internal node whose
//! collapse costs the least per leaf removed, `(R(t) - R(T_t)) / (|T_t| - 1)`, while that
//! effective alpha is at most `ccp_alpha`.

use super::builder::RawNode;
use super::model::LEAF;

/// Prunes `nodes` in place: collapsed nodes become leaves (their subtrees become unreachable
/// and are dropped when the tree is finished).
pub(crate) fn prune_cost_complexity(nodes: &mut [RawNode], total_weight: f64, ccp_alpha: f64) {
    let n = nodes.len();
    if n <= 1 || total_weight <= 0.0 {
        return;
    }
    let r_node: Vec<f64> = nodes
        .iter()
        .map(|nd| nd.weight / total_weight * nd.impurity)
        .collect();
    let mut parent = vec![usize::MAX; n];
    for (i, nd) in nodes.iter().enumerate() {
        if nd.left != LEAF {
            parent[nd.left as usize] = i;
            parent[nd.right as usize] = i;
        }
    }
    // Children always have larger indices, so a reverse sweep sees children first.
    let mut leaves = vec![0usize; n];
    let mut r_branch = vec![0.0f64; n];
    for i in (0..n).rev() {
        let nd = &nodes[i];
        if nd.left == LEAF {
            leaves[i] = 1;
            r_branch[i] = r_node[i];
        } else {
            let (l, r) = (nd.left as usize, nd.right as usize);
            leaves[i] = leaves[l] + leaves[r];
            r_branch[i] = r_branch[l] + r_branch[r];
        }
    }
    let mut alive = vec![true; n];
    loop {
        let mut weakest: Option<(f64, usize)> = None;
        for i in 0..n {
            if !alive[i] || nodes[i].left == LEAF {
                continue;
            }
            let alpha = (r_node[i] - r_branch[i]) / (leaves[i] - 1) as f64;
            if weakest.is_none_or(|(a, _)| alpha < a) {
                weakest = Some((alpha, i));
            }
        }
        let Some((alpha, i)) = weakest else { break };
        if alpha > ccp_alpha {
            break;
        }
        // Collapse node i: its descendants die, its ancestors lose its leaves.
        let mut stack = vec![nodes[i].left as usize, nodes[i].right as usize];
        while let Some(d) = stack.pop() {
            alive[d] = false;
            if nodes[d].left != LEAF {
                stack.push(nodes[d].left as usize);
                stack.push(nodes[d].right as usize);
            }
        }
        let removed_leaves = leaves[i] - 1;
        let delta_r = r_node[i] - r_branch[i];
        nodes[i].left = LEAF;
        nodes[i].right = LEAF;
        leaves[i] = 1;
        r_branch[i] = r_node[i];
        let mut a = parent[i];
        while a != usize::MAX {
            leaves[a] -= removed_leaves;
            r_branch[a] += delta_r;
            a = parent[a];
        }
    }
}
