// BERT-style pre-training examples (after google-research/bert's
// create_pretraining_data.py, with examples drawn on demand instead of
// written out in advance).
#include "model/text/pretraining_data.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>

#include "model/core/hash.h"

namespace smx::text {

namespace {

template <typename Rng>
uint64_t uniform(Rng& rng, uint64_t n) {  // [0, n)
  return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng);
}
template <typename Rng>
double unit(Rng& rng) {
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

}  // namespace

PretrainingData::PretrainingData(const TokenizedCorpus& corpus, int vocab_size, int num_special,
                                 PretrainingOptions options, int heldout_percent)
    : corpus_(corpus), vocab_size_(vocab_size), num_special_(num_special), options_(options) {
  if (options_.seq_len < 8) throw std::invalid_argument("pre-training sequences need at least 8 tokens");
  if (options_.max_predictions < 1) throw std::invalid_argument("max_predictions must be at least 1");
  if (vocab_size_ <= num_special_) throw std::invalid_argument("the vocabulary has no ordinary tokens");
  uint64_t train_n = 0, heldout_n = 0;
  for (uint32_t d = 0; d < corpus.num_documents(); ++d) {
    const uint64_t sentences = corpus.document_starts[d + 1] - corpus.document_starts[d];
    if (sentences == 0) continue;
    // Held out by a hash of the document index, so the split does not depend on the seed.
    if (heldout_percent > 0 && splitmix64(d) % 100 < static_cast<uint64_t>(heldout_percent)) {
      heldout_docs_.push_back(d);
      heldout_cum_.push_back(heldout_n);
      heldout_n += sentences;
    } else {
      train_docs_.push_back(d);
      train_cum_.push_back(train_n);
      train_n += sentences;
    }
  }
  train_cum_.push_back(train_n);
  heldout_cum_.push_back(heldout_n);
  if (train_docs_.empty()) throw std::invalid_argument("the corpus has no documents to train on");
  if (heldout_docs_.empty()) {  // tiny corpus: evaluate on the training documents rather than on nothing
    heldout_docs_ = train_docs_;
    heldout_cum_ = train_cum_;
  }
}

size_t PretrainingData::num_tokens(Split split) const {
  const auto& docs = split == Split::Train ? train_docs_ : heldout_docs_;
  size_t n = 0;
  for (uint32_t d : docs)
    n += corpus_.sentence_starts[corpus_.document_starts[d + 1]] - corpus_.sentence_starts[corpus_.document_starts[d]];
  return n;
}

PretrainingExample PretrainingData::example(Split split, uint64_t index) const {
  const auto& docs = split == Split::Train ? train_docs_ : heldout_docs_;
  const auto& cum = split == Split::Train ? train_cum_ : heldout_cum_;
  std::mt19937_64 rng(splitmix64(options_.seed * 0x100000001B3ULL ^ splitmix64(index * 2 + (split == Split::Heldout))));

  const int max_tokens = options_.seq_len - 3;  // [CLS] A [SEP] B [SEP]
  int target = max_tokens;
  if (unit(rng) < options_.short_seq_probability) target = 2 + static_cast<int>(uniform(rng, max_tokens - 1));

  auto sentence_tokens = [&](uint64_t s, std::vector<int32_t>& out) {
    out.insert(out.end(), corpus_.tokens.begin() + corpus_.sentence_starts[s],
               corpus_.tokens.begin() + corpus_.sentence_starts[s + 1]);
  };
  // A uniformly drawn sentence of the split starts the chunk.
  const uint64_t r = uniform(rng, cum.back());
  const size_t doc_pos = std::upper_bound(cum.begin(), cum.end(), r) - cum.begin() - 1;
  const uint32_t doc = docs[doc_pos];
  const uint64_t doc_end = corpus_.document_starts[doc + 1];
  std::vector<uint64_t> chunk;
  int chunk_tokens = 0;
  for (uint64_t s = corpus_.document_starts[doc] + (r - cum[doc_pos]); s < doc_end && chunk_tokens < target; ++s) {
    chunk.push_back(s);
    chunk_tokens += static_cast<int>(corpus_.sentence_length(s));
  }
  const size_t a_end = chunk.size() >= 2 ? 1 + uniform(rng, chunk.size() - 1) : 1;
  std::vector<int32_t> a, b;
  for (size_t i = 0; i < a_end; ++i) sentence_tokens(chunk[i], a);

  PretrainingExample ex;
  const bool random_next = chunk.size() == 1 || unit(rng) < options_.random_next_probability;
  if (random_next) {
    ex.nsp_label = 1;
    uint32_t other = doc;
    size_t other_pos = doc_pos;
    for (int tries = 0; tries < 10 && other == doc && docs.size() > 1; ++tries) {
      other_pos = uniform(rng, docs.size());
      other = docs[other_pos];
    }
    const uint64_t first = corpus_.document_starts[other], end = corpus_.document_starts[other + 1];
    const int b_target = std::max(1, target - static_cast<int>(a.size()));
    for (uint64_t s = first + uniform(rng, end - first); s < end && static_cast<int>(b.size()) < b_target; ++s)
      sentence_tokens(s, b);
  } else {
    for (size_t i = a_end; i < chunk.size(); ++i) sentence_tokens(chunk[i], b);
  }
  if (a.empty()) a.push_back(1);  // an empty sentence (nothing the tokenizer kept): [UNK] holds its place
  if (b.empty()) b.push_back(1);

  // Truncate the longer side, from the front or the back at random, to fit.
  size_t a_lo = 0, a_hi = a.size(), b_lo = 0, b_hi = b.size();
  while ((a_hi - a_lo) + (b_hi - b_lo) > static_cast<size_t>(max_tokens)) {
    const bool trim_a = (a_hi - a_lo) > (b_hi - b_lo);
    size_t& lo = trim_a ? a_lo : b_lo;
    size_t& hi = trim_a ? a_hi : b_hi;
    if (unit(rng) < 0.5) ++lo; else --hi;
  }

  const int S = options_.seq_len;
  ex.ids.assign(S, 0);  // [PAD]
  ex.segments.assign(S, 0);
  int p = 0;
  ex.ids[p++] = 2;  // [CLS]
  for (size_t i = a_lo; i < a_hi; ++i) ex.ids[p++] = a[i];
  ex.ids[p++] = 3;  // [SEP]
  for (size_t i = b_lo; i < b_hi; ++i) {
    ex.segments[p] = 1;
    ex.ids[p++] = b[i];
  }
  ex.segments[p] = 1;
  ex.ids[p++] = 3;
  ex.length = p;

  // Masking: 15% of the ordinary tokens, at most max_predictions.
  std::vector<int32_t> candidates;
  for (int i = 0; i < ex.length; ++i)
    if (ex.ids[i] != 2 && ex.ids[i] != 3) candidates.push_back(i);
  std::shuffle(candidates.begin(), candidates.end(), rng);
  const int wanted = std::max(1, static_cast<int>(std::lround(ex.length * options_.mask_probability)));
  const int n = std::min({wanted, options_.max_predictions, static_cast<int>(candidates.size())});
  candidates.resize(n);
  std::sort(candidates.begin(), candidates.end());
  ex.mlm_positions.assign(options_.max_predictions, 0);
  ex.mlm_labels.assign(options_.max_predictions, -100);
  for (int i = 0; i < n; ++i) {
    const int pos = candidates[i];
    ex.mlm_positions[i] = pos;
    ex.mlm_labels[i] = ex.ids[pos];
    const double u = unit(rng);
    if (u < 0.8) ex.ids[pos] = 4;  // [MASK]
    else if (u >= 0.9) ex.ids[pos] = num_special_ + static_cast<int32_t>(uniform(rng, vocab_size_ - num_special_));
  }
  return ex;
}

}  // namespace smx::text
