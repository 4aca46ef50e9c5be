// `smx info`: a model's layer table, parameter counts and FLOPs per example.
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "model/cli/commands.h"
#include "model/config/cost.h"

namespace smx::cli {
namespace {

struct InfoArgs {
  ModelChoice model;
  int64_t batch = 64;
  int64_t seq = 0;
  bool json = false;
};

std::string human(double n) {
  if (n >= 1e9) return fmt::format("{:.2f}B", n / 1e9);
  if (n >= 1e6) return fmt::format("{:.2f}M", n / 1e6);
  if (n >= 1e3) return fmt::format("{:.1f}K", n / 1e3);
  return fmt::format("{:.0f}", n);
}

void print_info(const InfoArgs& a) {
  const ModelConfig c = a.model.resolve();
  CostShape shape;
  shape.batch_size = a.batch;
  shape.seq_len = a.seq;
  if (a.batch < 1) throw ConfigError("--batch must be >= 1, got " + std::to_string(a.batch));
  if (a.seq < 0 || a.seq > c.max_seq_len)
    throw ConfigError("--seq must be in [1, max_seq_len = " + std::to_string(c.max_seq_len) + "], got " +
                      std::to_string(a.seq));
  const ModelCost cost = model_cost(c, shape);
  const int64_t S = a.seq > 0 ? a.seq : c.max_seq_len;

  if (a.json) {
    nlohmann::json j;
    j["config"] = nlohmann::json(c);
    j["shape"] = {{"batch_size", a.batch}, {"seq_len", S}, {"mlm_predictions", default_mlm_predictions(S)}};
    for (const auto& L : cost.layers)
      j["layers"].push_back({{"index", L.index}, {"mixing", L.mixing}, {"moe", L.moe}, {"params", L.params},
                             {"active_params", L.active_params}, {"forward_flops", L.forward_flops},
                             {"capacity", L.capacity}, {"groups", L.groups}});
    j["embedding_params"] = cost.embedding_params;
    j["head_params"] = cost.head_params;
    j["total_params"] = cost.total_params;
    j["active_params"] = cost.active_params;
    j["forward_flops_per_example"] = cost.forward_flops;
    j["train_flops_per_example"] = cost.train_flops;
    fmt::print("{}\n", j.dump(2));
    return;
  }

  fmt::print("{}: {} layers, d_model {}, d_ff {}, {} heads, vocab {}, max_seq_len {}\n", c.name, c.num_layers,
             c.d_model, c.d_ff, c.num_heads, c.vocab_size, c.max_seq_len);
  // The real counts: the MIXED layout can place more layers than asked for.
  auto placed = [](int64_t real, int64_t asked, Layout layout) {
    const char* plural = real == 1 ? "" : "s";
    return real == asked ? fmt::format("{} layer{} ({})", real, plural, to_string(layout))
                         : fmt::format("{} layer{} ({}: {} asked for, the reference rule places {})", real, plural,
                                       to_string(layout), asked, real);
  };
  if (c.is_decoder())
    fmt::print("decoder LM: {} token mixing, {} sparse blocks ({}; sMoE {}{})\n",
               c.lm_mixing == LmMixing::Attention ? "causal attention" : "gMLP (causal SGU)", c.moe_layers,
               to_string(c.moe_layout), to_string(c.smoe_routing),
               c.smoe_routing == SmoeRouting::Learned ? ", leaks future tokens: teaching only" : "");
  else if (c.attention_layer_count() < c.num_layers)
    fmt::print("mixing: {}, attention in {}\n", to_string(c.mixing),
               placed(c.attention_layer_count(), c.attention_layers, c.attention_layout));
  if (c.moe_layer_count() > 0)
    fmt::print("MoE: {}, {} experts of d_ff {}, {}{}, capacity factor {} train / {} eval, groups <= {} tokens{}\n",
               placed(c.moe_layer_count(), c.moe_layers, c.moe_layout), c.num_experts, c.expert_hidden(),
               to_string(c.router.kind),
               c.router.kind == RouterKind::TokensChoose ? fmt::format(" top-{}", c.router.top_k) : "",
               c.router.train_capacity_factor, c.router.eval_capacity_factor, c.router.max_group_size,
               c.router.precision == RouterPrecision::Float32 ? "" : ", router in bfloat16");
  fmt::print("\n{:>5}  {:<10} {:<5} {:>10} {:>12} {:>12} {:>14}\n", "layer", "mixing", "mlp", "params",
             "active/token", "GFLOP/ex", "capacity");
  for (const auto& L : cost.layers)
    fmt::print("{:>5}  {:<10} {:<5} {:>10} {:>12} {:>12.3f} {:>14}\n", L.index, L.mixing, L.moe ? "MoE" : "dense",
               human(double(L.params)), human(L.active_params), L.forward_flops / 1e9,
               L.moe ? fmt::format("{} x {} grp", L.capacity, L.groups) : "");
  fmt::print("{:>5}  {:<16} {:>10} {:>12} {:>12.3f}\n", "", "embeddings", human(double(cost.embedding_params)),
             human(double(cost.embedding_params)), cost.embedding_flops / 1e9);
  fmt::print("{:>5}  {:<16} {:>10} {:>12} {:>12.3f}\n", "", "heads", human(double(cost.head_params)),
             human(double(cost.head_params)), cost.head_flops / 1e9);
  fmt::print("\nparameters: {} total ({}), {} active per token\n", human(double(cost.total_params)),
             cost.total_params, human(cost.active_params));
  fmt::print("FLOPs per example (seq {}, batch {}, {} MLM predictions): {:.2f} GFLOP forward, {:.2f} GFLOP training step\n",
             S, a.batch, default_mlm_predictions(S), cost.forward_flops / 1e9, cost.train_flops / 1e9);
}

}  // namespace

void add_info_command(CLI::App& app) {
  auto args = std::make_shared<InfoArgs>();
  auto* cmd = app.add_subcommand("info", "layer table, parameter counts and FLOPs of a model");
  args->model.add_options(*cmd);
  cmd->add_option("--batch,-b", args->batch, "batch size that MoE capacity is computed for")
      ->check(in_range(1, 65536))
      ->capture_default_str();
  cmd->add_option("--seq", args->seq, "tokens per example (default and largest: max_seq_len)")->check(in_range(1, 8192));
  cmd->add_flag("--json", args->json, "machine-readable output");
  cmd->callback([args] { print_info(*args); });
}

}  // namespace smx::cli
