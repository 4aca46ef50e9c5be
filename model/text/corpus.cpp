// Corpora and their tokenized, cached form.
#include "model/text/corpus.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <cstring>
#include <fstream>
#include <thread>

#include "model/core/hash.h"
#include "model/data/wordnet.h"

namespace smx::text {
namespace fs = std::filesystem;

namespace {

// Path, size and modification time: a change to any source file shows.
uint64_t file_stamp(uint64_t h, const fs::path& f) {
  std::error_code ec;
  const auto size = fs::file_size(f, ec);
  const auto mtime = fs::last_write_time(f, ec).time_since_epoch().count();
  h = fnv1a(h, f.string());
  h = fnv1a(h, &size, sizeof size);
  return fnv1a(h, &mtime, sizeof mtime);
}

// Length of the valid UTF-8 prefix of s (s.size() when all of it is valid).
size_t valid_utf8_prefix(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = p[i];
    const int continuation = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xE ? 2 : (c >> 3) == 0x1E ? 3 : -1;
    if (continuation < 0 || i + continuation >= s.size() + (continuation == 0)) return i;  // bad lead byte or cut short
    for (int k = 1; k <= continuation; ++k)
      if ((p[i + k] >> 6) != 0x2) return i;
    i += continuation + 1;
  }
  return i;
}

void append_text_file(const fs::path& file, Corpus& c) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw CorpusError("cannot read " + file.string());
  std::string line;
  size_t line_no = 0;
  bool open_document = false;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (const size_t ok = valid_utf8_prefix(line); ok != line.size())
      throw CorpusError(file.string() + ":" + std::to_string(line_no) + ": not UTF-8 text (byte " +
                        std::to_string(ok + 1) + " of the line)");
    const bool blank = line.find_first_not_of(" \t") == std::string::npos;
    if (blank) {
      open_document = false;
      continue;
    }
    if (!open_document) {
      c.document_starts.push_back(static_cast<uint32_t>(c.sentences.size()));
      open_document = true;
    }
    c.sentences.push_back(std::move(line));
  }
}

}  // namespace

Corpus read_text_corpus(const fs::path& path) {
  std::error_code ec;
  std::vector<fs::path> files;
  std::vector<std::string> warnings;
  if (fs::is_directory(path, ec)) {
    // Links to folders are not followed (so no folder loop can be walked); a link
    // whose target cannot be resolved (a loop: a -> b -> a, or dangling) is skipped
    // with a warning rather than ending the walk with the library's error.
    fs::recursive_directory_iterator it(path, fs::directory_options::skip_permission_denied, ec), end;
    if (ec) throw CorpusError("cannot read the corpus folder " + path.string() + ": " + ec.message());
    for (; it != end; it.increment(ec)) {
      if (ec) {
        warnings.push_back("skipped part of " + path.string() + ": " + ec.message());
        break;
      }
      std::error_code status_ec;
      const bool regular = it->is_regular_file(status_ec);
      if (status_ec) {
        warnings.push_back("skipped " + it->path().string() + ": " +
                           (status_ec == std::errc::too_many_symbolic_link_levels
                                ? std::string("a symbolic link loop")
                                : status_ec == std::errc::no_such_file_or_directory ? std::string("a dangling symbolic link")
                                                                                     : status_ec.message()));
        continue;
      }
      if (regular) files.push_back(it->path());
    }
    std::sort(files.begin(), files.end());
    if (files.empty())
      throw CorpusError("the corpus folder " + path.string() + " has no files" +
                        (warnings.empty() ? "" : " (" + warnings.front() + ")"));
  } else if (fs::is_regular_file(path, ec)) {
    files.push_back(path);
  } else {
    throw CorpusError("corpus " + path.string() + " does not exist (give a text file, a folder, or \"wordnet\")");
  }
  Corpus c;
  c.name = path.string();
  c.fingerprint = fnv1a(kFnvBasis, std::string("text-v1"));
  for (const auto& f : files) {
    append_text_file(f, c);
    c.fingerprint = file_stamp(c.fingerprint, f);
  }
  if (c.sentences.empty()) throw CorpusError("corpus " + path.string() + " has no text");
  c.document_starts.push_back(static_cast<uint32_t>(c.sentences.size()));
  c.warnings = std::move(warnings);
  return c;
}

Corpus wordnet_corpus(const fs::path& dir) {
  std::vector<data::Synset> synsets = data::read_wordnet(dir);
  Corpus c;
  c.name = "wordnet";
  c.fingerprint = fnv1a(kFnvBasis, std::string("wordnet-v1"));
  for (const char* f : {"data.noun", "data.verb", "data.adj", "data.adv"}) c.fingerprint = file_stamp(c.fingerprint, dir / f);
  constexpr int kSynsetsPerDocument = 8;
  int in_document = 0, last_lexfile = -1;
  for (const auto& s : synsets) {
    if (s.definition.empty()) continue;
    if (in_document == kSynsetsPerDocument || s.lex_filenum != last_lexfile) {
      c.document_starts.push_back(static_cast<uint32_t>(c.sentences.size()));
      in_document = 0;
      last_lexfile = s.lex_filenum;
    }
    std::string head;
    for (size_t i = 0; i < s.words.size(); ++i) head += (i ? ", " : "") + s.words[i];
    c.sentences.push_back(head + ": " + s.definition);
    for (const auto& e : s.examples) c.sentences.push_back(e);
    ++in_document;
  }
  if (c.sentences.empty()) throw CorpusError("WordNet in " + dir.string() + " has no glosses");
  c.document_starts.push_back(static_cast<uint32_t>(c.sentences.size()));
  return c;
}

Corpus load_corpus(const std::string& spec) {
  if (spec.empty() || spec == "wordnet") return wordnet_corpus(data::default_wordnet_dir());
  return read_text_corpus(spec);
}

// --- tokenized cache -------------------------------------------------------
// File: "SMXTOK01", u32 version, u64 key, u64 counts x3, the three arrays,
// u64 FNV-1a of everything before it.

namespace {
constexpr char kMagic[8] = {'S', 'M', 'X', 'T', 'O', 'K', '0', '1'};
constexpr uint32_t kVersion = 1;
}  // namespace

void save_tokenized(const TokenizedCorpus& t, uint64_t key, const fs::path& file) {
  std::error_code ec;
  fs::create_directories(file.parent_path(), ec);
  const fs::path tmp = file.string() + ".tmp-" + std::to_string(getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw CorpusError("cannot write the token cache " + tmp.string());
    uint64_t h = kFnvBasis;
    auto put = [&](const void* p, size_t n) {
      out.write(static_cast<const char*>(p), static_cast<std::streamsize>(n));
      h = fnv1a(h, p, n);
    };
    const uint64_t counts[3] = {t.tokens.size(), t.sentence_starts.size(), t.document_starts.size()};
    put(kMagic, sizeof kMagic);
    put(&kVersion, sizeof kVersion);
    put(&key, sizeof key);
    put(counts, sizeof counts);
    put(t.tokens.data(), t.tokens.size() * sizeof(int32_t));
    put(t.sentence_starts.data(), t.sentence_starts.size() * sizeof(uint64_t));
    put(t.document_starts.data(), t.document_starts.size() * sizeof(uint32_t));
    out.write(reinterpret_cast<const char*>(&h), sizeof h);
    out.flush();
    if (!out) {
      fs::remove(tmp, ec);
      throw CorpusError("cannot write the token cache " + tmp.string() + " (disk full?)");
    }
  }
  fs::rename(tmp, file);
}

bool load_tokenized(const fs::path& file, uint64_t key, TokenizedCorpus& t) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return false;
  std::error_code ec;
  const uint64_t file_size = fs::file_size(file, ec);
  uint64_t h = kFnvBasis;
  auto get = [&](void* p, size_t n) {
    if (!in.read(static_cast<char*>(p), static_cast<std::streamsize>(n))) return false;
    h = fnv1a(h, p, n);
    return true;
  };
  char magic[8];
  uint32_t version = 0;
  uint64_t stored_key = 0, counts[3];
  if (!get(magic, 8) || std::memcmp(magic, kMagic, 8) != 0 || !get(&version, 4) || version != kVersion ||
      !get(&stored_key, 8) || stored_key != key || !get(counts, sizeof counts))
    return false;
  const uint64_t header = 8 + 4 + 8 + sizeof counts;
  if (header + counts[0] * 4 + counts[1] * 8 + counts[2] * 4 + 8 != file_size) return false;  // truncated or padded
  t.tokens.resize(counts[0]);
  t.sentence_starts.resize(counts[1]);
  t.document_starts.resize(counts[2]);
  uint64_t stored_hash = 0;
  if (!get(t.tokens.data(), counts[0] * 4) || !get(t.sentence_starts.data(), counts[1] * 8) ||
      !get(t.document_starts.data(), counts[2] * 4))
    return false;
  const uint64_t computed = h;
  if (!in.read(reinterpret_cast<char*>(&stored_hash), 8) || stored_hash != computed) return false;
  return true;
}

TokenizedCorpus tokenize_corpus(const Corpus& corpus, const Tokenizer& tokenizer, const fs::path& cache_dir,
                                const ProgressFn& progress, bool* from_cache) {
  uint64_t key = fnv1a(kFnvBasis, &corpus.fingerprint, sizeof corpus.fingerprint);
  const uint64_t tok = tokenizer.fingerprint();
  key = fnv1a(key, &tok, sizeof tok);
  char name[32];
  std::snprintf(name, sizeof name, "%016llx.tok", static_cast<unsigned long long>(key));
  const fs::path file = cache_dir / name;
  TokenizedCorpus t;
  if (!cache_dir.empty() && load_tokenized(file, key, t)) {
    if (from_cache) *from_cache = true;
    return t;
  }
  if (from_cache) *from_cache = false;

  // Tokenize in parallel chunks; SentencePiece's Encode is thread-safe.
  const size_t n = corpus.sentences.size();
  std::vector<std::vector<int32_t>> ids(n);
  const unsigned workers = std::max(1u, std::thread::hardware_concurrency());
  std::atomic<size_t> next{0}, done{0};
  std::atomic<bool> failed{false};
  std::string failure;
  std::mutex failure_mutex;
  std::vector<std::thread> pool;
  for (unsigned w = 0; w < workers; ++w)
    pool.emplace_back([&] {
      constexpr size_t kChunk = 2048;
      for (size_t begin; (begin = next.fetch_add(kChunk)) < n && !failed;) {
        try {
          for (size_t i = begin; i < std::min(n, begin + kChunk); ++i) ids[i] = tokenizer.encode(corpus.sentences[i]);
        } catch (const std::exception& e) {
          std::lock_guard lock(failure_mutex);
          failure = e.what();
          failed = true;
        }
        done += kChunk;
      }
    });
  while (done.load() < n && !failed) {
    if (progress) progress("tokenizing", double(done.load()) / double(n));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (auto& th : pool) th.join();
  if (failed) throw CorpusError("tokenizing " + corpus.name + " failed: " + failure);
  if (progress) progress("tokenizing", 1.0);

  size_t total = 0;
  for (const auto& v : ids) total += v.size();
  t.tokens.reserve(total);
  t.sentence_starts.reserve(n + 1);
  for (auto& v : ids) {
    t.sentence_starts.push_back(t.tokens.size());
    t.tokens.insert(t.tokens.end(), v.begin(), v.end());
    std::vector<int32_t>().swap(v);
  }
  t.sentence_starts.push_back(t.tokens.size());
  t.document_starts = corpus.document_starts;
  if (!cache_dir.empty()) save_tokenized(t, key, file);
  return t;
}

}  // namespace smx::text
