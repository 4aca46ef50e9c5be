// The tiny model and training setup shared by the trainer tests: small
// enough that a run takes seconds on the fixture corpus.
#pragma once

#include <cstdint>
#include <filesystem>

#include "model/config/model_config.h"
#include "model/config/train_config.h"

namespace smx::test {

inline ModelConfig tiny_model() {
  return config_from_json_text(R"({"preset": "demo", "name": "tiny", "d_model": 32, "d_ff": 64, "num_layers": 2,
    "attention_layers": 1, "moe_layers": 1, "num_experts": 4, "num_heads": 2, "max_seq_len": 32, "vocab_size": 100})");
}

/// `steps` steps of batch 4 on the fixture corpus, on one CPU thread; no
/// evaluation, checkpoints or snapshots unless a test asks for them.
inline TrainConfig tiny_training(const std::filesystem::path& fixtures, int64_t steps, int64_t warmup_steps,
                                 int64_t eval_batches) {
  TrainConfig t;
  t.corpus = (fixtures / "corpus" / "tiny.txt").string();
  t.steps = steps;
  t.batch_size = 4;
  t.learning_rate = 1e-3;
  t.warmup_steps = warmup_steps;
  t.eval_every = 0;
  t.eval_batches = eval_batches;
  t.checkpoint_every = 0;
  t.snapshot_every = 0;
  t.threads = 1;
  t.device = "cpu";
  return t;
}

}  // namespace smx::test
