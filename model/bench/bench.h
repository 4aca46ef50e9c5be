// Speed benchmark of a training step (forward, backward, AdamW) and of an
// inference forward, on synthetic pre-training batches. What `smx bench`
// prints and the studio's Speed view shows.
#pragma once

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "model/config/model_config.h"
#include "model/nn/encoder.h"
#include "model/optim/adamw.h"

namespace smx {

struct BenchOptions {
  /// "cpu" or "cuda" (or "cuda:N").
  std::string device = "cpu";
  /// Examples per step (0 = 2 on CPU, 32 on CUDA).
  int64_t batch_size = 0;
  /// Tokens per example (0 = the config's max_seq_len).
  int64_t seq_len = 0;
  /// Untimed steps first (allocator, kernels, caches).
  int warmup = 1;
  /// Timed steps; the median is reported.
  int repeats = 3;
  /// bf16 autocast with float32 routers and losses (CUDA only).
  bool bf16 = true;
  bool train = true, inference = true;
  /// Also time forward, backward and optimizer separately. This synchronises the
  /// device between them, so it is off by default: on CUDA it would put host
  /// syncs inside the step being measured.
  bool phases = false;
  /// AdamW implementation of the training step (Auto: fused where it takes the parameters, else multi-tensor).
  AdamWKind optimizer = AdamWKind::Auto;
  /// Pass an attention mask although no example is padded. Off by default: a
  /// batch without padding needs none, and without one CUDA can use the flash
  /// attention kernel (a mask restricts it to the memory-efficient one).
  bool attention_mask = false;
  /// Where to write a Chrome trace of `profile_steps` extra training steps
  /// after the timed ones, and of as many inference steps (the same name with
  /// "-inference" before ".json"); empty for none. On CUDA LibTorch's Kineto
  /// profiler (operators and kernels); on the CPU its per-operator profiler,
  /// which every build has, and BenchResult gets each operator's time.
  /// Profiling slows the steps, so they are not timed.
  std::string profile_path;
  int profile_steps = 3;
  uint64_t seed = 0;
};

/// One operator's time in profiled steps, per step. Backward nodes
/// ("MmBackward0") count as operators: their self time is autograd's own.
struct OperatorTime {
  std::string name;
  double self_ms = 0;   ///< in the operator, not in the operators it called
  double total_ms = 0;  ///< with them
  double calls = 0;
};

/// The trace path of the inference steps for a training trace's path (see BenchOptions::profile_path).
std::string inference_trace_path(const std::string& train_trace_path);

struct BenchResult {
  std::string name, device;
  int64_t batch_size = 0, seq_len = 0, mlm_predictions = 0;
  int64_t params = 0;
  double forward_flops_per_example = 0, train_flops_per_example = 0;
  /// Median milliseconds per step, and the per-step samples.
  double train_ms = 0, infer_ms = 0;
  std::vector<double> train_samples_ms, infer_samples_ms;
  /// Median milliseconds of each phase of a training step (with BenchOptions::phases; else 0).
  double train_forward_ms = 0, train_backward_ms = 0, train_optimizer_ms = 0;
  double train_ms_per_example() const { return train_ms / double(batch_size); }
  double infer_ms_per_example() const { return infer_ms / double(batch_size); }
  double train_tokens_per_s() const { return train_ms > 0 ? 1e3 * double(batch_size * seq_len) / train_ms : 0; }
  double infer_tokens_per_s() const { return infer_ms > 0 ? 1e3 * double(batch_size * seq_len) / infer_ms : 0; }
  double train_gflops() const { return train_ms > 0 ? train_flops_per_example * double(batch_size) / train_ms / 1e6 : 0; }
  double infer_gflops() const { return infer_ms > 0 ? forward_flops_per_example * double(batch_size) / infer_ms / 1e6 : 0; }
  /// Peak memory in bytes: on CUDA the most the caching allocator held for
  /// tensors during the training steps; on CPU the process's peak resident
  /// set; -1 when unknown.
  int64_t peak_memory_bytes = -1;
  /// CUDA: the same during inference (-1 elsewhere).
  int64_t infer_peak_memory_bytes = -1;
  /// The AdamW implementation the training step used ("fused", "foreach", "reference").
  std::string optimizer;
  /// With a profile on the CPU: milliseconds per profiled step, and the
  /// operators by self time, most first.
  double train_profiled_ms = 0, infer_profiled_ms = 0;
  std::vector<OperatorTime> train_operators, infer_operators;
};

/// Where an MoE layer's time goes: forward + backward of one layer of the
/// model's shape, in milliseconds (medians), under the bench's autocast.
struct MoeBreakdown {
  std::string name;
  int64_t layer = -1;  ///< the model's first MoE layer (-1: the model has none)
  int64_t groups = 0, tokens_per_group = 0, capacity = 0, experts = 0;
  double layer_ms = 0;    ///< the whole MoE sublayer
  double router_ms = 0;   ///< router logits, softmax and the routing decision
  double experts_ms = 0;  ///< the expert MLPs on already gathered buffers
  /// Gather, combine weighting and scatter-add: what is left of the layer.
  double dispatch_ms() const { return std::max(0.0, layer_ms - router_ms - experts_ms); }
  double router_share() const { return layer_ms > 0 ? router_ms / layer_ms : 0; }
  double dispatch_share() const { return layer_ms > 0 ? dispatch_ms() / layer_ms : 0; }
};

/// A random but well-formed pre-training batch: token ids in [5, V), two
/// segments, no padding, P distinct masked positions per example. Drawn from
/// the global generator (seed it with torch::manual_seed).
PretrainBatch synthetic_pretrain_batch(const ModelConfig& c, int64_t batch, int64_t seq_len, int64_t predictions);

/// Times one config. `log` receives progress lines (may be empty).
BenchResult run_bench(const ModelConfig& config, const BenchOptions& options,
                      const std::function<void(const std::string&)>& log = {});

/// Times the first MoE layer of `config` alone (batch and sequence as in
/// run_bench). A model without MoE layers gives layer -1 and zeros.
MoeBreakdown run_moe_breakdown(const ModelConfig& config, const BenchOptions& options);

/// Dense matrix-product throughput of the device in TFLOP/s, the peak that
/// model FLOPs utilisation is measured against: n x n x n products in bf16 on
/// CUDA (with options.bf16; else float32), float32 on CPU; median of
/// options.repeats after options.warmup. n = 0 picks 8192 on CUDA, 1024 on CPU.
double measure_matmul_tflops(const BenchOptions& options, int64_t n = 0);

/// Median of samples (0 for none).
double median(std::vector<double> samples);

}  // namespace smx
