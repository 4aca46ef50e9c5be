// Small helpers shared by the routing tests: hand-written probabilities in,
// the tokens each expert took out.
#pragma once

#include <cstdint>
#include <vector>

#include "model/nn/routing.h"

namespace smx::test {

/// probs [1, T, E] from a nested list (one row per token).
inline torch::Tensor probs_of(const std::vector<std::vector<float>>& rows) {
  const int64_t T = int64_t(rows.size()), E = int64_t(rows[0].size());
  auto t = torch::empty({1, T, E});
  for (int64_t i = 0; i < T; ++i)
    for (int64_t e = 0; e < E; ++e) t[0][i][e] = rows[size_t(i)][size_t(e)];
  return t;
}

/// The tokens in expert e's slots of group g, in slot order (empty slots left out).
inline std::vector<int64_t> slots_of(const RoutingDecision& d, int64_t g, int64_t e) {
  std::vector<int64_t> v;
  const int64_t T = d.probs.size(1);
  for (int64_t c = 0; c < d.dispatch.size(2); ++c) {
    const auto t = d.dispatch[g][e][c].item<int64_t>();
    if (t < T) v.push_back(t);
  }
  return v;
}

}  // namespace smx::test
