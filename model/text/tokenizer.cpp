// Tokenizer: loads the SentencePiece shim into its own link namespace and
// talks to it through plain C functions. See sentencepiece_shim.cpp.
#include "model/text/tokenizer.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <regex>
#include <sstream>
#include <thread>

#include "model/core/hash.h"

namespace smx::text {
namespace fs = std::filesystem;

namespace {

// The shim's C interface (see sentencepiece_shim.cpp).
struct ShimApi {
  int (*abi_version)();
  void (*redirect_log)(int);
  int (*train)(const char*, char*, size_t);
  void* (*load)(const char*, char*, size_t);
  void (*free)(void*);
  int (*piece_size)(void*);
  int (*piece_to_id)(void*, const char*);
  int (*id_to_piece)(void*, int, char*, size_t);
  long (*encode)(void*, const char*, size_t, int*, size_t);
  long (*decode)(void*, const int*, size_t, char*, size_t);
};

fs::path executable_dir() {
  std::error_code ec;
  const auto exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : exe.parent_path();
}

template <typename F>
void bind(void* lib, const char* name, F& fn, const fs::path& file) {
  fn = reinterpret_cast<F>(dlsym(lib, name));
  if (!fn) throw TokenizerError("the SentencePiece shim " + file.string() + " lacks " + name);
}

// Opened once per process: glibc allows only a handful of link namespaces.
const ShimApi& shim() {
  static std::once_flag once;
  static ShimApi api{};
  static std::string failure;
  std::call_once(once, [] {
    std::string tried;
    for (const auto& candidate : sentencepiece_shim_candidates()) {
      std::error_code ec;
      if (!fs::exists(candidate, ec)) {
        tried += "\n  " + candidate.string() + " (absent)";
        continue;
      }
      void* lib = dlmopen(LM_ID_NEWLM, candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (!lib) {
        tried += "\n  " + candidate.string() + " (" + dlerror() + ")";
        continue;
      }
      try {
        bind(lib, "smx_sp_abi_version", api.abi_version, candidate);
        if (api.abi_version() != 2) throw TokenizerError("the SentencePiece shim " + candidate.string() + " is of another version");
        bind(lib, "smx_sp_redirect_log", api.redirect_log, candidate);
        bind(lib, "smx_sp_train", api.train, candidate);
        bind(lib, "smx_sp_load", api.load, candidate);
        bind(lib, "smx_sp_free", api.free, candidate);
        bind(lib, "smx_sp_piece_size", api.piece_size, candidate);
        bind(lib, "smx_sp_piece_to_id", api.piece_to_id, candidate);
        bind(lib, "smx_sp_id_to_piece", api.id_to_piece, candidate);
        bind(lib, "smx_sp_encode", api.encode, candidate);
        bind(lib, "smx_sp_decode", api.decode, candidate);
        return;
      } catch (const TokenizerError& e) {
        failure = e.what();
        api = {};
        return;
      }
    }
    failure = "cannot load SentencePiece (libsmx_sentencepiece_shim.so); tried:" + tried +
              "\nset SMX_SENTENCEPIECE_SHIM to its path, or reinstall";
  });
  if (!api.train) throw TokenizerError(failure);
  return api;
}

uint64_t fnv1a_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  uint64_t h = kFnvBasis;
  char buf[1 << 16];
  while (in) {
    in.read(buf, sizeof buf);
    h = fnv1a(h, buf, static_cast<size_t>(in.gcount()));
  }
  return h;
}

// Reads SentencePiece's log (redirected by the shim into a pipe) on a
// thread while the trainer runs: its lines become progress, and the text is
// kept for error messages. The host's own stderr is untouched.
class LogCapture {
 public:
  LogCapture(const ShimApi& api, std::function<void(const std::string&)> on_line)
      : api_(api), on_line_(std::move(on_line)) {
    if (pipe(fds_) != 0) return;
    api_.redirect_log(fds_[1]);
    reader_ = std::thread([this] {
      std::string line;
      char buf[4096];
      ssize_t n;
      while ((n = read(fds_[0], buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; ++i) {
          if (buf[i] != '\n') {
            line += buf[i];
            continue;
          }
          log_ += line + "\n";
          on_line_(line);
          line.clear();
        }
      }
      log_ += line;
    });
  }
  ~LogCapture() { finish(); }
  const std::string& finish() {
    if (fds_[1] >= 0) {
      api_.redirect_log(-1);
      close(fds_[1]);  // the reader sees end of file
      fds_[1] = -1;
      if (reader_.joinable()) reader_.join();
      close(fds_[0]);
    }
    return log_;
  }

 private:
  const ShimApi& api_;
  std::function<void(const std::string&)> on_line_;
  int fds_[2] = {-1, -1};
  std::thread reader_;
  std::string log_;
};

}  // namespace

std::vector<fs::path> sentencepiece_shim_candidates() {
  const char* name = "libsmx_sentencepiece_shim.so";
  std::vector<fs::path> out;
  if (const char* env = std::getenv("SMX_SENTENCEPIECE_SHIM"); env && *env) out.emplace_back(env);
  if (const auto dir = executable_dir(); !dir.empty()) {
    out.push_back(dir / name);
#ifdef SMX_SHIM_INSTALL_DIR_FROM_BIN
    out.push_back(dir / SMX_SHIM_INSTALL_DIR_FROM_BIN / name);  // installed: <prefix>/bin -> <prefix>/lib/...
#endif
  }
#ifdef SMX_SHIM_BUILD_PATH
  out.emplace_back(SMX_SHIM_BUILD_PATH);
#endif
  return out;
}

struct Tokenizer::Impl {
  const ShimApi* api = nullptr;
  void* handle = nullptr;
  fs::path file;
  uint64_t fingerprint = 0;
  std::vector<std::string> pieces;
  ~Impl() {
    if (handle) api->free(handle);
  }
};

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::load(const fs::path& model_file) {
  const auto& api = shim();
  std::error_code ec;
  if (!fs::is_regular_file(model_file, ec)) throw TokenizerError("tokenizer model " + model_file.string() + " does not exist");
  auto impl = std::make_unique<Impl>();
  impl->api = &api;
  char error[1024] = {0};
  impl->handle = api.load(model_file.c_str(), error, sizeof error);
  if (!impl->handle)
    throw TokenizerError("cannot load tokenizer " + model_file.string() + ": not a SentencePiece model (" + error + ")");
  impl->file = model_file;
  impl->fingerprint = fnv1a_file(model_file);
  const int n = api.piece_size(impl->handle);
  impl->pieces.reserve(n);
  std::vector<char> buf(4096);
  for (int id = 0; id < n; ++id) {
    api.id_to_piece(impl->handle, id, buf.data(), buf.size());
    impl->pieces.emplace_back(buf.data());
  }
  const char* expected[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  for (int id = 0; id < 5; ++id) {
    if (id >= n || impl->pieces[id] != expected[id])
      throw TokenizerError("tokenizer " + model_file.string() + " lacks the special token " + expected[id] + " at id " +
                           std::to_string(id) + "; train one with `smx tokenizer train`");
  }
  return Tokenizer(std::move(impl));
}

Tokenizer Tokenizer::train(const std::vector<std::string>& sentences, const TokenizerTrainOptions& options,
                           const ProgressFn& progress) {
  const auto& api = shim();
  if (sentences.empty()) throw TokenizerError("cannot train a tokenizer on an empty corpus");
  if (options.vocab_size < 16) throw TokenizerError("vocab_size must be at least 16");
  if (options.model_path.empty()) throw TokenizerError("no path given for the tokenizer model");
  auto model_path = options.model_path;
  if (model_path.extension() == ".model") model_path.replace_extension();
  std::error_code ec;
  if (!model_path.parent_path().empty()) fs::create_directories(model_path.parent_path(), ec);

  // SentencePiece reads its input from a file: one sentence per line.
  const fs::path tmp_prefix = model_path.string() + ".tmp-" + std::to_string(getpid());
  const fs::path input = tmp_prefix.string() + ".txt";
  {
    if (progress) progress("writing sentences", 0.0);
    std::ofstream out(input, std::ios::binary);
    if (!out) throw TokenizerError("cannot write " + input.string());
    for (const auto& s : sentences) {
      if (s.empty()) continue;
      for (char c : s) out.put(c == '\n' || c == '\r' ? ' ' : c);
      out.put('\n');
    }
    if (!out) throw TokenizerError("cannot write " + input.string() + " (disk full?)");
  }

  const int threads = options.threads > 0 ? options.threads : std::max(1u, std::thread::hardware_concurrency());
  std::ostringstream args;  // one key=value per line, see the shim
  args << "input=" << input.string() << "\nmodel_prefix=" << tmp_prefix.string()
       << "\nvocab_size=" << options.vocab_size << "\nmodel_type=" << options.model_type
       << "\ncharacter_coverage=" << options.character_coverage
       << "\ninput_sentence_size=" << options.max_sentences << "\nshuffle_input_sentence=true"
       << "\nnum_threads=" << threads << "\npad_id=0\npad_piece=[PAD]\nunk_id=1\nunk_piece=[UNK]"
       << "\nbos_id=-1\neos_id=-1\nuser_defined_symbols=[CLS],[SEP],[MASK]\nhard_vocab_limit=false";

  // Progress from the trainer's log. Unigram: the seed vocabulary is pruned
  // by EM rounds towards vocab_size; progress is the log-ratio of the way done.
  double seed_size = 0;
  const double target = options.vocab_size * 1.1;
  const std::regex seeds(R"(Initialized (\d+) seed sentencepieces)");
  const std::regex em(R"(EM sub_iter=\d+ size=(\d+))");
  const std::regex bpe(R"(Added: freq=\d+ size=(\d+))");
  auto on_line = [&](const std::string& line) {
    if (!progress) return;
    std::smatch m;
    if (line.find("Loaded all") != std::string::npos) progress("reading sentences", 1.0);
    if (std::regex_search(line, m, seeds)) {
      seed_size = std::stod(m[1]);
      progress("pruning vocabulary", 0.0);
    } else if (std::regex_search(line, m, em) && seed_size > target) {
      const double size = std::stod(m[1]);
      progress("pruning vocabulary", std::clamp(std::log(seed_size / size) / std::log(seed_size / target), 0.0, 1.0));
    } else if (std::regex_search(line, m, bpe)) {
      progress("merging pieces", std::clamp(std::stod(m[1]) / options.vocab_size, 0.0, 1.0));
    } else if (line.find("Saving model") != std::string::npos) {
      progress("saving", 1.0);
    }
  };
  int rc;
  char error[4096] = {0};
  std::string log;
  {
    LogCapture capture(api, on_line);
    rc = api.train(args.str().c_str(), error, sizeof error);
    log = capture.finish();
  }
  fs::remove(input, ec);
  if (rc != 0) {
    fs::remove(tmp_prefix.string() + ".model", ec);
    fs::remove(tmp_prefix.string() + ".vocab", ec);
    // The end of SentencePiece's log usually says what went wrong.
    std::string tail;
    for (int lines = 0; !log.empty() && lines < 4; ++lines) {
      const size_t cut = log.find_last_of('\n', log.size() - 2);
      tail = log.substr(cut == std::string::npos ? 0 : cut + 1) + tail;
      log.resize(cut == std::string::npos ? 0 : cut + 1);
    }
    throw TokenizerError(std::string("SentencePiece training failed: ") + error + (tail.empty() ? "" : "\n" + tail));
  }
  // Atomic: the final names appear only once both files are complete.
  fs::rename(tmp_prefix.string() + ".vocab", model_path.string() + ".vocab");
  fs::rename(tmp_prefix.string() + ".model", model_path.string() + ".model");
  if (progress) progress("done", 1.0);
  return load(model_path.string() + ".model");
}

namespace {
// The shim's size protocol: call with a guess; when the result does not fit,
// it says how much room it needs and we call once more.
template <typename Buffer, typename Call>
Buffer fill(Buffer buffer, const Call& call, const char* what) {
  long n = call(buffer);
  if (n > static_cast<long>(buffer.size())) {
    buffer.resize(n);
    n = call(buffer);
  }
  if (n < 0) throw TokenizerError(std::string("SentencePiece could not ") + what);
  buffer.resize(n);
  return buffer;
}
}  // namespace

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  return fill(std::vector<int32_t>(text.size() + 8),
              [&](std::vector<int32_t>& ids) {
                return impl_->api->encode(impl_->handle, text.data(), text.size(), ids.data(), ids.size());
              },
              "encode the text");
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  for (int32_t id : ids)
    if (id < 0 || id >= vocab_size()) throw TokenizerError("token id " + std::to_string(id) + " is out of the vocabulary");
  return fill(std::string(ids.size() * 8 + 16, '\0'),
              [&](std::string& text) {
                return impl_->api->decode(impl_->handle, ids.data(), ids.size(), text.data(), text.size());
              },
              "decode the ids");
}

const std::string& Tokenizer::piece(int32_t id) const {
  if (id < 0 || id >= vocab_size()) throw TokenizerError("token id " + std::to_string(id) + " is out of the vocabulary");
  return impl_->pieces[id];
}

int32_t Tokenizer::piece_id(const std::string& piece) const { return impl_->api->piece_to_id(impl_->handle, piece.c_str()); }
int Tokenizer::vocab_size() const { return static_cast<int>(impl_->pieces.size()); }
const fs::path& Tokenizer::model_file() const { return impl_->file; }
uint64_t Tokenizer::fingerprint() const { return impl_->fingerprint; }

std::string vocabulary_shortfall(const Tokenizer& tokenizer, int asked, const std::string& corpus) {
  const int got = tokenizer.vocab_size();
  if (got >= asked) return {};
  return "the corpus " + corpus + " is too small for a vocabulary of " + std::to_string(asked) + ": " +
         tokenizer.model_file().string() + " has only " + std::to_string(got) + " pieces (" +
         std::to_string(100 * got / std::max(asked, 1)) + "%); a model trained with it has vocab_size " +
         std::to_string(got) + ". Use a larger corpus, or ask for " + std::to_string(got) + " or fewer";
}

}  // namespace smx::text
