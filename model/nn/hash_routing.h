// Hash layers' routing (Roller et al. 2021, "Hash Layers For Large Sparse
// Models"): a fixed table from token id to expert, the same at every depth.
// Random (as ParlAI's hash_ladder, but here kept in the checkpoint rather
// than rebuilt lazily) or balanced: ids are placed heaviest first on the
// expert with the least corpus frequency so far, so every expert sees about
// the same share of the corpus.
#pragma once

#include <cstdint>
#include <vector>

namespace smx {

/// A uniformly random expert per id, from a fixed seed (the same table on every machine).
std::vector<int64_t> random_hash_table(int64_t vocab_size, int64_t experts, uint64_t seed = 42);

/// Frequency-balanced table: frequency[id] = how often id occurs in the corpus.
/// Ids with equal frequency are placed in id order; ids never seen are spread
/// round-robin, so every id has an expert.
std::vector<int64_t> balanced_hash_table(const std::vector<int64_t>& frequency, int64_t experts);

/// Occurrences of each id in [0, vocab_size) among `ids` (others are ignored).
std::vector<int64_t> id_frequencies(const std::vector<int32_t>& ids, int64_t vocab_size);

}  // namespace smx
