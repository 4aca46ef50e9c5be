// `smx bench`: times training steps and inference for one or more models and
// prints them side by side with speed ratios (the shape of the paper's Table 8).
#include <unistd.h>

#include <filesystem>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <torch/torch.h>

#include "model/bench/bench.h"
#include "model/cli/commands.h"

namespace smx::cli {
namespace {

struct BenchArgs {
  std::vector<std::string> presets;
  std::vector<std::string> configs;
  BenchOptions options;
  bool json = false;
  bool quiet = false;
  int threads = 0;
  std::string optimizer = "auto";
  bool moe_breakdown = false;
  bool matmul_peak = false;
  std::string profile_prefix;
};

/// The profiled operators as JSON, most self time first (all of them).
nlohmann::json operators_json(const std::vector<OperatorTime>& ops) {
  auto j = nlohmann::json::array();
  for (const auto& o : ops)
    j.push_back({{"name", o.name}, {"self_ms", o.self_ms}, {"total_ms", o.total_ms}, {"calls", o.calls}});
  return j;
}

/// The operators with the most self time, and what the rest add up to.
void print_operators(const std::string& what, const std::vector<OperatorTime>& ops, double step_ms) {
  if (ops.empty()) return;
  constexpr size_t kShown = 15;
  fmt::print("\n{}, profiled: {:.1f} ms per step; operators by self time (share of the step):\n", what, step_ms);
  fmt::print("  {:<40} {:>10} {:>7} {:>9} {:>10}\n", "operator", "self ms", "share", "calls", "total ms");
  auto share = [&](double ms) { return step_ms > 0 ? 100 * ms / step_ms : 0.0; };
  double rest = 0, rest_calls = 0;
  for (size_t i = 0; i < ops.size(); ++i) {
    const auto& o = ops[i];
    if (i < kShown)
      fmt::print("  {:<40} {:>10.2f} {:>6.1f}% {:>9.0f} {:>10.2f}\n", o.name.substr(0, 40), o.self_ms, share(o.self_ms),
                 o.calls, o.total_ms);
    else
      rest += o.self_ms, rest_calls += o.calls;
  }
  if (ops.size() > kShown)
    fmt::print("  {:<40} {:>10.2f} {:>6.1f}% {:>9.0f}\n", fmt::format("{} others", ops.size() - kShown), rest,
               share(rest), rest_calls);
}

void run(const BenchArgs& a) {
  std::vector<ModelConfig> models;
  for (const auto& p : a.presets) models.push_back(preset(p));
  for (const auto& f : a.configs) models.push_back(config_from_file(f));
  if (models.empty()) throw ConfigError("give models with --presets A,B,... and/or --config FILE");
  for (const auto& m : models)
    if (a.options.seq_len > m.max_seq_len)
      throw ConfigError("--seq " + std::to_string(a.options.seq_len) + " is larger than " + m.name + "'s max_seq_len (" +
                        std::to_string(m.max_seq_len) + "); give at most " + std::to_string(m.max_seq_len));
  if (a.threads > 0) torch::set_num_threads(a.threads);
  BenchOptions options = a.options;
  try {
    options.optimizer = adamw_kind_from_string(a.optimizer);
  } catch (const std::invalid_argument& e) {
    throw ConfigError(e.what());
  }
  if (!a.profile_prefix.empty()) {
    // Say so now, not after every model has been benchmarked.
    const auto folder = std::filesystem::absolute(a.profile_prefix).parent_path();
    if (!std::filesystem::is_directory(folder) || ::access(folder.c_str(), W_OK) != 0)
      throw ConfigError("cannot write traces into " + folder.string() + ": not a writable folder");
  }

  auto log = [&](const std::string& line) {
    if (!a.quiet) fmt::print(stderr, "  {}\n", line);
  };
  std::vector<BenchResult> results;
  for (const auto& m : models) {
    if (!a.quiet) fmt::print(stderr, "benchmarking {} on {}...\n", m.name, options.device);
    if (!a.profile_prefix.empty()) options.profile_path = a.profile_prefix + "-" + m.name + ".json";
    results.push_back(run_bench(m, options, log));
    if (!a.profile_prefix.empty() && !a.quiet) {
      if (options.train) fmt::print(stderr, "  trace written to {}\n", options.profile_path);
      if (options.inference) fmt::print(stderr, "  trace written to {}\n", inference_trace_path(options.profile_path));
    }
  }
  std::vector<MoeBreakdown> moe;
  if (a.moe_breakdown)
    for (const auto& m : models) {
      if (!a.quiet) fmt::print(stderr, "timing one MoE layer of {}...\n", m.name);
      moe.push_back(run_moe_breakdown(m, options));
    }
  double peak_tflops = 0;
  if (a.matmul_peak) {
    if (!a.quiet) fmt::print(stderr, "measuring the matrix-product peak...\n");
    peak_tflops = measure_matmul_tflops(options);
  }
  // Model FLOPs utilisation: the model's FLOPs per second over the measured peak.
  auto mfu = [&](double gflops) { return peak_tflops > 0 ? gflops / (peak_tflops * 1e3) : 0.0; };
  // Ratios against bert-base when it is in the list, else against the first model.
  size_t base = 0;
  for (size_t i = 0; i < results.size(); ++i)
    if (results[i].name == "bert-base") base = i;
  const auto& b = results[base];
  auto ratio = [](double baseline, double x) { return x > 0 ? baseline / x : 0.0; };

  if (a.json) {
    nlohmann::json j;
    j["device"] = a.options.device;
    j["torch_threads"] = torch::get_num_threads();
    j["torch_version"] = TORCH_VERSION;
    const bool cuda = torch::Device(options.device).is_cuda();
    j["bf16"] = options.bf16 && cuda;  // autocast is used on CUDA only
    j["attention_mask"] = options.attention_mask;
    j["baseline"] = b.name;
    if (a.matmul_peak) {
      j["matmul_peak_tflops"] = peak_tflops;
      j["matmul_peak_dtype"] = options.bf16 && cuda ? "bf16" : "float32";
    }
    for (const auto& r : results)
      j["results"].push_back({{"name", r.name},
                              {"device", r.device},
                              {"batch_size", r.batch_size},
                              {"seq_len", r.seq_len},
                              {"mlm_predictions", r.mlm_predictions},
                              {"params", r.params},
                              {"train_flops_per_example", r.train_flops_per_example},
                              {"forward_flops_per_example", r.forward_flops_per_example},
                              {"train_ms_per_step", r.train_ms},
                              {"infer_ms_per_step", r.infer_ms},
                              {"train_ms_per_example", r.train_ms_per_example()},
                              {"infer_ms_per_example", r.infer_ms_per_example()},
                              {"train_tokens_per_s", r.train_tokens_per_s()},
                              {"infer_tokens_per_s", r.infer_tokens_per_s()},
                              {"train_gflops", r.train_gflops()},
                              {"infer_gflops", r.infer_gflops()},
                              {"train_speedup", ratio(b.train_ms_per_example(), r.train_ms_per_example())},
                              {"infer_speedup", ratio(b.infer_ms_per_example(), r.infer_ms_per_example())},
                              {"train_forward_ms", r.train_forward_ms},
                              {"train_backward_ms", r.train_backward_ms},
                              {"train_optimizer_ms", r.train_optimizer_ms},
                              {"train_samples_ms", r.train_samples_ms},
                              {"infer_samples_ms", r.infer_samples_ms},
                              {"peak_memory_bytes", r.peak_memory_bytes},
                              {"infer_peak_memory_bytes", r.infer_peak_memory_bytes},
                              {"optimizer", r.optimizer},
                              {"train_mfu", mfu(r.train_gflops())},
                              {"infer_mfu", mfu(r.infer_gflops())},
                              {"train_operators", operators_json(r.train_operators)},
                              {"infer_operators", operators_json(r.infer_operators)},
                              {"train_profiled_ms_per_step", r.train_profiled_ms},
                              {"infer_profiled_ms_per_step", r.infer_profiled_ms}});
    for (const auto& m : moe)
      j["moe_breakdown"].push_back({{"name", m.name},
                                    {"layer", m.layer},
                                    {"groups", m.groups},
                                    {"tokens_per_group", m.tokens_per_group},
                                    {"experts", m.experts},
                                    {"capacity", m.capacity},
                                    {"layer_ms", m.layer_ms},
                                    {"router_ms", m.router_ms},
                                    {"experts_ms", m.experts_ms},
                                    {"dispatch_ms", m.dispatch_ms()},
                                    {"router_share", m.router_share()},
                                    {"dispatch_share", m.dispatch_share()}});
    fmt::print("{}\n", j.dump(2));
    return;
  }
  fmt::print("\ndevice {}, {} threads, batch {} x {} tokens, median of {} steps after {} warm-up\n",
             b.device, torch::get_num_threads(), b.batch_size, b.seq_len, a.options.repeats, a.options.warmup);
  fmt::print("{:<20} {:>9} {:>10} | {:>11} {:>10} {:>8} {:>7} | {:>11} {:>10} {:>8} {:>7}\n", "model", "params",
             "GFLOP/ex", "train ms/ex", "tok/s", "GFLOP/s", "speed", "infer ms/ex", "tok/s", "GFLOP/s", "speed");
  for (const auto& r : results)
    fmt::print("{:<20} {:>8.1f}M {:>10.2f} | {:>11.2f} {:>10.0f} {:>8.1f} {:>6.2f}x | {:>11.2f} {:>10.0f} {:>8.1f} {:>6.2f}x\n",
               r.name, double(r.params) / 1e6, r.train_flops_per_example / 1e9, r.train_ms_per_example(),
               r.train_tokens_per_s(), r.train_gflops(), ratio(b.train_ms_per_example(), r.train_ms_per_example()),
               r.infer_ms_per_example(), r.infer_tokens_per_s(), r.infer_gflops(),
               ratio(b.infer_ms_per_example(), r.infer_ms_per_example()));
  if (a.options.phases && a.options.train) {
    fmt::print("\ntraining step phases, ms per step (forward+losses / backward / optimizer):\n");
    for (const auto& r : results)
      fmt::print("{:<20} {:>10.1f} {:>10.1f} {:>10.1f}\n", r.name, r.train_forward_ms, r.train_backward_ms,
                 r.train_optimizer_ms);
  }
  if (a.matmul_peak) {
    // A CPU's peak is a fraction of a TFLOP/s: GFLOP/s there, so that it reads to three digits.
    const std::string peak = peak_tflops >= 1 ? fmt::format("{:.1f} TFLOP/s", peak_tflops)
                                              : fmt::format("{:.1f} GFLOP/s", peak_tflops * 1e3);
    fmt::print("\nmatrix-product peak {}; model FLOPs utilisation and peak memory:\n", peak);
    fmt::print("{:<20} {:>9} {:>9} {:>12} {:>12}\n", "model", "MFU train", "MFU infer", "train MiB", "infer MiB");
    auto mib = [](int64_t bytes) { return bytes >= 0 ? fmt::format("{:.0f}", double(bytes) / (1 << 20)) : "-"; };
    for (const auto& r : results)
      fmt::print("{:<20} {:>8.1f}% {:>8.1f}% {:>12} {:>12}\n", r.name, 100 * mfu(r.train_gflops()),
                 100 * mfu(r.infer_gflops()), mib(r.peak_memory_bytes), mib(r.infer_peak_memory_bytes));
  }
  if (!moe.empty()) {
    fmt::print("\none MoE layer, forward + backward, ms (share of the layer):\n");
    fmt::print("{:<20} {:>5} {:>13} {:>9} {:>17} {:>17} {:>17}\n", "model", "layer", "G x T, E x C", "layer",
               "router", "dispatch", "experts");
    for (const auto& m : moe) {
      if (m.layer < 0) {
        fmt::print("{:<20} {:>5}\n", m.name, "none");
        continue;
      }
      fmt::print("{:<20} {:>5} {:>13} {:>9.2f} {:>9.2f} ({:>4.1f}%) {:>9.2f} ({:>4.1f}%) {:>9.2f} ({:>4.1f}%)\n", m.name,
                 m.layer, fmt::format("{}x{}, {}x{}", m.groups, m.tokens_per_group, m.experts, m.capacity), m.layer_ms,
                 m.router_ms, 100 * m.router_share(), m.dispatch_ms(), 100 * m.dispatch_share(), m.experts_ms,
                 100 * m.experts_ms / std::max(m.layer_ms, 1e-9));
    }
  }
  for (const auto& r : results) {
    print_operators(r.name + "'s training step", r.train_operators, r.train_profiled_ms);
    print_operators(r.name + "'s inference", r.infer_operators, r.infer_profiled_ms);
  }
  if (a.options.train && !results.empty()) fmt::print("\noptimizer: AdamW, {}\n", results.front().optimizer);
  fmt::print("speed = {}'s ms per example / the model's (higher is faster); GFLOP/ex counts a training step\n", b.name);
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  auto* cmd = app.add_subcommand("bench", "time training steps and inference of one or more models");
  cmd->add_option("--presets,-p", a->presets, "comma-separated presets, e.g. bert-base,sparse-mixer")->delimiter(',');
  cmd->add_option("--config,-c", a->configs, "model config JSON file (repeatable)")->check(CLI::ExistingFile);
  cmd->add_option("--device,-d", a->options.device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--batch,-b", a->options.batch_size, "examples per step (default 2 on CPU, 32 on CUDA)")
      ->check(in_range(1, 65536));
  cmd->add_option("--seq", a->options.seq_len, "tokens per example (default and largest: the model's max_seq_len)")
      ->check(in_range(1, 8192));
  cmd->add_option("--warmup", a->options.warmup, "untimed steps first")->check(in_range(0, 10000))->capture_default_str();
  cmd->add_option("--repeats,-r", a->options.repeats, "timed steps (median reported)")
      ->check(in_range(1, 10000))
      ->capture_default_str();
  cmd->add_option("--threads", a->threads, "CPU threads for LibTorch (default: LibTorch's choice)")
      ->check(in_range(1, cpu_count(), "the CPUs of this machine"));
  cmd->add_flag("!--no-bf16", a->options.bf16, "CUDA: float32 instead of bf16 autocast");
  cmd->add_flag("--no-train{false}", a->options.train, "skip the training step");
  cmd->add_flag("--no-inference{false}", a->options.inference, "skip inference");
  cmd->add_flag("--phases", a->options.phases,
                "also time forward, backward and optimizer (synchronises between them)");
  cmd->add_option("--optimizer", a->optimizer,
                  "AdamW implementation: auto (fused where it takes the parameters, else foreach), fused "
                  "(CUDA: LibTorch >= 2.1; CPU: one pass per tensor), foreach or reference (LibTorch's own loop)")
      ->check(CLI::IsMember({"auto", "fused", "foreach", "reference"}))
      ->capture_default_str();
  cmd->add_flag("--attention-mask", a->options.attention_mask,
                "pass an attention mask although nothing is padded (on CUDA this rules out flash attention)");
  cmd->add_flag("--moe-breakdown", a->moe_breakdown,
                "also time one MoE layer: router, dispatch (gather/scatter) and experts");
  cmd->add_flag("--matmul-peak", a->matmul_peak,
                "also measure the device's matrix-product peak and report model FLOPs utilisation");
  cmd->add_option("--profile", a->profile_prefix,
                  "after the timed steps, profile 3 more training steps and 3 inference steps, write "
                  "PREFIX-<model>.json and PREFIX-<model>-inference.json (Chrome traces: operators and, on CUDA, "
                  "kernels) and, on the CPU, print the operators that take the most time");
  cmd->add_flag("--json", a->json, "machine-readable output");
  cmd->add_flag("--quiet,-q", a->quiet, "no progress lines on stderr");
  cmd->callback([a] { run(*a); });
}

}  // namespace smx::cli
