// Checkpoint file: "SMXCKPT1" | u32 version | u64 n | header JSON (n bytes)
// | u64 m | LibTorch archive (m bytes) | u64 FNV-1a of everything before.
#include "model/train/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>

#include "model/core/hash.h"

namespace smx {
namespace fs = std::filesystem;

namespace {

constexpr char kMagic[8] = {'S', 'M', 'X', 'C', 'K', 'P', 'T', '1'};
constexpr uint32_t kVersion = 1;

std::string to_hex(const torch::Tensor& bytes) {
  static const char* digits = "0123456789abcdef";
  auto t = bytes.contiguous().to(torch::kCPU);
  const auto* p = t.data_ptr<uint8_t>();
  std::string s(t.numel() * 2, '0');
  for (int64_t i = 0; i < t.numel(); ++i) {
    s[2 * i] = digits[p[i] >> 4];
    s[2 * i + 1] = digits[p[i] & 15];
  }
  return s;
}

// Empty tensor when s is not an even number of lower-case hex digits.
torch::Tensor from_hex(const std::string& s) {
  if (s.size() % 2 != 0 || s.find_first_not_of("0123456789abcdef") != std::string::npos) return {};
  auto t = torch::empty({static_cast<int64_t>(s.size() / 2)}, torch::kUInt8);
  auto* p = t.data_ptr<uint8_t>();
  auto nib = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  for (size_t i = 0; i + 1 < s.size(); i += 2) p[i / 2] = static_cast<uint8_t>(nib(s[i]) << 4 | nib(s[i + 1]));
  return t;
}

std::string shape_of(const torch::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

// Parameter and buffer names contain dots, which archive keys may not.
std::string archive_key(std::string name) {
  for (auto& c : name)
    if (c == '.') c = '/';
  return name;
}

void write_all(int fd, const void* data, size_t n, const fs::path& file) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw CheckpointError("cannot write checkpoint " + file.string() + ": " + std::strerror(errno));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

struct RawCheckpoint {
  nlohmann::json header;
  std::string payload;
};

RawCheckpoint read_raw(const fs::path& file, bool with_payload) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw CheckpointError("checkpoint " + file.string() + " does not exist or cannot be read");
  std::error_code ec;
  const uint64_t size = fs::file_size(file, ec);
  auto fail = [&](const std::string& why) -> CheckpointError {
    return CheckpointError("checkpoint " + file.string() + " is unusable: " + why);
  };
  char magic[8] = {0};
  uint32_t version = 0;
  uint64_t header_len = 0, payload_len = 0;
  if (!in.read(magic, 8) || std::memcmp(magic, kMagic, 8) != 0) throw fail("not a Sparse Mixer Studio checkpoint");
  if (!in.read(reinterpret_cast<char*>(&version), 4)) throw fail("truncated");
  if (version > kVersion)
    throw fail("format version " + std::to_string(version) + " is newer than this program's (" +
               std::to_string(kVersion) + ")");
  if (version == 0) throw fail("format version 0 does not exist (corrupt file)");
  if (!in.read(reinterpret_cast<char*>(&header_len), 8) || header_len > size) throw fail("truncated or corrupt header");
  std::string header(header_len, '\0');
  if (!in.read(header.data(), static_cast<std::streamsize>(header_len))) throw fail("truncated header");
  if (!in.read(reinterpret_cast<char*>(&payload_len), 8)) throw fail("truncated");
  if (payload_len > size)  // also keeps the sum below from wrapping around
    throw fail("the payload length field says " + std::to_string(payload_len) + " bytes, more than the file's " +
               std::to_string(size) + " (corrupt file)");
  const uint64_t expected = 8 + 4 + 8 + header_len + 8 + payload_len + 8;
  if (expected != size)
    throw fail("size is " + std::to_string(size) + " bytes, expected " + std::to_string(expected) +
               " (truncated or partly written)");
  RawCheckpoint raw;
  // The checksum covers the whole file; verify it before trusting anything.
  uint64_t h = fnv1a(kFnvBasis, magic, 8);
  h = fnv1a(h, &version, 4);
  h = fnv1a(h, &header_len, 8);
  h = fnv1a(h, header.data(), header.size());
  h = fnv1a(h, &payload_len, 8);
  std::string payload(payload_len, '\0');
  if (!in.read(payload.data(), static_cast<std::streamsize>(payload_len))) throw fail("truncated payload");
  h = fnv1a(h, payload.data(), payload.size());
  uint64_t stored = 0;
  if (!in.read(reinterpret_cast<char*>(&stored), 8) || stored != h) throw fail("checksum mismatch (corrupt file)");
  try {
    raw.header = nlohmann::json::parse(header);
  } catch (const std::exception&) {
    throw fail("its header is not valid JSON");
  }
  if (!raw.header.is_object()) throw fail("its header is not a JSON object");
  if (with_payload) raw.payload = std::move(payload);
  return raw;
}

// The header's fields, each checked: a forged or damaged one is named, with
// what was expected, never the JSON library's type error.
CheckpointInfo info_from(const nlohmann::json& j, const fs::path& file) {
  enum class Kind { String, Count, Seconds };
  auto field = [&](const char* key, Kind kind) -> const nlohmann::json& {
    static const char* const want[] = {"a string", "a non-negative integer", "a non-negative number of seconds"};
    auto it = j.find(key);
    if (it == j.end())
      throw CheckpointError("checkpoint " + file.string() + " is unusable: its header lacks the field '" + key + "'");
    bool ok = false;
    switch (kind) {
      case Kind::String: ok = it->is_string(); break;
      case Kind::Count:
        ok = it->is_number_unsigned() && it->get<uint64_t>() <= uint64_t(std::numeric_limits<int64_t>::max());
        break;
      case Kind::Seconds: ok = it->is_number() && it->get<double>() >= 0; break;
    }
    if (!ok)
      throw CheckpointError("checkpoint " + file.string() + " is unusable: header field '" + key + "' = " +
                            it->dump().substr(0, 60) + ", expected " + want[static_cast<int>(kind)]);
    return *it;
  };
  CheckpointInfo info;
  info.run_config_json = field("run_config", Kind::String).get<std::string>();
  info.step = field("step", Kind::Count).get<int64_t>();
  info.examples_seen = field("examples_seen", Kind::Count).get<uint64_t>();
  info.run_id = field("run_id", Kind::Count).get<int64_t>();
  info.wall_seconds = field("wall_seconds", Kind::Seconds).get<double>();
  info.tokenizer_path = field("tokenizer_path", Kind::String).get<std::string>();
  if (auto it = j.find("live"); it != j.end()) {  // optional: absent in checkpoints proper
    if (!it->is_boolean())
      throw CheckpointError("checkpoint " + file.string() + " is unusable: header field 'live' = " +
                            it->dump().substr(0, 60) + ", expected true or false");
    info.live = it->get<bool>();
  }
  return info;
}

}  // namespace

void save_checkpoint(const fs::path& file, const CheckpointInfo& info, torch::nn::Module& model,
                     torch::optim::Optimizer* optimizer) {
  nlohmann::json header{{"run_config", info.run_config_json},   {"step", info.step},
                        {"examples_seen", info.examples_seen},   {"run_id", info.run_id},
                        {"wall_seconds", info.wall_seconds},     {"tokenizer_path", info.tokenizer_path},
                        {"libtorch", TORCH_VERSION}};
  if (info.live) header["live"] = true;
  {
    auto gen = at::detail::getDefaultCPUGenerator();  // a handle to the global generator
    std::lock_guard<std::mutex> lock(gen.mutex());
    header["rng_cpu"] = to_hex(gen.get_state());
  }
  if (torch::cuda::is_available()) {
    auto gen = at::globalContext().defaultGenerator(at::kCUDA);
    std::lock_guard<std::mutex> lock(gen.mutex());
    header["rng_cuda"] = to_hex(gen.get_state());
  }

  torch::serialize::OutputArchive archive, model_archive;
  for (const auto& p : model.named_parameters()) model_archive.write(archive_key(p.key()), p.value());
  for (const auto& b : model.named_buffers()) model_archive.write(archive_key(b.key()), b.value(), /*is_buffer=*/true);
  archive.write("model", model_archive);
  if (optimizer) {
    torch::serialize::OutputArchive optimizer_archive;
    optimizer->save(optimizer_archive);
    archive.write("optimizer", optimizer_archive);
  }
  std::ostringstream payload_stream;
  archive.save_to(payload_stream);
  const std::string payload = payload_stream.str();
  const std::string header_text = header.dump();

  std::error_code ec;
  if (!file.parent_path().empty()) fs::create_directories(file.parent_path(), ec);
  const fs::path tmp = file.string() + ".tmp-" + std::to_string(getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw CheckpointError("cannot create " + tmp.string() + ": " + std::strerror(errno));
  try {
    uint64_t h = kFnvBasis;
    auto put = [&](const void* p, size_t n) {
      write_all(fd, p, n, tmp);
      h = fnv1a(h, p, n);
    };
    const uint64_t header_len = header_text.size(), payload_len = payload.size();
    put(kMagic, 8);
    put(&kVersion, 4);
    put(&header_len, 8);
    put(header_text.data(), header_text.size());
    put(&payload_len, 8);
    put(payload.data(), payload.size());
    write_all(fd, &h, 8, tmp);
    if (::fsync(fd) != 0) throw CheckpointError("cannot flush " + tmp.string() + ": " + std::strerror(errno));
  } catch (...) {
    ::close(fd);
    fs::remove(tmp, ec);
    throw;
  }
  ::close(fd);
  fs::rename(tmp, file);  // atomic on POSIX: readers see the old file or the new one
  if (const int dir = ::open(file.parent_path().empty() ? "." : file.parent_path().c_str(), O_RDONLY | O_DIRECTORY);
      dir >= 0) {
    ::fsync(dir);  // make the rename itself durable
    ::close(dir);
  }
}

CheckpointInfo read_checkpoint_info(const fs::path& file) { return info_from(read_raw(file, false).header, file); }

CheckpointInfo load_checkpoint(const fs::path& file, torch::nn::Module& model, torch::optim::Optimizer* optimizer,
                               bool restore_rng, bool strict, const torch::Device& device) {
  auto raw = read_raw(file, true);
  const CheckpointInfo info = info_from(raw.header, file);
  if (optimizer && info.live)
    throw CheckpointError("checkpoint " + file.string() + " is a live copy of a running run's weights (no optimizer "
                          "state): it cannot resume training; resume from the run's checkpoints/ instead");
  // The RNG states are checked before anything is loaded: a damaged one must not leave a half-loaded model.
  torch::Tensor rng_cpu, rng_cuda;
  if (restore_rng) {
    auto state = [&](const char* key) -> torch::Tensor {
      if (!raw.header.contains(key)) return {};
      const auto& v = raw.header[key];
      torch::Tensor t = v.is_string() ? from_hex(v.get<std::string>()) : torch::Tensor();
      if (!t.defined())
        throw CheckpointError("checkpoint " + file.string() + " is unusable: header field '" + key +
                              "' is not a generator state (expected a string of hex digits)");
      return t;
    };
    rng_cpu = state("rng_cpu");
    rng_cuda = state("rng_cuda");
    const int64_t cpu_state_size = at::detail::getDefaultCPUGenerator().get_state().numel();
    if (rng_cpu.defined() && rng_cpu.numel() != cpu_state_size)
      throw CheckpointError("checkpoint " + file.string() + " is unusable: header field 'rng_cpu' holds " +
                            std::to_string(rng_cpu.numel()) + " bytes, not a generator state of this LibTorch (" +
                            std::to_string(cpu_state_size) + " bytes)");
  }
  torch::serialize::InputArchive archive, model_archive;
  try {
    archive.load_from(raw.payload.data(), raw.payload.size(), device);
  } catch (const c10::Error&) {
    throw CheckpointError("checkpoint " + file.string() + " is unusable: its tensor archive cannot be read");
  }
  if (!archive.try_read("model", model_archive))
    throw CheckpointError("checkpoint " + file.string() + " holds no model");
  torch::NoGradGuard no_grad;
  // Every tensor is checked before any is copied, so a refused load leaves the model as it was
  // and the message lists all that does not fit. Non-strict: only the fine-tuning task head
  // (classifier.*, another number of classes) may be absent or of another shape.
  std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;  // (target, value)
  std::string misfits;
  int n_misfits = 0;
  auto check = [&](const std::string& name, const torch::Tensor& target, bool is_buffer) {
    torch::Tensor value;
    const bool found = model_archive.try_read(archive_key(name), value, is_buffer);
    if (found && value.sizes() == target.sizes()) {
      copies.emplace_back(target, value);
      return;
    }
    if (!strict && name.rfind("classifier.", 0) == 0) return;  // the new task head keeps its initialisation
    if (++n_misfits <= 12)
      misfits += "\n  " + name + ": " + (found ? shape_of(value) : "absent") + " in the file, " + shape_of(target) +
                 " in the model";
  };
  for (auto& p : model.named_parameters()) check(p.key(), p.value(), false);
  for (auto& b : model.named_buffers()) check(b.key(), b.value(), true);
  if (n_misfits > 0)
    throw CheckpointError("checkpoint " + file.string() + " does not fit this model (" + std::to_string(n_misfits) +
                          " tensor" + (n_misfits > 1 ? "s" : "") + " of another shape or absent" +
                          (n_misfits > 12 ? ", the first 12 listed" : "") + "):" + misfits +
                          "\n(a tokenizer of another vocabulary size, or a config that does not match the weights)");
  for (auto& [target, value] : copies) target.copy_(value);
  if (optimizer) {
    torch::serialize::InputArchive optimizer_archive;
    if (!archive.try_read("optimizer", optimizer_archive))
      throw CheckpointError("checkpoint " + file.string() + " holds no optimizer state (it cannot resume training)");
    try {
      optimizer->load(optimizer_archive);
    } catch (const c10::Error&) {
      throw CheckpointError("checkpoint " + file.string() + " is unusable: its optimizer state does not fit this model");
    }
  }
  if (restore_rng) {
    auto restore = [&](at::Generator gen, const torch::Tensor& state, const char* key) {
      std::lock_guard<std::mutex> lock(gen.mutex());
      try {
        gen.set_state(state);
      } catch (const c10::Error&) {
        throw CheckpointError("checkpoint " + file.string() + " is unusable: header field '" + key + "' holds " +
                              std::to_string(state.numel()) + " bytes, not a generator state of this LibTorch");
      }
    };
    if (rng_cpu.defined()) restore(at::detail::getDefaultCPUGenerator(), rng_cpu, "rng_cpu");
    if (rng_cuda.defined() && torch::cuda::is_available())
      restore(at::globalContext().defaultGenerator(at::kCUDA), rng_cuda, "rng_cuda");
  }
  return info;
}

void checkpoint_run_config(const fs::path& file, const CheckpointInfo& info, ModelConfig& model, TrainConfig& training) {
  try {
    run_config_from_json_text(info.run_config_json, model, training);
  } catch (const ConfigError& e) {
    throw CheckpointError("checkpoint " + file.string() + " is unusable: header field 'run_config': " + e.what());
  }
}

fs::path newest_checkpoint(const fs::path& run_dir, std::string* skipped) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(run_dir / "checkpoints", ec))
    if (e.path().extension() == ".ckpt") files.push_back(e.path());
  std::sort(files.rbegin(), files.rend());  // zero-padded step numbers: newest first
  for (const auto& f : files) {
    try {
      if (read_checkpoint_info(f).live) continue;  // a live copy put here by hand: never resumed from
      return f;
    } catch (const CheckpointError& e) {
      if (skipped) *skipped += std::string(e.what()) + "\n";
    }
  }
  return {};
}

}  // namespace smx
