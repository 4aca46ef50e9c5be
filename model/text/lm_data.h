// Language-model data: the corpus as one contiguous token stream per split (documents one after
// another, each closed by a separator token), cut into windows of seq_len tokens: the model predicts
// tokens 1 .. seq_len-1 of a window from the ones before. The held-out split is the same set of documents as the
// pre-training data's (a hash of the document index), so held-out perplexity never sees training text.
//
// Window k is a pure function of (seed, split, k): training windows start at a pseudo-random offset,
// held-out windows tile the held-out stream in order (window k starts at k·(seq_len - 1): consecutive
// windows share one token, so every held-out token after the first is a target exactly once), and an
// evaluation over the first N windows is the same on every run.
#pragma once

#include <cstdint>
#include <vector>

#include "model/text/corpus.h"
#include "model/text/pretraining_data.h"

namespace smx::text {

struct LmDataOptions {
  /// Tokens per window (model input).
  int seq_len = 64;
  /// Token placed after every document (e.g. the tokenizer's [SEP]); < 0: none.
  int32_t separator = -1;
  /// Documents whose index hashes into the last `heldout_percent` form the held-out stream.
  int heldout_percent = 2;
  uint64_t seed = 0;
};

class LmData {
 public:
  /// Throws std::invalid_argument when the training stream is shorter than one window. A corpus too
  /// small for a held-out window evaluates on the training stream (as PretrainingData does).
  LmData(const TokenizedCorpus& corpus, LmDataOptions options);
  /// seq_len token ids.
  std::vector<int32_t> window(Split split, uint64_t index) const;
  /// Non-overlapping held-out windows (evaluate over at most this many).
  uint64_t num_heldout_windows() const;
  size_t num_tokens(Split split) const { return stream(split).size(); }
  const LmDataOptions& options() const { return options_; }
  const std::vector<int32_t>& stream(Split split) const { return split == Split::Train ? train_ : heldout_; }

 private:
  LmDataOptions options_;
  std::vector<int32_t> train_, heldout_;
};

}  // namespace smx::text
