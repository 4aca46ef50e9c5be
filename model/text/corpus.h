// Pre-training corpora: sentences grouped into documents, as BERT's data
// format (one sentence per line, documents separated by blank lines), and the
// same corpus tokenized, cached on disk in a compact binary file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/text/tokenizer.h"

namespace smx::text {

class CorpusError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Corpus {
  std::string name;                      ///< "wordnet" or the file/folder path
  std::vector<std::string> sentences;    ///< all sentences, documents one after another
  std::vector<uint32_t> document_starts; ///< index of each document's first sentence, plus a final end
  uint64_t fingerprint = 0;              ///< changes when the source files change
  std::vector<std::string> warnings;     ///< what was skipped while reading (a symbolic link loop, ...)
  size_t num_documents() const { return document_starts.empty() ? 0 : document_starts.size() - 1; }
};

/// A UTF-8 text file, or every regular file under a folder (sorted by path;
/// symbolic links to files are read, links to folders are not followed, and a
/// link that loops or dangles is skipped with a warning in Corpus::warnings).
/// Invalid UTF-8 is refused naming the file and line.
Corpus read_text_corpus(const std::filesystem::path& path);
/// The default offline corpus: WordNet's glosses and examples. A document is
/// up to 8 consecutive synsets of one lexicographer file; each synset gives
/// "lemma, lemma: definition" and its example sentences.
Corpus wordnet_corpus(const std::filesystem::path& wordnet_dir);
/// "wordnet" (the default corpus) or a path.
Corpus load_corpus(const std::string& spec);

/// A corpus as token ids (no special tokens), flat.
struct TokenizedCorpus {
  std::vector<int32_t> tokens;
  std::vector<uint64_t> sentence_starts;  ///< into tokens, plus a final end
  std::vector<uint32_t> document_starts;  ///< into sentences, plus a final end
  size_t num_sentences() const { return sentence_starts.empty() ? 0 : sentence_starts.size() - 1; }
  size_t num_documents() const { return document_starts.empty() ? 0 : document_starts.size() - 1; }
  size_t sentence_length(size_t s) const { return sentence_starts[s + 1] - sentence_starts[s]; }
};

/// Tokenizes (on all cores), or reads the cache file in cache_dir when the
/// corpus and the tokenizer are unchanged; writes the cache atomically.
/// `from_cache` (if given) tells which happened.
TokenizedCorpus tokenize_corpus(const Corpus& corpus, const Tokenizer& tokenizer,
                                const std::filesystem::path& cache_dir, const ProgressFn& progress = {},
                                bool* from_cache = nullptr);

/// Cache file I/O, exposed for tests. load returns false when the file is
/// absent, foreign, truncated, stale (another key) or corrupt.
void save_tokenized(const TokenizedCorpus& t, uint64_t key, const std::filesystem::path& file);
bool load_tokenized(const std::filesystem::path& file, uint64_t key, TokenizedCorpus& out);

}  // namespace smx::text
