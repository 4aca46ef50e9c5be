// A tiny C interface over SentencePiece, built as its own shared library and
// opened with dlmopen(LM_ID_NEWLM) by tokenizer.cpp.
//
// Why: Debian's libsentencepiece.so.0 carries and exports its own protobuf
// 3.14, while LibTorch links the system protobuf 3.21; linked into one process
// they crash at start-up. In a separate link namespace this library gets its
// own protobuf, libstdc++ and libc, so the two never meet. The price: nothing
// allocated here may be freed by the caller (and vice versa), and no C++ type
// crosses the boundary. Every function copies into caller-owned buffers and
// reports errors as text.
#include <unistd.h>

#include <cstring>
#include <iostream>
#include <streambuf>
#include <string>
#include <unordered_map>
#include <vector>

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

namespace {

void put_error(const std::string& message, char* error, size_t error_size) {
  if (!error || error_size == 0) return;
  const size_t n = std::min(message.size(), error_size - 1);
  std::memcpy(error, message.data(), n);
  error[n] = '\0';
}

// SentencePiece logs to std::cerr: this namespace's own copy of it, so
// redirecting it here leaves the host process's stderr alone.
class FdStreamBuf : public std::streambuf {
 public:
  int fd = -1;

 protected:
  int overflow(int c) override {
    if (c == EOF) return 0;
    const char ch = static_cast<char>(c);
    return ::write(fd, &ch, 1) == 1 ? c : EOF;
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    std::streamsize done = 0;
    while (done < n) {
      const ssize_t w = ::write(fd, s + done, static_cast<size_t>(n - done));
      if (w <= 0) break;
      done += w;
    }
    return done;
  }
};

}  // namespace

extern "C" {

// ABI version of this interface; the loader refuses a shim that differs.
__attribute__((visibility("default"))) int smx_sp_abi_version() { return 2; }

/// Sends SentencePiece's log to `fd` (the host reads progress from it), or
/// back to stderr when fd < 0.
__attribute__((visibility("default"))) void smx_sp_redirect_log(int fd) {
  static FdStreamBuf buffer;
  static std::streambuf* original = std::cerr.rdbuf();
  std::cerr.flush();
  buffer.fd = fd;
  std::cerr.rdbuf(fd >= 0 ? &buffer : original);
}

/// Trains a model; `args` holds one `key=value` trainer option per line (so
/// that paths may contain spaces). 0 on success.
__attribute__((visibility("default"))) int smx_sp_train(const char* args, char* error, size_t error_size) {
  std::unordered_map<std::string, std::string> options;
  std::string text(args);
  for (size_t begin = 0; begin < text.size();) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(begin, end - begin);
    if (const size_t eq = line.find('='); eq != std::string::npos) options[line.substr(0, eq)] = line.substr(eq + 1);
    begin = end + 1;
  }
  const auto status = sentencepiece::SentencePieceTrainer::Train(options);
  if (!status.ok()) {
    put_error(status.ToString(), error, error_size);
    return 1;
  }
  return 0;
}

/// Loads a .model file; returns an opaque handle or null (with the error).
__attribute__((visibility("default"))) void* smx_sp_load(const char* path, char* error, size_t error_size) {
  auto* processor = new sentencepiece::SentencePieceProcessor();
  const auto status = processor->Load(path);
  if (!status.ok()) {
    put_error(status.ToString(), error, error_size);
    delete processor;
    return nullptr;
  }
  return processor;
}

__attribute__((visibility("default"))) void smx_sp_free(void* handle) {
  delete static_cast<sentencepiece::SentencePieceProcessor*>(handle);
}

__attribute__((visibility("default"))) int smx_sp_piece_size(void* handle) {
  return static_cast<sentencepiece::SentencePieceProcessor*>(handle)->GetPieceSize();
}

/// Id of a piece, or -1 when the vocabulary lacks it (SentencePiece would say unk).
__attribute__((visibility("default"))) int smx_sp_piece_to_id(void* handle, const char* piece) {
  auto* p = static_cast<sentencepiece::SentencePieceProcessor*>(handle);
  const int id = p->PieceToId(piece);
  return p->IdToPiece(id) == piece ? id : -1;
}

/// Copies piece `id` (NUL-terminated) into out; returns its length, or -1 for a bad id.
__attribute__((visibility("default"))) int smx_sp_id_to_piece(void* handle, int id, char* out, size_t out_size) {
  auto* p = static_cast<sentencepiece::SentencePieceProcessor*>(handle);
  if (id < 0 || id >= p->GetPieceSize()) return -1;
  const std::string& piece = p->IdToPiece(id);
  put_error(piece, out, out_size);
  return static_cast<int>(piece.size());
}

/// Encodes text into ids. Returns the number of ids; when it exceeds
/// `capacity` nothing useful was written and the caller retries with more room.
/// Returns -1 on error.
__attribute__((visibility("default"))) long smx_sp_encode(void* handle, const char* text, size_t length, int* ids,
                                                          size_t capacity) {
  auto* p = static_cast<sentencepiece::SentencePieceProcessor*>(handle);
  std::vector<int> out;
  if (!p->Encode(std::string_view(text, length), &out).ok()) return -1;
  if (out.size() <= capacity) std::memcpy(ids, out.data(), out.size() * sizeof(int));
  return static_cast<long>(out.size());
}

/// Decodes ids into text; same size protocol as smx_sp_encode (bytes, no NUL).
__attribute__((visibility("default"))) long smx_sp_decode(void* handle, const int* ids, size_t count, char* out,
                                                          size_t capacity) {
  auto* p = static_cast<sentencepiece::SentencePieceProcessor*>(handle);
  std::string text;
  if (!p->Decode(std::vector<int>(ids, ids + count), &text).ok()) return -1;
  if (text.size() <= capacity) std::memcpy(out, text.data(), text.size());
  return static_cast<long>(text.size());
}

}  // extern "C"
