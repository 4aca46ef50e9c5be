#include "tst_snapshot.h"

#include <QElapsedTimer>
#include <QFile>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>

#include "model/store/snapshot.h"
#include "test_files.h"

using namespace smx::telemetry;
using namespace smx_test;
namespace fs = std::filesystem;

namespace {

// CRC-32 (IEEE, as zlib), computed bit by bit: an independent reference.
uint32_t reference_crc32(const QByteArray& data) {
  uint32_t crc = 0xffffffffu;
  for (char ch : data) {
    crc ^= uint8_t(ch);
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

void put_u32(QByteArray& b, uint32_t v) {
  for (int i = 0; i < 4; ++i) b.append(char(uint8_t(v >> (8 * i))));
}
void put_u64(QByteArray& b, uint64_t v) {
  put_u32(b, uint32_t(v));
  put_u32(b, uint32_t(v >> 32));
}

/// A snapshot file built by hand: magic, version, payload size, payload, CRC.
QByteArray crafted_snapshot(uint32_t version, const QByteArray& payload) {
  QByteArray b("SMXSNAP\x1a", 8);
  put_u32(b, version);
  put_u64(b, uint64_t(payload.size()));
  b.append(payload);
  put_u32(b, reference_crc32(b));
  return b;
}

/// Independent float16 decoding for the exhaustive check.
double reference_half(uint16_t h) {
  const int e = (h >> 10) & 31, m = h & 1023;
  const double sign = (h & 0x8000) ? -1.0 : 1.0;
  if (e == 0) return sign * std::ldexp(double(m), -24);
  if (e == 31) return m ? std::numeric_limits<double>::quiet_NaN() : sign * HUGE_VAL;
  return sign * std::ldexp(1.0 + m / 1024.0, e - 15);
}

Snapshot make_snapshot(int moe_layers, int experts, int tokens, int mixing_layers, std::vector<int> sizes,
                       uint32_t seed = 1) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  Snapshot s;
  s.step = 123456789012LL;
  s.wall_seconds = 3600.125;
  for (int l = 0; l < moe_layers; ++l) {
    MoeLayerStats m;
    m.layer = 5 + l;
    m.router = l % 2 ? "tokens-choose" : "experts-choose";
    m.num_experts = experts;
    m.capacity = 32;
    m.groups = 2;
    m.tokens_per_group = 256;
    for (int e = 0; e < experts; ++e) {
      m.tokens_per_expert.push_back(float(e * 3 + l));
      m.fill.push_back(0.125f * float(e % 8));
    }
    m.experts_per_token = {0.25f, 0.5f, 0.125f, 0.125f};
    m.dropped_fraction = 0.03125f;
    m.unrouted_fraction = 0.1f;
    m.router_entropy = 1.7f;
    m.router_confidence = 0.625f;
    m.load_balancing_loss = 1.01f;
    m.z_loss = 2.5e-3f;
    m.router_logit_max = 7.25f;
    if (l % 2) m.dropped_by_position = {0.f, 0.25f, 0.5f};
    for (int e = 0; e < experts; ++e) {
      m.top_tokens.emplace_back();
      for (int k = 0; k < e % 3; ++k) m.top_tokens.back().push_back({"\xe2\x96\x81tok" + std::to_string(e * 10 + k), 9 - k});
    }
    s.moe.push_back(m);

    ProbeRouting p;
    p.layer = m.layer;
    p.num_experts = experts;
    for (int t = 0; t < tokens; ++t) {
      p.tokens.push_back(t == 0 ? "[CLS]" : "\xe2\x96\x81word" + std::to_string(t));  // "▁word7"
      for (int e = 0; e < experts; ++e) {
        p.probs.push_back(std::abs(u(rng)));
        p.assigned.push_back(uint8_t((t + e) % 3 == 0));
        if (l % 2) p.wanted.push_back(uint8_t((t * e) % 5 == 0));
      }
    }
    s.probe.push_back(p);
  }
  for (int l = 0; l < mixing_layers; ++l) {
    MixingSnapshot m;
    m.layer = l;
    m.kind = "linear";
    for (int n : sizes) {
      Matrix x;
      x.name = n == sizes.front() ? "hidden" : "sequence";
      x.rows = x.cols = n;
      for (int i = 0; i < n * n; ++i) x.values.push_back(u(rng) * (i % 7 == 0 ? 1e-3f : 1.f));
      m.matrices.push_back(x);
    }
    s.mixing.push_back(m);
  }
  return s;
}

bool close_half(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  if (std::isinf(a) || std::isinf(b)) return a == b;
  return std::abs(a - b) <= std::abs(a) * 4.9e-4f + 6e-8f;  // half: 11-bit significand, subnormal step 2^-24
}

template <class F>
QString snapshot_error_of(F&& f) {
  try {
    f();
  } catch (const SnapshotError& e) {
    return QString::fromStdString(e.what());
  }
  return QString();
}

}  // namespace

void TestSnapshot::halfConversionExhaustive() {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = half_to_float(uint16_t(h));
    const double ref = reference_half(uint16_t(h));
    if (std::isnan(ref)) {
      QVERIFY(std::isnan(f));
      const uint16_t back = float_to_half(f);
      QVERIFY((back & 0x7c00) == 0x7c00 && (back & 0x3ff) != 0);  // still NaN
      QCOMPARE(back & 0x8000, int(h & 0x8000));
      continue;
    }
    QCOMPARE(double(f), ref);
    QCOMPARE(std::signbit(f), bool(h & 0x8000));
    QCOMPARE(uint32_t(float_to_half(f)), h);
  }
}

void TestSnapshot::halfConversionRoundsToNearestEven() {
  struct Case {
    float in;
    uint16_t out;
  };
  const Case cases[] = {
      {0.0f, 0x0000},
      {-0.0f, 0x8000},
      {1.0f, 0x3c00},
      {-2.0f, 0xc000},
      {1.0f + std::ldexp(1.0f, -11), 0x3c00},      // tie between 1 and 1+2^-10: to even (1)
      {1.0f + 3 * std::ldexp(1.0f, -11), 0x3c02},  // tie: to even (1+2^-9)
      {1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20), 0x3c01},  // just past the tie: up
      {65504.0f, 0x7bff},
      {65519.0f, 0x7bff},
      {65520.0f, 0x7c00},  // tie past the largest half: infinity
      {1e9f, 0x7c00},
      {-std::numeric_limits<float>::infinity(), 0xfc00},
      {std::ldexp(1.0f, -14), 0x0400},  // smallest normal
      {std::ldexp(1.0f, -24), 0x0001},  // smallest subnormal
      {std::ldexp(1.0f, -25), 0x0000},  // tie between 0 and 2^-24: to even (0)
      {std::ldexp(1.5f, -25), 0x0001},
      {std::ldexp(3.0f, -25), 0x0002},  // 1.5 * 2^-24: tie, to even (2)
      {std::ldexp(5.0f, -25), 0x0002},  // 2.5 * 2^-24: tie, to even (2)
      {std::ldexp(1.0f, -14) - std::ldexp(1.0f, -26), 0x0400},  // rounds up into the normals
      {1e-30f, 0x0000},
      {-1e-30f, 0x8000},
      {std::numeric_limits<float>::denorm_min(), 0x0000},
  };
  for (const Case& c : cases) QCOMPARE(float_to_half(c.in), c.out);
  const uint16_t nan = float_to_half(std::numeric_limits<float>::quiet_NaN());
  QVERIFY((nan & 0x7c00) == 0x7c00 && (nan & 0x3ff) != 0);

  // Random floats over the whole half range: the result is a nearest half.
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> exponent(-26.f, 16.f);
  for (int i = 0; i < 200000; ++i) {
    const float x = std::exp2(exponent(rng)) * (rng() % 2 ? 1.f : -1.f);
    if (std::abs(x) >= 65520.f) continue;  // rounds to infinity, as checked above
    const uint16_t h = float_to_half(x);
    const double err = std::abs(double(half_to_float(h)) - x);
    for (int d : {-1, 1}) {
      const uint16_t n = uint16_t(h + d);
      if ((n & 0x7fff) > 0x7c00 || ((n ^ h) & 0x8000)) continue;  // NaN, or across zero
      QVERIFY2(err <= std::abs(double(half_to_float(n)) - x), qPrintable(QString::number(double(x), 'g', 9)));
    }
  }
}

void TestSnapshot::snapshotRoundTrip() {
  QTemporaryDir dir;
  const fs::path file = in(dir, "000100.smxsnap");
  Snapshot s = make_snapshot(2, 4, 6, 2, {3, 5});
  s.mixing[1].matrices[0].values[0] = std::numeric_limits<float>::infinity();
  s.mixing[1].matrices[0].values[1] = -std::numeric_limits<float>::infinity();
  s.mixing[1].matrices[0].values[2] = std::numeric_limits<float>::quiet_NaN();
  s.mixing[1].matrices[0].values[3] = 1e6f;  // past float16: infinity
  s.probe[0].tokens[1] = "";                 // an empty string survives too
  save_snapshot(s, file);
  QCOMPARE(std::distance(fs::directory_iterator(dir.path().toStdString()), fs::directory_iterator()),
           std::ptrdiff_t(1));  // no temporary file left behind
  const Snapshot t = load_snapshot(file);

  QCOMPARE(t.step, s.step);
  QCOMPARE(t.wall_seconds, s.wall_seconds);
  QCOMPARE(t.moe.size(), s.moe.size());
  for (size_t i = 0; i < s.moe.size(); ++i) {
    const MoeLayerStats &a = s.moe[i], &b = t.moe[i];
    QCOMPARE(b.layer, a.layer);
    QCOMPARE(b.router, a.router);
    QCOMPARE(b.num_experts, a.num_experts);
    QCOMPARE(b.capacity, a.capacity);
    QCOMPARE(b.groups, a.groups);
    QCOMPARE(b.tokens_per_group, a.tokens_per_group);
    QCOMPARE(b.tokens_per_expert, a.tokens_per_expert);
    QCOMPARE(b.fill, a.fill);
    QCOMPARE(b.experts_per_token, a.experts_per_token);
    QCOMPARE(b.dropped_fraction, a.dropped_fraction);
    QCOMPARE(b.unrouted_fraction, a.unrouted_fraction);
    QCOMPARE(b.router_entropy, a.router_entropy);
    QCOMPARE(b.router_confidence, a.router_confidence);
    QCOMPARE(b.load_balancing_loss, a.load_balancing_loss);
    QCOMPARE(b.z_loss, a.z_loss);
    QCOMPARE(b.router_logit_max, a.router_logit_max);
    QCOMPARE(b.dropped_by_position, a.dropped_by_position);
    QCOMPARE(b.top_tokens.size(), a.top_tokens.size());
    for (size_t e = 0; e < a.top_tokens.size(); ++e) {
      QCOMPARE(b.top_tokens[e].size(), a.top_tokens[e].size());
      for (size_t k = 0; k < a.top_tokens[e].size(); ++k) {
        QCOMPARE(b.top_tokens[e][k].token, a.top_tokens[e][k].token);
        QCOMPARE(b.top_tokens[e][k].count, a.top_tokens[e][k].count);
      }
    }
  }
  QCOMPARE(t.probe.size(), s.probe.size());
  for (size_t i = 0; i < s.probe.size(); ++i) {
    QCOMPARE(t.probe[i].layer, s.probe[i].layer);
    QCOMPARE(t.probe[i].num_experts, s.probe[i].num_experts);
    QCOMPARE(t.probe[i].tokens, s.probe[i].tokens);
    QCOMPARE(t.probe[i].probs, s.probe[i].probs);  // float32: exact
    QCOMPARE(t.probe[i].assigned, s.probe[i].assigned);
    QCOMPARE(t.probe[i].wanted, s.probe[i].wanted);
  }
  QVERIFY(t.probe[0].wanted.empty() && !t.probe[1].wanted.empty());
  QCOMPARE(t.mixing.size(), s.mixing.size());
  for (size_t i = 0; i < s.mixing.size(); ++i) {
    QCOMPARE(t.mixing[i].layer, s.mixing[i].layer);
    QCOMPARE(t.mixing[i].kind, s.mixing[i].kind);
    QCOMPARE(t.mixing[i].matrices.size(), s.mixing[i].matrices.size());
    for (size_t k = 0; k < s.mixing[i].matrices.size(); ++k) {
      const Matrix &a = s.mixing[i].matrices[k], &b = t.mixing[i].matrices[k];
      QCOMPARE(b.name, a.name);
      QCOMPARE(b.rows, a.rows);
      QCOMPARE(b.cols, a.cols);
      QCOMPARE(b.values.size(), a.values.size());
      for (size_t v = 0; v < a.values.size(); ++v) {
        const float want = (i == 1 && k == 0 && v == 3) ? std::numeric_limits<float>::infinity() : a.values[v];
        QVERIFY2(close_half(want, b.values[v]),
                 qPrintable(QString("%1 read back as %2").arg(double(a.values[v])).arg(double(b.values[v]))));
      }
    }
  }

  Snapshot bad = s;
  bad.mixing[0].matrices[0].rows = 4;  // 4 x 3 but 9 values
  const fs::path bad_file = in(dir, "bad.smxsnap");
  QVERIFY(snapshot_error_of([&] { save_snapshot(bad, bad_file); }).contains("has 9 values"));
  QVERIFY(!fs::exists(bad_file));
  QVERIFY(snapshot_error_of([&] { save_snapshot(s, in(dir, "no/such/folder/x.smxsnap")); })
              .contains("no/such/folder/x.smxsnap"));
}

void TestSnapshot::snapshotRefusesDamage() {
  QTemporaryDir dir;
  const fs::path good = in(dir, "good.smxsnap");
  save_snapshot(make_snapshot(1, 4, 5, 1, {4, 6}), good);
  const QByteArray bytes = file_bytes(good);
  const fs::path bad = in(dir, "damaged.smxsnap");
  const QString bad_name = QString::fromStdString(bad.string());

  QVERIFY(snapshot_error_of([&] { load_snapshot(in(dir, "missing.smxsnap")); }).contains("does not exist"));
  write_bytes(bad, QByteArray("PK\x03\x04 this is a zip file, not a snapshot"));
  QVERIFY(snapshot_error_of([&] { load_snapshot(bad); }).contains("wrong magic"));

  for (int n = 0; n < bytes.size(); ++n) {  // every truncation
    write_bytes(bad, bytes.left(n));
    const QString err = snapshot_error_of([&] { load_snapshot(bad); });
    QVERIFY2(err.contains(bad_name), qPrintable(QString("truncated to %1 bytes: '%2'").arg(n).arg(err)));
  }
  for (int i = 0; i < bytes.size(); ++i) {  // a flipped bit anywhere
    QByteArray flipped = bytes;
    flipped[i] = char(flipped[i] ^ (1 << (i % 8)));
    write_bytes(bad, flipped);
    const QString err = snapshot_error_of([&] { load_snapshot(bad); });
    QVERIFY2(err.contains(bad_name), qPrintable(QString("bit flipped in byte %1: '%2'").arg(i).arg(err)));
  }
  QByteArray payload_flip = bytes;
  payload_flip[40] = char(payload_flip[40] ^ 0x10);
  write_bytes(bad, payload_flip);
  QVERIFY(snapshot_error_of([&] { load_snapshot(bad); }).contains("checksum"));
  write_bytes(bad, bytes.left(bytes.size() - 10));
  QVERIFY(snapshot_error_of([&] { load_snapshot(bad); }).contains("truncated"));
  // Garbage in the format field (its checksum fails): damaged, not "newer".
  QByteArray garbage = bytes;
  const char noise[4] = {'\x15', '\x23', '\x3f', '\xcf'};  // 3477021461, little-endian
  garbage.replace(8, 4, QByteArray(noise, 4));
  write_bytes(bad, garbage);
  QString err = snapshot_error_of([&] { load_snapshot(bad); });
  QVERIFY2(err.contains("damaged: its format field reads 3477021461") && err.contains("and its checksum does not match") &&
               err.contains("not one written by a newer version") && !err.contains("update"),
           qPrintable(err));
  write_bytes(bad, garbage.left(garbage.size() - 1));  // and truncated as well
  err = snapshot_error_of([&] { load_snapshot(bad); });
  QVERIFY2(err.contains("format field reads 3477021461") && err.contains("and it is truncated"), qPrintable(err));
  qInfo("%s", qPrintable(err));
  QVERIFY(load_snapshot(good).step == 123456789012LL);  // the original is fine
}

void TestSnapshot::snapshotRefusesCraftedFiles() {
  QTemporaryDir dir;
  const fs::path file = in(dir, "crafted.smxsnap");
  QByteArray empty_payload;
  put_u64(empty_payload, 7);               // step
  put_u64(empty_payload, 0);               // wall_seconds (0.0)
  for (int i = 0; i < 3; ++i) put_u32(empty_payload, 0);  // no moe, probe, mixing
  write_bytes(file, crafted_snapshot(1, empty_payload));
  QCOMPARE(load_snapshot(file).step, int64_t(7));  // the independent CRC agrees with the writer's

  write_bytes(file, crafted_snapshot(4, empty_payload));
  QString err = snapshot_error_of([&] { load_snapshot(file); });
  QVERIFY2(err.contains("newer version") && err.contains("4 > 3"), qPrintable(err));

  // A format-1 file with one MoE layer (no routing details after the mixing
  // layers) still loads, with the details empty.
  QByteArray v1;
  put_u64(v1, 9);
  put_u64(v1, 0);
  put_u32(v1, 1);                                // one MoE layer:
  put_u32(v1, 3);                                //   layer
  put_u32(v1, 0);                                //   router ""
  for (int i = 0; i < 4; ++i) put_u32(v1, 0);    //   experts, capacity, groups, tokens_per_group
  for (int i = 0; i < 3; ++i) put_u32(v1, 0);    //   three empty float vectors
  for (int i = 0; i < 6; ++i) put_u32(v1, 0);    //   six float32 zeros
  put_u32(v1, 0);                                // no probe
  put_u32(v1, 0);                                // no mixing
  write_bytes(file, crafted_snapshot(1, v1));
  const Snapshot old = load_snapshot(file);
  QCOMPARE(old.moe.size(), size_t(1));
  QCOMPARE(old.moe[0].layer, 3);
  QVERIFY(old.moe[0].dropped_by_position.empty() && old.moe[0].top_tokens.empty());
  QCOMPARE(old.moe[0].router_confidence, 0.0f);  // recorded from format 3 on
  // The same payload announced as format 2 lacks the details: refused as truncated.
  write_bytes(file, crafted_snapshot(2, v1));
  err = snapshot_error_of([&] { load_snapshot(file); });
  QVERIFY2(!err.isEmpty(), "a format-2 file without its routing details loaded");
  // Format 2 with its details but without format 3's router_confidence loads, with 0.
  QByteArray v2 = v1;
  put_u32(v2, 0);  // dropped_by_position: empty
  put_u32(v2, 0);  // top_tokens: no experts
  write_bytes(file, crafted_snapshot(2, v2));
  QCOMPARE(load_snapshot(file).moe.at(0).router_confidence, 0.0f);
  // The same announced as format 3 lacks router_confidence: refused.
  write_bytes(file, crafted_snapshot(3, v2));
  err = snapshot_error_of([&] { load_snapshot(file); });
  QVERIFY2(!err.isEmpty(), "a format-3 file without router_confidence loaded");

  // A well-formed file (right checksum) announcing 4 billion MoE layers:
  // refused before anything is allocated for them.
  QByteArray absurd;
  put_u64(absurd, 7);
  put_u64(absurd, 0);
  put_u32(absurd, 0xffffffffu);
  write_bytes(file, crafted_snapshot(1, absurd));
  err = snapshot_error_of([&] { load_snapshot(file); });
  QVERIFY2(err.contains("MoE layers") && err.contains("does not fit"), qPrintable(err));

  // A matrix whose values do not number rows * cols.
  QByteArray mismatch;
  put_u64(mismatch, 7);
  put_u64(mismatch, 0);
  put_u32(mismatch, 0);
  put_u32(mismatch, 0);
  put_u32(mismatch, 1);  // one mixing layer
  put_u32(mismatch, 0);  // layer 0
  put_u32(mismatch, 0);  // kind ""
  put_u32(mismatch, 1);  // one matrix
  put_u32(mismatch, 0);  // name ""
  put_u32(mismatch, 2);  // rows
  put_u32(mismatch, 2);  // cols
  put_u32(mismatch, 1);  // but one value
  mismatch.append("\x00\x3c", 2);
  write_bytes(file, crafted_snapshot(1, mismatch));
  err = snapshot_error_of([&] { load_snapshot(file); });
  QVERIFY2(err.contains("2 x 2 but has 1 values"), qPrintable(err));

  write_bytes(file, crafted_snapshot(1, empty_payload + QByteArray(3, '\0')));
  QVERIFY(snapshot_error_of([&] { load_snapshot(file); }).contains("unread bytes"));
}

void TestSnapshot::snapshotRealisticSize() {
  QTemporaryDir dir;
  const fs::path file = in(dir, "000500.smxsnap");
  // 4 MoE layers x 8 experts, a 64-token probe through each, 3 mixing layers
  // with a 64x64 hidden and a 128x128 sequence matrix.
  const Snapshot s = make_snapshot(4, 8, 64, 3, {64, 128});
  save_snapshot(s, file);
  const auto size = fs::file_size(file);
  qInfo("realistic snapshot: %llu bytes", static_cast<unsigned long long>(size));
  QVERIFY2(size < 200 * 1024, qPrintable(QString("%1 bytes").arg(size)));
  const Snapshot t = load_snapshot(file);
  QCOMPARE(t.mixing.size(), size_t(3));
  QCOMPARE(t.mixing[2].matrices[1].values.size(), size_t(128 * 128));
  QCOMPARE(t.probe[3].tokens.size(), size_t(64));
}

QTEST_MAIN(TestSnapshot)
