// Telemetry snapshots: plain numbers the trainer captures every N steps and the
// studio's views draw. No LibTorch and no Qt here, so widgets can include it.
// On disk a snapshot is one small binary file (magic, format version, then the
// fields below; matrices in float16), so a run keeps hundreds of them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace smx::telemetry {

/// Routing statistics of one MoE layer at one step (over the step's whole batch).
struct MoeLayerStats {
  int layer = 0;              ///< block index in the encoder
  std::string router;         ///< "tokens-choose" or "experts-choose"
  int num_experts = 0, capacity = 0, groups = 0, tokens_per_group = 0;
  std::vector<float> tokens_per_expert;  ///< [E] filled slots, summed over groups
  std::vector<float> fill;               ///< [E] tokens_per_expert / (groups * capacity), 0..1
  std::vector<float> experts_per_token;  ///< tokens taken by 0, 1, 2, ... experts (last bin: that many or more)
  float dropped_fraction = 0;   ///< Tokens Choose: share of choices dropped at capacity
  float unrouted_fraction = 0;  ///< share of tokens no expert took
  float router_entropy = 0;     ///< mean over tokens, nats
  /// Mean router probability of the kept (token, expert) assignments (0 in
  /// snapshots older than format 3).
  float router_confidence = 0;
  float load_balancing_loss = 0, z_loss = 0;
  float router_logit_max = 0;   ///< largest |logit| (router stability)
  /// Tokens Choose: per position in the sequence, the share of tokens there
  /// that lost at least one choice to capacity (empty for Experts Choose).
  std::vector<float> dropped_by_position;
  /// Per expert, the token strings it took most often in the step's batch,
  /// most frequent first (at most 8 each; empty when no tokenizer was known).
  struct TokenCount {
    std::string token;
    int count = 0;
  };
  std::vector<std::vector<TokenCount>> top_tokens;
};

/// The routing of the fixed probe batch through one MoE layer.
struct ProbeRouting {
  int layer = 0;
  int num_experts = 0;
  std::vector<std::string> tokens;  ///< [T] token strings (pieces), in order
  std::vector<float> probs;         ///< [T*E] row-major router probabilities
  std::vector<uint8_t> assigned;    ///< [T*E] 1 where the expert took the token
  std::vector<uint8_t> wanted;      ///< [T*E] 1 where the token asked for the expert (Tokens Choose; empty otherwise)
};

/// A dense matrix (row-major). Stored as float16 on disk.
struct Matrix {
  std::string name;  ///< e.g. "sequence", "hidden", "attention head 0"
  int rows = 0, cols = 0;
  std::vector<float> values;  ///< [rows*cols]
};

/// The matrices of one mixing sublayer (large ones averaged down in blocks).
struct MixingSnapshot {
  int layer = 0;
  std::string kind;  ///< "attention", "linear", "fourier", ...
  std::vector<Matrix> matrices;
};

struct Snapshot {
  int64_t step = 0;
  double wall_seconds = 0;  ///< since the run started
  std::vector<MoeLayerStats> moe;
  std::vector<ProbeRouting> probe;
  std::vector<MixingSnapshot> mixing;
};

/// Thrown for a missing, truncated, corrupt or foreign snapshot file.
class SnapshotError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Writes atomically (temp file in the same folder, flush, rename).
/// Throws SnapshotError when the file cannot be written, or when a Matrix's
/// values do not number rows * cols.
void save_snapshot(const Snapshot& s, const std::filesystem::path& file);
/// Throws SnapshotError naming the file and the problem (missing, foreign,
/// newer format, truncated, bad checksum, inconsistent sizes).
Snapshot load_snapshot(const std::filesystem::path& file);

/// IEEE 754 binary16 <-> binary32, as used for Matrix values on disk.
/// float_to_half rounds to nearest, ties to even; values that round past
/// 65504 become infinity, NaN stays NaN (quiet), signs and zeros are kept.
uint16_t float_to_half(float f);
float half_to_float(uint16_t h);

}  // namespace smx::telemetry
