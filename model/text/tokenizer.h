// The SentencePiece tokenizer: train one from a corpus or load a .model file.
// SentencePiece itself lives in a separate link namespace (see
// sentencepiece_shim.cpp for why); this class is the only door to it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace smx::text {

class TokenizerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Progress of a long operation: a stage name and a fraction in [0, 1]
/// (negative when the stage has no known length).
using ProgressFn = std::function<void(const std::string& stage, double fraction)>;

struct TokenizerTrainOptions {
  std::filesystem::path model_path;  ///< where the .model (and .vocab) are written
  int vocab_size = 8000;
  std::string model_type = "unigram";  ///< unigram | bpe | word | char
  double character_coverage = 0.9995;
  int64_t max_sentences = 1'000'000;  ///< sampled from the corpus when it has more
  int threads = 0;                    ///< 0: all hardware threads
};

class Tokenizer {
 public:
  /// Special tokens every Sparse Mixer tokenizer has, with these ids.
  static constexpr int kPad = 0, kUnk = 1, kCls = 2, kSep = 3, kMask = 4;

  /// Loads a SentencePiece model. It must contain [CLS], [SEP] and [MASK] (the
  /// ones `train` makes do); otherwise TokenizerError says what is missing.
  static Tokenizer load(const std::filesystem::path& model_file);
  /// Trains on the sentences (one per element), writes options.model_path
  /// atomically, and loads it. Reports progress through `progress`.
  static Tokenizer train(const std::vector<std::string>& sentences, const TokenizerTrainOptions& options,
                         const ProgressFn& progress = {});

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  std::vector<int32_t> encode(std::string_view text) const;
  std::string decode(const std::vector<int32_t>& ids) const;
  const std::string& piece(int32_t id) const;  ///< "▁word" style piece string
  int32_t piece_id(const std::string& piece) const;  ///< -1 if absent
  int vocab_size() const;
  /// Number of ids at the start of the vocabulary that are special (never masked-in as random tokens).
  int num_special() const { return 5; }
  const std::filesystem::path& model_file() const;
  /// FNV-1a hash of the model file's bytes: names caches of tokenized data.
  uint64_t fingerprint() const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// Empty when `tokenizer` has the `asked` number of pieces; else a warning that
/// says the corpus was too small for that vocabulary, the real size, and what to do.
/// (SentencePiece is run with hard_vocab_limit=false: a small corpus gives fewer pieces.)
std::string vocabulary_shortfall(const Tokenizer& tokenizer, int asked, const std::string& corpus);

/// Where the shim library is looked for, first found wins: $SMX_SENTENCEPIECE_SHIM,
/// next to the executable, ../lib/sparse-mixer-studio/ from it, the install
/// directory, the build directory.
std::vector<std::filesystem::path> sentencepiece_shim_candidates();

}  // namespace smx::text
