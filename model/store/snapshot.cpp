// Telemetry snapshot files: a small, checked binary format so that a run can
// keep hundreds of snapshots and the studio can refuse a damaged one clearly.
//
// Layout (all integers and floats little-endian):
//   [0, 8)    magic "SMXSNAP\x1a"
//   [8, 12)   uint32 format version (kFormatVersion)
//   [12, 20)  uint64 payload size P
//   [20, 20+P) payload: the Snapshot's fields in declaration order; strings are
//             uint32 byte count + bytes, vectors uint32 element count +
//             elements; Matrix values are IEEE float16, every other real is
//             float32 (wall_seconds float64), ints are int32 (step int64).
//             Format 2 appends, per MoE layer, dropped_by_position and
//             top_tokens after the mixing layers; format 3 then, per MoE
//             layer, router_confidence (older files still load).
//   [20+P, 24+P) uint32 CRC-32 (zlib) of bytes [0, 20+P)
// This envelope (magic, version, size, checksum) is the same in every format
// version; a new format changes only the payload. So a version above ours in
// a file whose size and checksum hold is a newer file ("update"), and one in
// a file whose size or checksum fails is a damaged format field.
#include "model/store/snapshot.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <system_error>

namespace smx::telemetry {

namespace {

constexpr char kMagic[8] = {'S', 'M', 'X', 'S', 'N', 'A', 'P', '\x1a'};
constexpr uint32_t kFormatVersion = 3;
constexpr size_t kHeaderSize = 8 + 4 + 8;
constexpr size_t kTrailerSize = 4;
/// No snapshot is anywhere near this; a larger file is not one of ours.
constexpr uint64_t kMaxFileSize = uint64_t(1) << 30;

std::string describe(const std::filesystem::path& file) { return "snapshot file '" + file.string() + "'"; }

[[noreturn]] void fail(const std::filesystem::path& file, const std::string& what) {
  throw SnapshotError(describe(file) + ": " + what);
}

uint32_t checksum(const uint8_t* p, size_t n) {
  uLong crc = crc32(0L, Z_NULL, 0);
  while (n > 0) {  // zlib takes uInt lengths
    const uInt chunk = uInt(std::min<size_t>(n, std::numeric_limits<uInt>::max()));
    crc = crc32(crc, p, chunk);
    p += chunk;
    n -= chunk;
  }
  return uint32_t(crc);
}

// ---- encoding ----

class Writer {
 public:
  explicit Writer(const std::filesystem::path& file) : file_(file) {}
  void raw(const void* p, size_t n) { buf_.append(static_cast<const char*>(p), n); }
  void u32(uint32_t v) {
    const uint8_t b[4] = {uint8_t(v), uint8_t(v >> 8), uint8_t(v >> 16), uint8_t(v >> 24)};
    raw(b, 4);
  }
  void u64(uint64_t v) {
    u32(uint32_t(v));
    u32(uint32_t(v >> 32));
  }
  void i32(int32_t v) { u32(uint32_t(v)); }
  void i64(int64_t v) { u64(uint64_t(v)); }
  void f32(float v) {
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    u32(bits);
  }
  void f64(double v) {
    uint64_t bits;
    std::memcpy(&bits, &v, 8);
    u64(bits);
  }
  void u16(uint16_t v) {
    const uint8_t b[2] = {uint8_t(v), uint8_t(v >> 8)};
    raw(b, 2);
  }
  void count(size_t n, const char* what) {
    if (n > std::numeric_limits<uint32_t>::max())
      throw SnapshotError("cannot write " + describe(file_) + ": too many " + what);
    u32(uint32_t(n));
  }
  void str(const std::string& s) {
    count(s.size(), "bytes in a string");
    raw(s.data(), s.size());
  }
  void floats(const std::vector<float>& v) {
    count(v.size(), "values");
    for (float x : v) f32(x);
  }
  void bytes(const std::vector<uint8_t>& v) {
    count(v.size(), "values");
    raw(v.data(), v.size());
  }
  void halves(const std::vector<float>& v) {
    count(v.size(), "values");
    for (float x : v) u16(float_to_half(x));
  }
  std::string& buffer() { return buf_; }

 private:
  const std::filesystem::path& file_;
  std::string buf_;
};

// ---- decoding: every read checks the bytes left first ----

class Reader {
 public:
  Reader(const uint8_t* p, size_t n, const std::filesystem::path& file) : p_(p), end_(p + n), file_(file) {}

  size_t remaining() const { return size_t(end_ - p_); }
  [[noreturn]] void corrupt(const std::string& what) const { fail(file_, "corrupt payload: " + what); }

  const uint8_t* take(size_t n, const char* what) {
    if (n > remaining())
      corrupt(std::string(what) + " needs " + std::to_string(n) + " bytes, " + std::to_string(remaining()) +
              " left");
    const uint8_t* at = p_;
    p_ += n;
    return at;
  }
  uint32_t u32(const char* what) {
    const uint8_t* b = take(4, what);
    return uint32_t(b[0]) | uint32_t(b[1]) << 8 | uint32_t(b[2]) << 16 | uint32_t(b[3]) << 24;
  }
  uint64_t u64(const char* what) {
    const uint64_t lo = u32(what);
    return lo | uint64_t(u32(what)) << 32;
  }
  int32_t i32(const char* what) { return int32_t(u32(what)); }
  int64_t i64(const char* what) { return int64_t(u64(what)); }
  float f32(const char* what) {
    const uint32_t bits = u32(what);
    float v;
    std::memcpy(&v, &bits, 4);
    return v;
  }
  double f64(const char* what) {
    const uint64_t bits = u64(what);
    double v;
    std::memcpy(&v, &bits, 8);
    return v;
  }
  /// An element count, checked against the bytes left: each element takes at
  /// least `min_bytes` on disk, so nothing is allocated for data that is not there.
  uint32_t count(size_t min_bytes, const char* what) {
    const uint32_t n = u32(what);
    if (uint64_t(n) * min_bytes > remaining())
      corrupt(std::string(what) + ": count " + std::to_string(n) + " does not fit in the " +
              std::to_string(remaining()) + " bytes left");
    return n;
  }
  std::string str(const char* what) {
    const uint32_t n = count(1, what);
    const uint8_t* b = take(n, what);
    return std::string(reinterpret_cast<const char*>(b), n);
  }
  std::vector<float> floats(const char* what) {
    const uint32_t n = count(4, what);
    std::vector<float> v(n);
    for (auto& x : v) x = f32(what);
    return v;
  }
  std::vector<uint8_t> bytes(const char* what) {
    const uint32_t n = count(1, what);
    const uint8_t* b = take(n, what);
    return std::vector<uint8_t>(b, b + n);
  }
  std::vector<float> halves(const char* what) {
    const uint32_t n = count(2, what);
    const uint8_t* b = take(size_t(n) * 2, what);
    std::vector<float> v(n);
    for (uint32_t i = 0; i < n; ++i) v[i] = half_to_float(uint16_t(b[2 * i] | b[2 * i + 1] << 8));
    return v;
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
  const std::filesystem::path& file_;
};

// Smallest encodings, for the count checks: every field of the struct with
// empty strings and vectors.
constexpr size_t kMinMoeBytes = 4 + 4 + 4 * 4 + 3 * 4 + 6 * 4;
constexpr size_t kMinProbeBytes = 4 + 4 + 4 * 4;
constexpr size_t kMinMatrixBytes = 4 + 4 + 4 + 4;
constexpr size_t kMinMixingBytes = 4 + 4 + 4;

void encode(Writer& w, const Snapshot& s, const std::filesystem::path& file) {
  w.i64(s.step);
  w.f64(s.wall_seconds);
  w.count(s.moe.size(), "MoE layers");
  for (const MoeLayerStats& m : s.moe) {
    w.i32(m.layer);
    w.str(m.router);
    w.i32(m.num_experts);
    w.i32(m.capacity);
    w.i32(m.groups);
    w.i32(m.tokens_per_group);
    w.floats(m.tokens_per_expert);
    w.floats(m.fill);
    w.floats(m.experts_per_token);
    w.f32(m.dropped_fraction);
    w.f32(m.unrouted_fraction);
    w.f32(m.router_entropy);
    w.f32(m.load_balancing_loss);
    w.f32(m.z_loss);
    w.f32(m.router_logit_max);
  }
  w.count(s.probe.size(), "probe layers");
  for (const ProbeRouting& p : s.probe) {
    w.i32(p.layer);
    w.i32(p.num_experts);
    w.count(p.tokens.size(), "probe tokens");
    for (const std::string& t : p.tokens) w.str(t);
    w.floats(p.probs);
    w.bytes(p.assigned);
    w.bytes(p.wanted);
  }
  w.count(s.mixing.size(), "mixing layers");
  for (const MixingSnapshot& m : s.mixing) {
    w.i32(m.layer);
    w.str(m.kind);
    w.count(m.matrices.size(), "matrices");
    for (const Matrix& x : m.matrices) {
      if (x.rows < 0 || x.cols < 0 || int64_t(x.rows) * x.cols != int64_t(x.values.size()))
        throw SnapshotError("cannot write " + describe(file) + ": matrix '" + x.name + "' of mixing layer " +
                            std::to_string(m.layer) + " is " + std::to_string(x.rows) + " x " +
                            std::to_string(x.cols) + " but has " + std::to_string(x.values.size()) + " values");
      w.str(x.name);
      w.i32(x.rows);
      w.i32(x.cols);
      w.halves(x.values);
    }
  }
  // Format 2: routing details per MoE layer, in the order of s.moe.
  for (const MoeLayerStats& m : s.moe) {
    w.floats(m.dropped_by_position);
    w.count(m.top_tokens.size(), "top-token experts");
    for (const auto& expert : m.top_tokens) {
      w.count(expert.size(), "top tokens");
      for (const auto& tc : expert) {
        w.str(tc.token);
        w.i32(tc.count);
      }
    }
  }
  // Format 3.
  for (const MoeLayerStats& m : s.moe) w.f32(m.router_confidence);
}

Snapshot decode(Reader& r, uint32_t version) {
  Snapshot s;
  s.step = r.i64("step");
  s.wall_seconds = r.f64("wall_seconds");
  s.moe.resize(r.count(kMinMoeBytes, "MoE layers"));
  for (MoeLayerStats& m : s.moe) {
    m.layer = r.i32("MoE layer");
    m.router = r.str("router");
    m.num_experts = r.i32("num_experts");
    m.capacity = r.i32("capacity");
    m.groups = r.i32("groups");
    m.tokens_per_group = r.i32("tokens_per_group");
    m.tokens_per_expert = r.floats("tokens_per_expert");
    m.fill = r.floats("fill");
    m.experts_per_token = r.floats("experts_per_token");
    m.dropped_fraction = r.f32("dropped_fraction");
    m.unrouted_fraction = r.f32("unrouted_fraction");
    m.router_entropy = r.f32("router_entropy");
    m.load_balancing_loss = r.f32("load_balancing_loss");
    m.z_loss = r.f32("z_loss");
    m.router_logit_max = r.f32("router_logit_max");
  }
  s.probe.resize(r.count(kMinProbeBytes, "probe layers"));
  for (ProbeRouting& p : s.probe) {
    p.layer = r.i32("probe layer");
    p.num_experts = r.i32("probe num_experts");
    p.tokens.resize(r.count(4, "probe tokens"));
    for (std::string& t : p.tokens) t = r.str("probe token");
    p.probs = r.floats("probe probs");
    p.assigned = r.bytes("probe assigned");
    p.wanted = r.bytes("probe wanted");
  }
  s.mixing.resize(r.count(kMinMixingBytes, "mixing layers"));
  for (MixingSnapshot& m : s.mixing) {
    m.layer = r.i32("mixing layer");
    m.kind = r.str("mixing kind");
    m.matrices.resize(r.count(kMinMatrixBytes, "matrices"));
    for (Matrix& x : m.matrices) {
      x.name = r.str("matrix name");
      x.rows = r.i32("matrix rows");
      x.cols = r.i32("matrix cols");
      x.values = r.halves("matrix values");
      if (x.rows < 0 || x.cols < 0 || int64_t(x.rows) * x.cols != int64_t(x.values.size()))
        r.corrupt("matrix '" + x.name + "' is " + std::to_string(x.rows) + " x " + std::to_string(x.cols) +
                  " but has " + std::to_string(x.values.size()) + " values");
    }
  }
  if (version >= 2) {
    for (MoeLayerStats& m : s.moe) {
      m.dropped_by_position = r.floats("dropped_by_position");
      m.top_tokens.resize(r.count(4, "top-token experts"));
      for (auto& expert : m.top_tokens) {
        expert.resize(r.count(8, "top tokens"));
        for (auto& tc : expert) {
          tc.token = r.str("top token");
          tc.count = r.i32("top token count");
        }
      }
    }
  }
  if (version >= 3)
    for (MoeLayerStats& m : s.moe) m.router_confidence = r.f32("router_confidence");
  if (r.remaining() != 0) r.corrupt(std::to_string(r.remaining()) + " unread bytes at the end");
  return s;
}

std::string errno_text() { return std::strerror(errno); }

void write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t k = ::write(fd, p, n);
    if (k < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category());
    }
    p += k;
    n -= size_t(k);
  }
}

}  // namespace

uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint16_t sign = uint16_t((x >> 16) & 0x8000u);
  const uint32_t a = x & 0x7fffffffu;
  if (a >= 0x7f800000u) {  // inf, or NaN: keep the top payload bits, force the quiet bit
    return a == 0x7f800000u ? uint16_t(sign | 0x7c00u) : uint16_t(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
  }
  if (a >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // >= 65520 rounds past 65504
  if (a < 0x38800000u) {                                 // below 2^-14: a half subnormal or zero
    if (a <= 0x33000000u) return sign;                   // <= 2^-25 (the tie rounds to even 0)
    const uint32_t e = a >> 23;                          // 102..112
    const uint32_t m = (a & 0x7fffffu) | 0x800000u;      // with the implicit bit
    const uint32_t shift = 126 - e;                      // 14..24: value / 2^-24 = m >> shift
    uint32_t r = m >> shift;
    const uint32_t rest = m & ((1u << shift) - 1), halfway = 1u << (shift - 1);
    if (rest > halfway || (rest == halfway && (r & 1u))) ++r;  // may carry into the smallest normal: right
    return uint16_t(sign | r);
  }
  uint32_t r = (a >> 13) - ((127u - 15u) << 10);  // rebias the exponent, keep 10 mantissa bits
  const uint32_t rest = a & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (r & 1u))) ++r;  // a carry into the exponent is right too
  return uint16_t(sign | r);
}

float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t e = (h >> 10) & 0x1fu;
  uint32_t m = h & 0x3ffu;
  uint32_t x;
  if (e == 0) {
    if (m == 0) {
      x = sign;
    } else {  // subnormal: normalise
      uint32_t shift = 0;
      while (!(m & 0x400u)) {
        m <<= 1;
        ++shift;
      }
      x = sign | ((113u - shift) << 23) | ((m & 0x3ffu) << 13);
    }
  } else if (e == 31) {
    x = sign | 0x7f800000u | (m << 13);
  } else {
    x = sign | ((e + 112u) << 23) | (m << 13);
  }
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

void save_snapshot(const Snapshot& s, const std::filesystem::path& file) {
  Writer w(file);
  w.raw(kMagic, 8);
  w.u32(kFormatVersion);
  w.u64(0);  // payload size, patched below
  encode(w, s, file);
  std::string& buf = w.buffer();
  const uint64_t payload = buf.size() - kHeaderSize;
  for (int i = 0; i < 8; ++i) buf[12 + i] = char(uint8_t(payload >> (8 * i)));
  w.u32(checksum(reinterpret_cast<const uint8_t*>(buf.data()), buf.size()));

  const std::string tmp = file.string() + ".tmp-" + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(file, "cannot create temporary file '" + tmp + "': " + errno_text());
  try {
    write_all(fd, buf.data(), buf.size());
    if (::fsync(fd) != 0) throw std::system_error(errno, std::generic_category());
  } catch (const std::system_error& e) {
    ::close(fd);
    ::unlink(tmp.c_str());
    fail(file, std::string("cannot write temporary file '") + tmp + "': " + e.code().message());
  }
  if (::close(fd) != 0) {
    const std::string why = errno_text();
    ::unlink(tmp.c_str());
    fail(file, "cannot write temporary file '" + tmp + "': " + why);
  }
  if (::rename(tmp.c_str(), file.c_str()) != 0) {
    const std::string why = errno_text();
    ::unlink(tmp.c_str());
    fail(file, "cannot rename '" + tmp + "' over it: " + why);
  }
  // Make the rename itself durable; a folder that cannot be synced is not an error.
  const std::filesystem::path dir = file.has_parent_path() ? file.parent_path() : std::filesystem::path(".");
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

Snapshot load_snapshot(const std::filesystem::path& file) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) fail(file, "does not exist");
    fail(file, "cannot open: " + errno_text());
  }
  std::vector<uint8_t> data;
  {
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      fail(file, "not a regular file");
    }
    if (uint64_t(st.st_size) > kMaxFileSize) {
      ::close(fd);
      fail(file, "is " + std::to_string(st.st_size) + " bytes, too large to be a snapshot");
    }
    data.resize(size_t(st.st_size));
    size_t got = 0;
    while (got < data.size()) {
      const ssize_t k = ::read(fd, data.data() + got, data.size() - got);
      if (k < 0 && errno == EINTR) continue;
      if (k < 0) {
        const std::string why = errno_text();
        ::close(fd);
        fail(file, "cannot read: " + why);
      }
      if (k == 0) break;  // shrank while we read
      got += size_t(k);
    }
    ::close(fd);
    data.resize(got);
  }

  const size_t n = data.size();
  const size_t magic_bytes = std::min<size_t>(n, 8);
  if (magic_bytes > 0 && std::memcmp(data.data(), kMagic, magic_bytes) != 0)
    fail(file, "not a Sparse Mixer snapshot (wrong magic number)");
  if (n < kHeaderSize + kTrailerSize)
    fail(file, "truncated: " + std::to_string(n) + " bytes, shorter than the " +
                   std::to_string(kHeaderSize + kTrailerSize) + "-byte header and checksum");
  Reader header(data.data() + 8, kHeaderSize - 8, file);
  const uint32_t version = header.u32("version");
  const uint64_t payload = header.u64("payload size");
  const uint64_t expected = kHeaderSize + payload + kTrailerSize;
  // What is wrong with the envelope, if anything: judged before the version,
  // so that a damaged version field is not taken for a newer format.
  std::string envelope, envelope_clause;  // the message alone; the same as a clause after the format field's
  if (payload > kMaxFileSize || expected != n) {
    if (payload <= kMaxFileSize && n < expected) {
      envelope = "truncated: " + std::to_string(n) + " bytes, the header announces " + std::to_string(expected);
      envelope_clause = "it is truncated (" + std::to_string(n) + " bytes, the header announces " +
                        std::to_string(expected) + ")";
    } else {
      envelope = "corrupt header: it announces a " + std::to_string(payload) + "-byte payload, the file is " +
                 std::to_string(n) + " bytes";
      envelope_clause = "its header announces a " + std::to_string(payload) + "-byte payload in a file of " +
                        std::to_string(n) + " bytes";
    }
  } else {
    Reader trailer(data.data() + n - kTrailerSize, kTrailerSize, file);
    if (trailer.u32("checksum") != checksum(data.data(), n - kTrailerSize)) {
      envelope = "checksum mismatch (the file is damaged)";
      envelope_clause = "its checksum does not match";
    }
  }
  if (version == 0) fail(file, "corrupt header: format version 0" + (envelope.empty() ? "" : "; " + envelope));
  if (version > kFormatVersion) {
    if (envelope.empty())  // intact: a format this version does not know
      fail(file, "written by a newer version of Sparse Mixer Studio (format " + std::to_string(version) + " > " +
                     std::to_string(kFormatVersion) + "); update");
    fail(file, "damaged: its format field reads " + std::to_string(version) + " (this version reads formats 1 to " +
                   std::to_string(kFormatVersion) + ") and " + envelope_clause +
                   ": a damaged file, not one written by a newer version");
  }
  if (!envelope.empty()) fail(file, envelope);
  Reader body(data.data() + kHeaderSize, size_t(payload), file);
  return decode(body, version);
}

}  // namespace smx::telemetry
