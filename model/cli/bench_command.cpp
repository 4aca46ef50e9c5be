// `smx bench`: times training steps and inference for one or more models and
// prints them side by side with speed ratios (the shape of the paper's Table 8).
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
};

void run(const BenchArgs& a) {
  std::vector<ModelConfig> models;
  for (const auto& p : a.presets) models.push_back(preset(p));
  for (const auto& f : a.configs) models.push_back(config_from_file(f));
  if (models.empty()) throw ConfigError("give models with --presets A,B,... and/or --config FILE");
  if (a.threads > 0) torch::set_num_threads(a.threads);

  auto log = [&](const std::string& line) {
    if (!a.quiet) fmt::print(stderr, "  {}\n", line);
  };
  std::vector<BenchResult> results;
  for (const auto& m : models) {
    if (!a.quiet) fmt::print(stderr, "benchmarking {} on {}...\n", m.name, a.options.device);
    results.push_back(run_bench(m, a.options, log));
  }
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
    j["baseline"] = b.name;
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
                              {"peak_memory_bytes", r.peak_memory_bytes}});
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
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--seq", a->options.seq_len, "tokens per example (default: the model's max_seq_len)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--warmup", a->options.warmup, "untimed steps first")->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_option("--repeats,-r", a->options.repeats, "timed steps (median reported)")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--threads", a->threads, "CPU threads for LibTorch (default: LibTorch's choice)");
  cmd->add_flag("!--no-bf16", a->options.bf16, "CUDA: float32 instead of bf16 autocast");
  cmd->add_flag("--no-train{false}", a->options.train, "skip the training step");
  cmd->add_flag("--no-inference{false}", a->options.inference, "skip inference");
  cmd->add_flag("--phases", a->options.phases,
                "also time forward, backward and optimizer (synchronises between them)");
  cmd->add_flag("--json", a->json, "machine-readable output");
  cmd->add_flag("--quiet,-q", a->quiet, "no progress lines on stderr");
  cmd->callback([a] { run(*a); });
}

}  // namespace smx::cli
