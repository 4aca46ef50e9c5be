// smx: the headless command line of Sparse Mixer Studio.
#include <torch/torch.h>

#include <algorithm>
#include <thread>

#include <fmt/core.h>

#include "model/config/cost.h"
#include "model/core/allocator.h"
#include "model/core/omp_wait.h"
#include "model/cli/commands.h"
#include "model/inspect/runtime.h"

namespace smx::cli {

std::vector<std::string>& command_line() {
  static std::vector<std::string> args;
  return args;
}

int cpu_count() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }

void ModelChoice::add_options(CLI::App& cmd, const std::string& default_preset) {
  preset = default_preset;
  auto* p = cmd.add_option("--preset,-p", preset, "model preset (see `smx presets`)");
  auto* c = cmd.add_option("--config,-c", config_file, "model config JSON file")->check(CLI::ExistingFile);
  p->excludes(c);
}

ModelConfig ModelChoice::resolve() const {
  if (!config_file.empty()) return config_from_file(config_file);
  if (preset.empty()) throw ConfigError("give a model with --preset NAME or --config FILE");
  return smx::preset(preset);
}

void add_presets_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("presets", "list the model presets, or print one as a JSON config");
  auto name = std::make_shared<std::string>();
  cmd->add_option("name", *name, "print this preset's full config as JSON (edit it and pass --config)");
  cmd->callback([name] {
    if (!name->empty()) {
      fmt::print("{}\n", config_to_json_text(preset(*name)));
      return;
    }
    for (const auto& n : preset_names()) {
      const auto c = preset(n);
      fmt::print("{:<24} {:>2} layers  d_model {:>4}  attention {:>2}  MoE {:>2} x {:>2} experts ({}, cf {})\n", n,
                 c.num_layers, c.d_model, c.attention_layer_count(), c.moe_layer_count(),
                 c.moe_layer_count() ? c.num_experts : 0,
                 to_string(c.router.kind), c.router.train_capacity_factor);
    }
    // Decoder LMs (sMLP family; the paper's sizes are for the cost model), one line each as above.
    for (const auto& n : lm_preset_names()) {
      const auto c = preset(n);
      const auto cost = model_cost(c);
      const std::string mixing = c.lm_mixing == LmMixing::Attention ? "attention" : "gMLP/SGU";
      const std::string ffn = fmt::format("MoE FFN {}{}", to_string(c.router.kind),
                                          tokens_choose_family(c.router.kind)
                                              ? fmt::format(" top-{}", c.router.choices_per_token())
                                              : std::string());
      const std::string sparse =
          c.moe_layers == 0 ? "dense"
          : c.smoe_routing == SmoeRouting::None
              ? fmt::format("{} sparse ({}) x {} experts", c.moe_layers, ffn, c.num_experts)
              : fmt::format("{} sparse (sMoE {}, {}) x {} experts", c.moe_layers, to_string(c.smoe_routing), ffn,
                            c.num_experts);
      fmt::print("{:<24} decoder LM, {:>2} blocks  d_model {:>4}  n {:>4}  {} {}{}  {:.1f}M params, {:.2f} MFLOP/token\n", n,
                 c.num_layers, c.d_model, c.max_seq_len, mixing, sparse,
                 c.smoe_routing == SmoeRouting::Learned ? " [leaks future tokens]" : "", double(cost.total_params) / 1e6,
                 cost.forward_flops / double(c.max_seq_len) / 1e6);
    }
  });
}

}  // namespace smx::cli

int main(int argc, char** argv) {
  smx::shorten_omp_spinning(argv);  // may start this program again, with GOMP_SPINCOUNT=30000
  smx::tune_allocator();
  smx::cli::command_line().assign(argv, argv + argc);
  CLI::App app{"smx: train, inspect and benchmark Sparse Mixer MoE encoders and sMLP language models (Sparse Mixer Studio)"};
  // A callback: asking CUDA costs start-up time (much more on a GPU machine), so only --version does.
  app.set_version_flag("--version", [] { return fmt::format("smx {} ({})", SMX_VERSION, smx::inspect::runtime_description()); });
  app.require_subcommand(1);
  smx::cli::add_presets_command(app);
  smx::cli::add_info_command(app);
  smx::cli::add_bench_command(app);
#ifdef SMX_WITH_TRAINING
  smx::cli::add_train_commands(app);
  smx::cli::add_generate_command(app);
  smx::cli::add_runs_command(app);
  smx::cli::add_data_dir_command(app);
#endif
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const smx::ConfigError& e) {
    fmt::print(stderr, "smx: {}\n", e.what());
    return 2;
  } catch (const c10::Error& e) {
    fmt::print(stderr, "smx: {}\n", e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "smx: {}\n", e.what());
    return 1;
  }
  return 0;
}
