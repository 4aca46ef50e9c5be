// Contiguous-stream LM windows; see lm_data.h.
#include "model/text/lm_data.h"

#include <stdexcept>
#include <string>

#include "model/core/hash.h"

namespace smx::text {

LmData::LmData(const TokenizedCorpus& corpus, LmDataOptions options) : options_(options) {
  if (options_.seq_len < 2) throw std::invalid_argument("LM windows need seq_len >= 2, got " + std::to_string(options_.seq_len));
  if (options_.heldout_percent < 0 || options_.heldout_percent > 50)
    throw std::invalid_argument("heldout_percent must be in [0, 50], got " + std::to_string(options_.heldout_percent));
  for (uint32_t d = 0; d < corpus.num_documents(); ++d) {
    const uint64_t begin = corpus.sentence_starts[corpus.document_starts[d]];
    const uint64_t end = corpus.sentence_starts[corpus.document_starts[d + 1]];
    if (begin == end) continue;
    // The same rule as PretrainingData: held out by a hash of the document index, not by the seed.
    const bool heldout =
        options_.heldout_percent > 0 && splitmix64(d) % 100 < static_cast<uint64_t>(options_.heldout_percent);
    auto& out = heldout ? heldout_ : train_;
    out.insert(out.end(), corpus.tokens.begin() + int64_t(begin), corpus.tokens.begin() + int64_t(end));
    if (options_.separator >= 0) out.push_back(options_.separator);
  }
  const size_t need = size_t(options_.seq_len);
  if (train_.size() < need)
    throw std::invalid_argument("the corpus's training stream has " + std::to_string(train_.size()) +
                                " tokens, fewer than one window of " + std::to_string(need));
  if (heldout_.size() < need) heldout_ = train_;  // tiny corpus: as PretrainingData, evaluate on training text
}

uint64_t LmData::num_heldout_windows() const {
  return (heldout_.size() - 1) / uint64_t(options_.seq_len - 1);
}

std::vector<int32_t> LmData::window(Split split, uint64_t index) const {
  const auto& s = stream(split);
  const uint64_t len = uint64_t(options_.seq_len), starts = s.size() - len + 1;
  uint64_t start;
  if (split == Split::Train)
    start = splitmix64(options_.seed * 0x100000001B3ULL ^ splitmix64(index * 2)) % starts;
  else
    start = (index % num_heldout_windows()) * uint64_t(options_.seq_len - 1);
  return std::vector<int32_t>(s.begin() + int64_t(start), s.begin() + int64_t(start + len));
}

}  // namespace smx::text
