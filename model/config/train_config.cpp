// TrainConfig: validation and strict JSON.
#include "model/config/train_config.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "model/config/json_fields.h"

namespace smx {
namespace {
std::string num(double v) {
  std::ostringstream o;
  o << v;
  return o.str();
}
}  // namespace

std::string to_string(StabilityPolicy p) {
  switch (p) {
    case StabilityPolicy::Stop: return "stop";
    case StabilityPolicy::Skip: return "skip";
    case StabilityPolicy::Continue: return "continue";
  }
  return "?";
}

StabilityPolicy stability_policy_from_string(const std::string& s) {
  if (s == "stop") return StabilityPolicy::Stop;
  if (s == "skip") return StabilityPolicy::Skip;
  if (s == "continue") return StabilityPolicy::Continue;
  throw ConfigError("unknown stability policy '" + s + "' (known: stop, skip, continue)");
}

void TrainConfig::validate() const {
  auto fail = [](const std::string& field, const std::string& why) {
    throw ConfigError("training field '" + field + "': " + why);
  };
  if (task.empty()) fail("task", "must be \"pretrain\" or a fine-tuning task name");
  if (steps < 1 || steps > int64_t(1e12)) fail("steps", "must be in [1, 1e12], got " + std::to_string(steps));
  if (batch_size < 1 || batch_size > 65536) fail("batch_size", "must be in [1, 65536], got " + std::to_string(batch_size));
  if (accumulation < 1 || accumulation > 65536)
    fail("accumulation", "must be in [1, 65536], got " + std::to_string(accumulation));
  if (seq_len < 0 || (seq_len > 0 && seq_len < 8)) fail("seq_len", "must be 0 (the model's) or at least 8");
  if (max_predictions < 0) fail("max_predictions", "must be 0 (automatic) or positive");
  // NaN passes every `x < 0` test: each real field is checked for being finite first.
  for (const auto& [field, v] : {std::pair<const char*, double>{"learning_rate", learning_rate}, {"weight_decay", weight_decay},
                                {"adam_beta1", adam_beta1}, {"adam_beta2", adam_beta2}, {"adam_epsilon", adam_epsilon},
                                {"clip_norm", clip_norm}, {"expert_dropout", expert_dropout}, {"spike_factor", spike_factor}})
    if (!std::isfinite(v)) fail(field, "must be a finite number, got " + num(v));
  if (!(learning_rate > 0) || learning_rate > 1) fail("learning_rate", "must be in (0, 1]");
  if (warmup_steps < -1) fail("warmup_steps", "must be -1 (10% of steps) or non-negative");
  if (schedule != "linear" && schedule != "inverse-sqrt")
    fail("schedule", "must be linear or inverse-sqrt, got '" + schedule + "'");
  if (weight_decay < 0 || weight_decay > 1) fail("weight_decay", "must be in [0, 1], got " + num(weight_decay));
  if (!(adam_beta1 >= 0 && adam_beta1 < 1)) fail("adam_beta1", "must be in [0, 1)");
  if (!(adam_beta2 >= 0 && adam_beta2 < 1)) fail("adam_beta2", "must be in [0, 1)");
  if (!(adam_epsilon > 0)) fail("adam_epsilon", "must be positive");
  if (clip_norm < 0) fail("clip_norm", "must be non-negative (0 turns clipping off), got " + num(clip_norm));
  if (expert_dropout != -1 && !(expert_dropout >= 0 && expert_dropout < 1)) fail("expert_dropout", "must be in [0, 1) or -1");
  const bool cuda_n = device.rfind("cuda:", 0) == 0 && device.size() > 5 && device.size() <= 8 &&
                      device.find_first_not_of("0123456789", 5) == std::string::npos;
  if (device != "auto" && device != "cpu" && device != "cuda" && !cuda_n)
    fail("device", "must be auto, cpu, cuda or cuda:N (a GPU's index), got '" + device + "'");
  if (threads < 0 || threads > kMaxThreads)
    fail("threads", "must be in [0, " + std::to_string(kMaxThreads) + "] (0: LibTorch's choice), got " + std::to_string(threads));
  if (log_every < 1) fail("log_every", "must be at least 1");
  if (eval_every < 0 || eval_batches < 1) fail("eval_every", "eval_every must be >= 0 and eval_batches >= 1");
  if (checkpoint_every < 0) fail("checkpoint_every", "must be non-negative (0: only at the end)");
  if (keep_checkpoints < 1) fail("keep_checkpoints", "must be at least 1");
  if (snapshot_every < 0) fail("snapshot_every", "must be non-negative (0: none)");
  if (!(spike_factor > 1)) fail("spike_factor", "must be greater than 1");
  if (spike_window < 2) fail("spike_window", "must be at least 2");
}

void TrainConfig::validate(const ModelConfig& model) const {
  validate();
  if (seq_len > model.max_seq_len)
    throw ConfigError("training field 'seq_len' = " + std::to_string(seq_len) + ": larger than the model's max_seq_len (" +
                      std::to_string(model.max_seq_len) + "); give at most " + std::to_string(model.max_seq_len) +
                      " (the model's position table and mixing matrices have that many rows)");
  const int64_t s = seq_len > 0 ? seq_len : model.max_seq_len;
  if (max_predictions >= s)
    throw ConfigError("training field 'max_predictions' = " + std::to_string(max_predictions) +
                      ": must be below the sequence length (" + std::to_string(s) + ")");
}

double TrainConfig::learning_rate_at(int64_t step) const {
  const int64_t warmup = effective_warmup();
  if (warmup > 0 && step < warmup) return learning_rate * double(step + 1) / double(warmup);
  if (schedule == "inverse-sqrt") return learning_rate * std::sqrt(double(std::max<int64_t>(warmup, 1)) / double(step + 1));
  const int64_t decay = std::max<int64_t>(1, steps - warmup);
  return learning_rate * std::max(0.0, double(steps - step) / double(decay));
}

TrainConfig recommended_pretraining(const ModelConfig& m) {
  TrainConfig t;
  if (m.d_model <= 256) t.learning_rate = 1e-3;
  if (m.is_decoder()) {
    t.adam_beta2 = 0.98;
    t.adam_epsilon = 1e-8;
    t.weight_decay = 0.1;
    t.schedule = "inverse-sqrt";
    t.learning_rate = m.d_model <= 256 ? 2e-3 : 5e-4;
    t.warmup_steps = m.d_model <= 256 ? 100 : 4000;
    t.batch_size = m.d_model <= 256 ? 16 : 32;
  }
  return t;
}

TrainConfig recommended_finetuning(const ModelConfig& m, const std::string& task) {
  TrainConfig t = recommended_pretraining(m);
  t.task = task;
  t.expert_dropout = 0.2;
  t.eval_every = 100;
  t.snapshot_every = 0;
  // BERT's fine-tuning grid tops out at 5e-5; the paper finds MoE models prefer the larger rates.
  if (m.d_model > 256) t.learning_rate = 5e-5;
  return t;
}

void to_json(nlohmann::json& j, const TrainConfig& c) {
  j = nlohmann::json{
      {"task", c.task}, {"corpus", c.corpus}, {"task_dir", c.task_dir}, {"tokenizer", c.tokenizer},
      {"steps", c.steps}, {"batch_size", c.batch_size}, {"accumulation", c.accumulation},
      {"seq_len", c.seq_len}, {"max_predictions", c.max_predictions}, {"learning_rate", c.learning_rate},
      {"warmup_steps", c.warmup_steps}, {"schedule", c.schedule}, {"weight_decay", c.weight_decay}, {"adam_beta1", c.adam_beta1},
      {"adam_beta2", c.adam_beta2}, {"adam_epsilon", c.adam_epsilon}, {"clip_norm", c.clip_norm},
      {"expert_dropout", c.expert_dropout}, {"seed", c.seed}, {"device", c.device}, {"bf16", c.bf16},
      {"threads", c.threads}, {"log_every", c.log_every}, {"eval_every", c.eval_every},
      {"eval_batches", c.eval_batches}, {"checkpoint_every", c.checkpoint_every},
      {"keep_checkpoints", c.keep_checkpoints}, {"snapshot_every", c.snapshot_every},
      {"probe_text", c.probe_text}, {"spike_factor", c.spike_factor}, {"spike_window", c.spike_window},
      {"on_nonfinite", to_string(c.on_nonfinite)}, {"on_spike", to_string(c.on_spike)},
      {"inject_nan_at_step", c.inject_nan_at_step},
  };
}

void from_json(const nlohmann::json& j, TrainConfig& c) {
  FieldReader r(j, "training.");
  r.read("task", c.task);
  r.read("corpus", c.corpus);
  r.read("task_dir", c.task_dir);
  r.read("tokenizer", c.tokenizer);
  r.read("steps", c.steps);
  r.read("batch_size", c.batch_size);
  r.read("accumulation", c.accumulation);
  r.read("seq_len", c.seq_len);
  r.read("max_predictions", c.max_predictions);
  r.read("learning_rate", c.learning_rate);
  r.read("warmup_steps", c.warmup_steps);
  r.read("schedule", c.schedule);
  r.read("weight_decay", c.weight_decay);
  r.read("adam_beta1", c.adam_beta1);
  r.read("adam_beta2", c.adam_beta2);
  r.read("adam_epsilon", c.adam_epsilon);
  r.read("clip_norm", c.clip_norm);
  r.read("expert_dropout", c.expert_dropout);
  r.read("seed", c.seed);
  r.read("device", c.device);
  r.read("bf16", c.bf16);
  r.read("threads", c.threads);
  r.read("log_every", c.log_every);
  r.read("eval_every", c.eval_every);
  r.read("eval_batches", c.eval_batches);
  r.read("checkpoint_every", c.checkpoint_every);
  r.read("keep_checkpoints", c.keep_checkpoints);
  r.read("snapshot_every", c.snapshot_every);
  r.read("probe_text", c.probe_text);
  r.read("spike_factor", c.spike_factor);
  r.read("spike_window", c.spike_window);
  r.read_enum("on_nonfinite", c.on_nonfinite, &stability_policy_from_string);
  r.read_enum("on_spike", c.on_spike, &stability_policy_from_string);
  r.read("inject_nan_at_step", c.inject_nan_at_step);
  r.reject_unknown();
  c.validate();
}

std::string run_config_to_json_text(const ModelConfig& model, const TrainConfig& training) {
  nlohmann::json j;
  j["model"] = nlohmann::json::parse(config_to_json_text(model));
  j["training"] = training;
  return j.dump(2);
}

void run_config_from_json_text(const std::string& text, ModelConfig& model, TrainConfig& training) {
  nlohmann::json j;
  try {
    j = parse_json_text(text);
  } catch (const ConfigError& e) {
    throw ConfigError(std::string("run config: ") + e.what());
  }
  if (!j.is_object() || !j.contains("model") || !j.contains("training"))
    throw ConfigError("a run config needs \"model\" and \"training\" objects");
  model = config_from_json_text(j["model"].dump());
  training = j["training"].get<TrainConfig>();
}

TrainConfig training_config_from_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError("cannot open training config file '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return parse_json_text(ss.str()).get<TrainConfig>();
  } catch (const ConfigError& e) {
    throw ConfigError(path + ": " + e.what());
  }
}

}  // namespace smx
