// Exact balanced assignment; see base_routing.h.
//
// Tokens are added one at a time. The assignment of the tokens added so far is
// always an optimal one for them (with at most `per_expert` per expert), and
// a new token enters along a shortest augmenting path: it joins expert e0,
// which passes one of its tokens on to e1, ..., until an expert with a free
// slot is reached. Moving token u from expert e to f costs a[u][e] - a[u][f];
// the cheapest such move for each ordered pair (e, f) is kept in a heap of
// the tokens in e (stale entries are skipped when they surface). Paths are
// found with Bellman-Ford over the E experts (moves can have negative cost,
// but an optimal assignment has no negative cycle), so this is the successive
// shortest path algorithm for min-cost flow, and the result is optimal.
#include "model/nn/base_routing.h"

#include <limits>
#include <queue>
#include <stdexcept>
#include <string>
#include <utility>

namespace smx {

std::vector<int64_t> balanced_assignment(const std::vector<double>& a, int64_t T, int64_t E, int64_t per_expert) {
  if (E < 1 || per_expert < 1 || T != E * per_expert)
    throw std::invalid_argument("balanced assignment needs tokens = experts x per_expert, got " + std::to_string(T) +
                                " tokens, " + std::to_string(E) + " experts, " + std::to_string(per_expert) +
                                " per expert");
  if (int64_t(a.size()) != T * E) throw std::invalid_argument("balanced assignment: affinity is not tokens x experts");
  auto at = [&](int64_t t, int64_t e) { return a[size_t(t * E + e)]; };
  constexpr double kInf = std::numeric_limits<double>::infinity();
  constexpr double kTolerance = 1e-12;  // strict improvements only: no cycling on equal paths

  using Entry = std::pair<double, int64_t>;  // (cost of moving the token, token); smaller token first on ties
  using MinHeap = std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>>;
  const auto n_tokens = static_cast<size_t>(T), n_experts = static_cast<size_t>(E);
  std::vector<MinHeap> moves(n_experts * n_experts);  // moves[e * E + f]: tokens in e, by the cost of moving them to f
  std::vector<int64_t> expert_of(n_tokens, -1), load(n_experts, 0);
  auto place = [&](int64_t u, int64_t e) {
    expert_of[size_t(u)] = e;
    for (int64_t f = 0; f < E; ++f)
      if (f != e) moves[size_t(e * E + f)].push({at(u, e) - at(u, f), u});
  };

  std::vector<double> dist(n_experts), edge(n_experts * n_experts);
  std::vector<int64_t> prev(n_experts), mover(n_experts * n_experts);
  for (int64_t t = 0; t < T; ++t) {
    // The cheapest move along every edge e -> f.
    for (int64_t e = 0; e < E; ++e)
      for (int64_t f = 0; f < E; ++f) {
        const size_t k = size_t(e * E + f);
        edge[k] = kInf;
        mover[k] = -1;
        if (e == f) continue;
        auto& heap = moves[k];
        while (!heap.empty() && expert_of[size_t(heap.top().second)] != e) heap.pop();  // stale: the token left e
        if (!heap.empty()) {
          edge[k] = heap.top().first;
          mover[k] = heap.top().second;
        }
      }
    // Shortest paths from the new token: straight into e, then along moves.
    for (int64_t e = 0; e < E; ++e) {
      dist[size_t(e)] = -at(t, e);
      prev[size_t(e)] = -1;
    }
    for (int64_t round = 0; round + 1 < E; ++round) {
      bool changed = false;
      for (int64_t e = 0; e < E; ++e)
        for (int64_t f = 0; f < E; ++f) {
          const double w = edge[size_t(e * E + f)];
          if (w == kInf) continue;
          if (dist[size_t(e)] + w < dist[size_t(f)] - kTolerance) {
            dist[size_t(f)] = dist[size_t(e)] + w;
            prev[size_t(f)] = e;
            changed = true;
          }
        }
      if (!changed) break;
    }
    // The cheapest path that ends at an expert with a free slot.
    int64_t target = -1;
    for (int64_t f = 0; f < E; ++f)
      if (load[size_t(f)] < per_expert && (target < 0 || dist[size_t(f)] < dist[size_t(target)] - kTolerance))
        target = f;
    // Walk it back: each expert on the path passes a token on to the next one.
    ++load[size_t(target)];
    int64_t f = target;
    while (prev[size_t(f)] >= 0) {
      const int64_t e = prev[size_t(f)];
      place(mover[size_t(e * E + f)], f);
      f = e;
    }
    place(t, f);
  }
  return expert_of;
}

std::vector<int64_t> greedy_assignment(const std::vector<double>& a, int64_t T, int64_t E) {
  std::vector<int64_t> out(static_cast<size_t>(T), 0);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t e = 1; e < E; ++e)
      if (a[size_t(t * E + e)] > a[size_t(t * E + out[size_t(t)])]) out[size_t(t)] = e;
  return out;
}

}  // namespace smx
