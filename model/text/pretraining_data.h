// BERT pre-training examples from a tokenized corpus: [CLS] A [SEP] B [SEP],
// next-sentence label, 15% of tokens chosen for prediction (80% [MASK], 10% a
// random token, 10% unchanged), a cap on predictions per sequence, padding.
//
// Example k is a pure function of (seed, split, k): the data position of a
// run is just the number of examples drawn, batches can be built on any
// thread in any order, and a resumed run sees exactly the same data.
#pragma once

#include <cstdint>
#include <vector>

#include "model/text/corpus.h"

namespace smx::text {

struct PretrainingOptions {
  int seq_len = 128;
  int max_predictions = 20;      ///< cap on masked positions per sequence
  double mask_probability = 0.15;
  double short_seq_probability = 0.1;  ///< as BERT: sometimes a shorter target length
  double random_next_probability = 0.5;
  uint64_t seed = 0;
};

struct PretrainingExample {
  std::vector<int32_t> ids;           ///< [seq_len], padded with [PAD]
  std::vector<int32_t> segments;      ///< [seq_len] 0 for [CLS] A [SEP], 1 for B [SEP], 0 on padding
  int length = 0;                     ///< tokens before the padding
  std::vector<int32_t> mlm_positions; ///< [max_predictions], 0 where unused
  std::vector<int32_t> mlm_labels;    ///< [max_predictions], -100 where unused
  int nsp_label = 0;                  ///< 0 = B follows A, 1 = B is random
};

enum class Split { Train, Heldout };

class PretrainingData {
 public:
  /// Documents whose index hashes into the last `heldout_percent` go to the held-out split.
  PretrainingData(const TokenizedCorpus& corpus, int vocab_size, int num_special, PretrainingOptions options,
                  int heldout_percent = 2);
  PretrainingExample example(Split split, uint64_t index) const;
  const PretrainingOptions& options() const { return options_; }
  size_t num_documents(Split split) const { return split == Split::Train ? train_docs_.size() : heldout_docs_.size(); }
  size_t num_tokens(Split split) const;

 private:
  const TokenizedCorpus& corpus_;
  int vocab_size_, num_special_;
  PretrainingOptions options_;
  std::vector<uint32_t> train_docs_, heldout_docs_;
  // Sentence i of the split starts a chunk; cumulative sentence counts for uniform sampling.
  std::vector<uint64_t> train_cum_, heldout_cum_;
};

}  // namespace smx::text
