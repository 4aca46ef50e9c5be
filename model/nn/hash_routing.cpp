// Hash routing tables; see hash_routing.h.
#include "model/nn/hash_routing.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>

namespace smx {

std::vector<int64_t> random_hash_table(int64_t vocab_size, int64_t experts, uint64_t seed) {
  if (vocab_size < 1 || experts < 1)
    throw std::invalid_argument("hash table needs vocab_size and experts >= 1, got " + std::to_string(vocab_size) +
                                " and " + std::to_string(experts));
  std::mt19937_64 rng(seed);  // mt19937_64's sequence is fixed by the standard
  std::vector<int64_t> table(static_cast<size_t>(vocab_size));
  for (auto& e : table) e = int64_t(rng() % uint64_t(experts));
  return table;
}

std::vector<int64_t> balanced_hash_table(const std::vector<int64_t>& frequency, int64_t experts) {
  if (frequency.empty() || experts < 1)
    throw std::invalid_argument("balanced hash table needs a vocabulary and experts >= 1");
  std::vector<int64_t> order(frequency.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return frequency[size_t(a)] > frequency[size_t(b)]; });
  std::vector<int64_t> table(frequency.size(), 0), mass(size_t(experts), 0);
  int64_t unseen = 0;
  for (int64_t id : order) {
    if (frequency[size_t(id)] <= 0) {  // no mass to balance: round-robin
      table[size_t(id)] = unseen++ % experts;
      continue;
    }
    const auto lightest = std::min_element(mass.begin(), mass.end()) - mass.begin();  // lowest index on ties
    table[size_t(id)] = lightest;
    mass[size_t(lightest)] += frequency[size_t(id)];
  }
  return table;
}

std::vector<int64_t> id_frequencies(const std::vector<int32_t>& ids, int64_t vocab_size) {
  std::vector<int64_t> f(size_t(std::max<int64_t>(vocab_size, 0)), 0);
  for (int32_t id : ids)
    if (id >= 0 && id < vocab_size) ++f[size_t(id)];
  return f;
}

}  // namespace smx
