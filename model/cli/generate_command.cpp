// `smx generate`: text from a decoder-LM run's checkpoint (greedy, or sampled with temperature and top-k).
#include <fmt/core.h>

#include "model/cli/commands.h"
#include "model/config/train_config.h"
#include "model/nn/decoder.h"
#include "model/store/data_dir.h"
#include "model/store/run_store.h"
#include "model/text/tokenizer.h"
#include "model/train/checkpoint.h"

namespace smx::cli {
namespace fs = std::filesystem;

void add_generate_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("generate", "continue a prompt with a decoder-LM run (greedy, or top-k/temperature sampling)");
  struct Args {
    std::string prompt, checkpoint, data_dir;
    int64_t run = 0, tokens = 40, top_k = 0;
    double temperature = 0;
    uint64_t seed = 0;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("prompt", a->prompt, "the text to continue")->required();
  auto* r = cmd->add_option("--run", a->run, "the newest checkpoint of this run")->check(in_range(1, kMaxId));
  auto* c = cmd->add_option("--checkpoint", a->checkpoint, "checkpoint file")->check(CLI::ExistingFile);
  c->excludes(r);
  cmd->add_option("--tokens,-n", a->tokens, "new tokens to generate")->check(in_range(1, 4096))->capture_default_str();
  cmd->add_option("--temperature", a->temperature, "0: greedy; > 0: sample from softmax(logits / T)")
      ->check(in_range(0, 100))->capture_default_str();
  cmd->add_option("--top-k", a->top_k, "sampling: keep the k most likely tokens (0: all)")->check(in_range(0, 1'000'000));
  cmd->add_option("--seed", a->seed, "sampling seed");
  cmd->add_option("--data-dir", a->data_dir, "data folder");
  cmd->callback([a] {
    fs::path file = a->checkpoint;
    const fs::path dir = a->data_dir.empty() ? store::default_data_dir() : fs::path(a->data_dir);
    if (a->run > 0) {
      store::RunStore store(dir / "runs.sqlite");
      const auto rec = store.find_run(a->run);
      if (!rec) throw ConfigError("there is no run " + std::to_string(a->run) + " in " + store.path().string());
      file = newest_checkpoint(store.run_folder(a->run));
      if (file.empty()) throw ConfigError("run " + std::to_string(a->run) + " has no loadable checkpoint");
    }
    if (file.empty()) throw ConfigError("give --run ID or --checkpoint FILE");
    const auto info = read_checkpoint_info(file);
    ModelConfig model_config;
    TrainConfig training;
    run_config_from_json_text(info.run_config_json, model_config, training);
    if (!model_config.is_decoder())
      throw ConfigError("model '" + model_config.name + "' of " + file.string() +
                        " is an encoder; generate needs a decoder-LM run (e.g. smx pretrain --preset smlp-demo)");
    const auto tokenizer = text::Tokenizer::load(info.tokenizer_path);
    CausalLm lm(model_config);
    load_checkpoint(file, *lm, nullptr, /*restore_rng=*/false, /*strict=*/true);
    lm->eval();
    std::vector<int64_t> prompt;
    for (auto id : tokenizer.encode(a->prompt)) prompt.push_back(id);
    if (prompt.empty()) throw ConfigError("the prompt has no tokens");
    if (int64_t(prompt.size()) > model_config.max_seq_len)
      fmt::print(stderr, "note: the prompt has {} tokens; the model sees the last {}\n", prompt.size(), model_config.max_seq_len);
    GenerateOptions o;
    o.max_new_tokens = a->tokens;
    o.temperature = a->temperature;
    o.top_k = a->top_k;
    o.seed = a->seed;
    o.stop_token = text::Tokenizer::kSep;  // documents end with [SEP] in the LM stream
    const auto out = generate(lm, prompt, o);
    std::vector<int32_t> ids;
    for (auto id : out)
      if (id != text::Tokenizer::kSep) ids.push_back(int32_t(id));
    fmt::print("{}{}{}\n", a->prompt, ids.empty() ? "" : " ", tokenizer.decode(ids));
  });
}

}  // namespace smx::cli
