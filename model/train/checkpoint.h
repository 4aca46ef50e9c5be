// Training checkpoints: model, optimizer, RNG state and where the run was,
// in one file with a magic number, a format version, the run config and a
// checksum. Written atomically (temp file, fsync, rename), so a process killed
// at any moment leaves the previous checkpoint intact and loadable.
#pragma once

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>

#include <torch/torch.h>

#include "model/config/train_config.h"

namespace smx {

class CheckpointError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The plain part of a checkpoint (stored as JSON in the header).
struct CheckpointInfo {
  std::string run_config_json;  ///< {"model": ..., "training": ...}
  int64_t step = 0;             ///< optimizer steps done
  uint64_t examples_seen = 0;   ///< data position
  int64_t run_id = 0;
  double wall_seconds = 0;      ///< training time so far
  std::string tokenizer_path;
  /// A live copy: the weights of a running run taken between two steps (its
  /// live/ folder, no optimizer state). The playground reads it; nothing
  /// resumes from it.
  bool live = false;
};

/// Saves model + optimizer (+ the CPU and, if used, CUDA generator states).
void save_checkpoint(const std::filesystem::path& file, const CheckpointInfo& info, torch::nn::Module& model,
                     torch::optim::Optimizer* optimizer);
/// Reads only the header: cheap, and validates magic, version and checksum.
CheckpointInfo read_checkpoint_info(const std::filesystem::path& file);
/// Loads into `model` (and `optimizer`, and the RNG states when restore_rng).
/// Every tensor must be in the file with the model's shape, or nothing is
/// loaded and the CheckpointError lists each misfit with both shapes. With
/// strict=false only the fine-tuning task head (classifier.*: another number
/// of classes) may be absent or of another shape; it keeps its initialisation.
/// Damaged or forged header fields are errors naming the file and the field.
CheckpointInfo load_checkpoint(const std::filesystem::path& file, torch::nn::Module& model,
                               torch::optim::Optimizer* optimizer, bool restore_rng, bool strict = true,
                               const torch::Device& device = torch::kCPU);

/// The {"model", "training"} config stored in a checkpoint's header; a damaged
/// or forged one is a CheckpointError naming the file and what is wrong.
void checkpoint_run_config(const std::filesystem::path& file, const CheckpointInfo& info, ModelConfig& model,
                           TrainConfig& training);

/// Newest checkpoint in a run folder (its checkpoints/ subfolder) that passes
/// the header and checksum checks; empty if none. Damaged ones are skipped and
/// described in `skipped`.
std::filesystem::path newest_checkpoint(const std::filesystem::path& run_dir, std::string* skipped = nullptr);

}  // namespace smx
