// BASE layers' routing (Lewis et al. 2021, "BASE Layers"): while training,
// an exact balanced assignment of tokens to experts that maximises the total
// token-expert affinity with every expert taking exactly T / E tokens; in
// evaluation, each token goes to its highest-affinity expert (loads become
// unequal). fairseq solves the training problem approximately with an auction;
// here it is solved exactly, by successive shortest augmenting paths over the
// E experts (a transportation problem with E sinks), so a test can compare it
// with brute force.
#pragma once

#include <cstdint>
#include <vector>

namespace smx {

/// affinity: row-major [T x E] scores to maximise; every expert takes exactly
/// `per_expert` tokens (T must equal E * per_expert). Returns each token's
/// expert. Deterministic: ties go to the earlier token and the lower expert.
/// Cost O(T * E^3 + T * E^2 log T).
std::vector<int64_t> balanced_assignment(const std::vector<double>& affinity, int64_t tokens, int64_t experts,
                                         int64_t per_expert);

/// Each token's highest-affinity expert (the lower index on ties).
std::vector<int64_t> greedy_assignment(const std::vector<double>& affinity, int64_t tokens, int64_t experts);

}  // namespace smx
