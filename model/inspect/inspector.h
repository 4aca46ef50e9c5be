// Inference-time inspection of a trained model, for the studio's Playground,
// the routing what-if and the capacity view: load a checkpoint (an encoder or
// a decoder LM) and its tokenizer, then predict masked tokens (encoders),
// generate text and compare teacher-forced with token-by-token perplexity
// (decoder LMs), and re-route text under another capacity factor or router.
// Also the speed benchmark behind the Speed view.
// No LibTorch in this header: the studio includes it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "model/config/model_config.h"
#include "model/inspect/runtime.h"
#include "model/store/snapshot.h"

namespace smx::inspect {

/// A masked-token prediction and the routing of one sentence.
struct Prediction {
  std::vector<std::string> tokens;  ///< pieces, with [CLS] and [SEP]
  std::vector<int> masked;          ///< positions of [MASK] tokens
  /// Per masked position: (piece, probability), most likely first.
  std::vector<std::vector<std::pair<std::string, double>>> top;
  /// Per MoE layer (layer order): block index, and per token the experts that took it.
  std::vector<int> moe_layers;
  std::vector<std::vector<std::vector<int>>> experts;  ///< [layer][token] -> experts
  double latency_ms = 0;  ///< the forward pass alone
};

/// Decoder LMs: how to continue a prompt (as `smx generate`).
struct GenerateSettings {
  int max_new_tokens = 40;  ///< 1 .. 4096
  double temperature = 0;   ///< 0: greedy; > 0: sample from softmax(logits / temperature)
  int top_k = 0;            ///< sampling: keep the k most likely tokens (0: all)
  uint64_t seed = 0;        ///< sampling seed
};

/// A prompt and its continuation, with the routing of every token through the feature-MoE layers.
struct Generation {
  std::vector<std::string> prompt_tokens;  ///< pieces of the prompt (as the model saw them)
  std::vector<std::string> new_tokens;     ///< pieces generated, in order (the end-of-document token excluded)
  std::string continuation;                ///< the new tokens decoded to text
  bool stopped = false;                    ///< ended at the end-of-document token before max_new_tokens
  /// Per feature-MoE layer (layer order): block index, and per token (prompt then new) the experts that took it.
  std::vector<int> moe_layers;
  std::vector<std::vector<std::vector<int>>> experts;  ///< [layer][token] -> experts
  double latency_ms = 0;                               ///< generation alone
};

/// Teacher-forced against token-by-token perplexity on held-out windows (the future-token-leak check).
struct LeakCheck {
  double teacher_forced_perplexity = 0;  ///< one forward pass per window, every target at once (training's view)
  double token_by_token_perplexity = 0;  ///< target t+1 from tokens 0..t alone (what generation sees)
  int64_t windows = 0, targets = 0;      ///< windows read, targets scored
  std::string smoe_routing;              ///< the model's sMoE routing ("none", "deterministic", "partial", "learned")
};

/// Thrown for a checkpoint or tokenizer that cannot be used, or bad text.
class InspectError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Inspector {
 public:
  /// Loads the checkpoint's model (config from its header; an encoder or a
  /// decoder LM) and its tokenizer. device: "auto", "cpu" or "cuda". Throws
  /// InspectError with the reason.
  explicit Inspector(const std::filesystem::path& checkpoint, const std::string& device = "cpu");
  ~Inspector();
  Inspector(const Inspector&) = delete;
  Inspector& operator=(const Inspector&) = delete;

  const std::filesystem::path& checkpoint() const;
  /// Optimizer steps done when the weights were saved.
  int64_t step() const;
  /// True for a live copy of a running run's weights (see LiveWeights), false for a checkpoint.
  bool live() const;
  int64_t run_id() const;
  std::string device() const;
  const ModelConfig& model_config() const;
  /// The run's probe sentence (its training config).
  const std::string& probe_text() const;

  /// True for a decoder LM (generate and leak_check apply; predict does not).
  bool is_decoder() const;

  /// Encoders: top-k predictions for every [MASK] in `text`, and the routing
  /// of every token. Throws InspectError for a decoder LM.
  Prediction predict(const std::string& text, int top_k = 5);

  /// Decoder LMs: continues `prompt` (the last max_seq_len tokens are read
  /// each step; stops at the end-of-document token) and routes prompt and
  /// continuation through the feature-MoE layers. Throws InspectError for an
  /// encoder, an empty prompt or bad settings.
  Generation generate(const std::string& prompt, const GenerateSettings& settings = {});

  /// Decoder LMs: teacher-forced and token-by-token perplexity on the first
  /// `windows` held-out windows of the run's corpus (the evaluation's data;
  /// data_dir holds its tokenized cache, empty: the folder of the run's
  /// tokenizer). Equal for causal models; the learned sMoE reads future
  /// tokens, so its teacher-forced number is optimistic. Throws InspectError
  /// for an encoder or an unreadable corpus.
  LeakCheck leak_check(int windows = 4, const std::filesystem::path& data_dir = {});

  /// Routes `text` (empty: the run's probe) through every MoE layer in eval
  /// mode with this capacity factor (<= 0: the model's eval factor) and router
  /// ("tokens-choose", "experts-choose"; empty: the model's). The model is
  /// unchanged afterwards.
  std::vector<telemetry::ProbeRouting> route(const std::string& text, double capacity_factor = 0,
                                             const std::string& router = {});

  /// Routing statistics of a held-out batch (sentences of the run's corpus,
  /// the same sample each time) at this eval capacity factor.
  std::vector<telemetry::MoeLayerStats> route_batch(double capacity_factor, int sentences = 32);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// One preset's speed.
struct SpeedRow {
  std::string preset;
  double train_ms_per_example = 0, infer_ms_per_example = 0;
  double forward_gflops_per_example = 0;
};

/// Benchmarks presets (training step and inference) like `smx bench`.
/// device: "auto", "cpu" or "cuda". `log` gets progress lines.
std::vector<SpeedRow> speed_bench(const std::vector<std::string>& presets, int batch, int seq_len,
                                  const std::string& device, const std::function<void(const std::string&)>& log = {});

/// The newest loadable checkpoint of a run folder (empty if none); damaged
/// ones are skipped.
std::filesystem::path latest_checkpoint(const std::filesystem::path& run_dir);

}  // namespace smx::inspect
