#include "tst_lm.h"

#include <QtTest>
#include <cmath>

#include "model/config/cost.h"
#include "model/nn/decoder.h"
#include "model/nn/encoder.h"
#include "model/nn/sgu.h"

using namespace smx;

namespace {

// Untrained SGUs start with W ~ 0 and b = 1, under which almost any mixing looks causal. Give every
// spatial matrix, bias and router real weight so that the checks below can fail.
void scramble(torch::nn::Module& m) {
  torch::NoGradGuard g;
  for (auto& p : m.named_parameters()) {
    const auto& name = p.key();
    auto t = p.value();
    auto is = [&](const std::string& leaf) {
      return name == leaf || (name.size() > leaf.size() && name.substr(name.size() - leaf.size() - 1) == "." + leaf);
    };
    if (is("w")) t.normal_(0.0, 0.2);
    else if (is("b")) t.normal_(1.0, 0.3);
    else if (name.find("smoe.router") != std::string::npos) t.normal_(0.0, 1.0);
  }
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

ModelConfig lm_config(const QString& name) { return preset(name.toStdString()); }

void add_causal_rows() {
  QTest::addColumn<QString>("name");
  for (const char* n : {"transformer-lm-demo", "gmlp-demo", "smlp-demo", "smlp-partial-demo", "switch-lm-demo",
                        "gshard-lm-demo", "base-lm-demo", "hash-lm-demo"})
    QTest::newRow(n) << QString(n);
}

}  // namespace

void TestLm::fairseqInsertLayout() {
  // N = M = 12: all 12 sparse blocks first (SMLP.md check 9).
  auto a = fairseq_insert_layout(12, 12);
  QCOMPARE(int(a.size()), 24);
  for (int l = 0; l < 24; ++l) QCOMPARE(bool(a[size_t(l)]), l < 12);
  // N = 28, M = 12: D0 D1 S D2 S D3 S D4 S D5 S D6 S D7 D8 S D9 S D10 S D11 S D12 S D13 S D14..D27.
  std::string expected = "DDSDSDSDSDSDSDDSDSDSDSDSDS" + std::string(14, 'D');
  std::string got;
  for (bool s : fairseq_insert_layout(28, 12)) got += s ? 'S' : 'D';
  QCOMPARE(QString::fromStdString(got), QString::fromStdString(expected));
  // The config's layer placement follows the rule.
  const ModelConfig c = preset("smlp-0.8t");
  QCOMPARE(c.num_layers, int64_t(40));
  std::string from_config;
  for (int64_t l = 0; l < c.num_layers; ++l) from_config += c.is_moe_layer(l) ? 'S' : 'D';
  QCOMPARE(QString::fromStdString(from_config), QString::fromStdString(expected));
  // The demo: 4 dense + 2 sparse -> inserts at 4 div 3 = 1 and 8 div 3 = 2: D S S D D D.
  std::string demo;
  const ModelConfig d = preset("smlp-demo");
  for (int64_t l = 0; l < d.num_layers; ++l) demo += d.is_moe_layer(l) ? 'S' : 'D';
  QCOMPARE(QString::fromStdString(demo), QString("DSSDDD"));
}

void TestLm::configFamilyAndValidation() {
  // Round trip through JSON keeps the family and the LM fields.
  const ModelConfig c = preset("smlp-partial-demo");
  const ModelConfig back = config_from_json_text(config_to_json_text(c));
  QVERIFY(back.is_decoder());
  QVERIFY(back.smoe_routing == SmoeRouting::Partial);
  QCOMPARE(back.smoe_prefix_fraction, 0.2);
  QVERIFY(back.moe_layout == Layout::FairseqInsert);
  QCOMPARE(back.routing_prefix(), int64_t(12));
  // Encoder configs say their family and still load without it.
  QVERIFY(!config_from_json_text(R"({"preset": "demo"})").is_decoder());
  QVERIFY(QString::fromStdString(config_to_json_text(preset("demo"))).contains("\"family\": \"encoder\""));

  const std::vector<std::pair<std::string, std::string>> bad = {
      {R"({"family": "decoder"})", "unknown model family 'decoder' (known: encoder, decoder-lm)"},
      {R"({"preset": "demo", "smoe_routing": "deterministic"})", "needs family 'decoder-lm'"},
      {R"({"preset": "smlp-demo", "num_experts": 3})", "must divide d_ff / 2 = 256"},
      {R"({"preset": "smlp-demo", "d_ff": 511})", "'d_ff' = 511: must be even"},
      {R"({"preset": "smlp-demo", "lm_mixing": "attention"})", "needs lm_mixing 'sgu'"},
      {R"({"preset": "smlp-demo", "moe_layers": 0})", "'moe_layers' = 0"},
      {R"({"preset": "smlp-partial-demo", "smoe_prefix_fraction": 1.5})", "'smoe_prefix_fraction' = 1.5: must be in (0, 1)"},
      {R"({"preset": "smlp-partial-demo", "smoe_prefix_fraction": 0.01})", "'smoe_prefix_fraction' = 0"},
      {R"({"preset": "smlp-demo", "smoe_routing": "sometimes"})", "unknown sMoE routing 'sometimes'"},
  };
  for (const auto& [json, mentions] : bad) {
    try {
      config_from_json_text(json);
      QFAIL(("accepted " + json).c_str());
    } catch (const ConfigError& e) {
      QVERIFY2(std::string(e.what()).find(mentions) != std::string::npos, e.what());
    }
  }
  // Each model refuses the other family's config.
  QVERIFY_EXCEPTION_THROWN(EncoderModel(preset("smlp-demo")), c10::Error);
  QVERIFY_EXCEPTION_THROWN(CausalLm(preset("demo")), c10::Error);
  // Presets: one table per family.
  const auto lm = lm_preset_names();
  for (const char* n : {"smlp-demo", "smlp-partial-demo", "gmlp-demo", "transformer-lm-demo"})
    QVERIFY(std::find(lm.begin(), lm.end(), n) != lm.end());
  for (const auto& n : preset_names()) QVERIFY(!preset(n).is_decoder());
}

void TestLm::moduleCostsMatchTable3() {
  // SMLP.md check 8 at n = 1024 against the paper's Table 3 (self-attn 4.198M / 12.885 GFLOPs,
  // SGU 1 head 1.054M / 4.316G, SGU 16 heads 16.798M).
  QCOMPARE(attention_parameter_count(1024), int64_t(4'198'400));
  QVERIFY(std::abs(attention_forward_flops(1024, 1024) / 12.885e9 - 1) < 0.005);
  QCOMPARE(sgu_parameter_count(4096, 1024), int64_t(1'053'696));
  QCOMPARE(sgu_parameter_count(4096, 1024, 16), int64_t(16'797'696));
  QVERIFY(std::abs(double(sgu_parameter_count(4096, 1024)) / 1.054e6 - 1) < 0.005);
  QVERIFY(std::abs(double(sgu_parameter_count(4096, 1024, 16)) / 16.798e6 - 1) < 0.005);
  const double sgu_flops = sgu_forward_flops(4096, 1024);
  QCOMPARE(sgu_flops, 4'294'967'296.0);
  QVERIFY2(std::abs(sgu_flops / 4.316e9 - 1) < 0.005, qPrintable(QString::number(sgu_flops / 4.316e9 - 1)));
  // The module itself has that many parameters.
  SpatialGatingUnit sgu(4096, 1024, 1e-5);
  QCOMPARE(count_parameters(sgu), int64_t(1'053'696));
  // Deterministic sMoE at n = 64, E = 4: E·(n² + n) = 16,640 spatial parameters (check 3).
  SparseGatingUnit smoe(512, 64, 4, SmoeRouting::Deterministic, 0, 1e-5, 0.02);
  QCOMPARE(smoe.w.numel() + smoe.b.numel(), int64_t(16'640));
}

void TestLm::parameterCountsMatchModules_data() {
  QTest::addColumn<QString>("name");
  for (const auto& n : lm_preset_names()) QTest::newRow(n.c_str()) << QString::fromStdString(n);
}

void TestLm::parameterCountsMatchModules() {
  QFETCH(QString, name);
  const ModelConfig c = lm_config(name);
  const ModelCost cost = model_cost(c);
  qInfo("%-20s %9.2fM parameters, %9.2fM active, %8.3f MFLOP/token forward", c.name.c_str(),
        double(cost.total_params) / 1e6, cost.active_params / 1e6, cost.forward_flops / double(c.max_seq_len) / 1e6);
  if (cost.total_params > 100'000'000) QSKIP("too large to instantiate in a unit test; count printed above");
  CausalLm model(c);
  QCOMPARE(count_parameters(*model), cost.total_params);
}

void TestLm::sguSlicesForShortInputs() {
  // The gpt-neox pitfall: S < n must use W[:S, :S] and b[:S]. Reference in double, by hand.
  torch::manual_seed(1);
  SpatialGatingUnit sgu(16, 12, 1e-5);
  scramble(sgu);
  for (int64_t S : {12, 7, 1}) {
    auto z = torch::randn({2, S, 16});
    auto y = sgu.forward(z, {});
    QCOMPARE(y.sizes().vec(), (std::vector<int64_t>{2, S, 8}));
    auto zd = z.to(torch::kDouble);
    auto z1 = zd.narrow(2, 0, 8), z2 = zd.narrow(2, 8, 8);
    auto mean = z2.mean(-1, true), var = z2.var(-1, false, true);
    auto ln = (z2 - mean) / torch::sqrt(var + 1e-5);  // LayerNorm at init: weight 1, bias 0
    auto W = torch::zeros({S, S}, torch::kDouble);
    for (int64_t i = 0; i < S; ++i)
      for (int64_t j = 0; j <= i; ++j) W[i][j] = sgu.w[i][j].item<double>();
    auto ref = z1 * (torch::matmul(W, ln) + sgu.b.narrow(0, 0, S).to(torch::kDouble).view({1, S, 1}));
    QVERIFY2(max_abs_diff(y, ref) < 1e-5, qPrintable(QString::number(max_abs_diff(y, ref))));
  }
}

void TestLm::deterministicChannelsToExperts() {
  torch::manual_seed(2);
  const int64_t C = 256, E = 4;
  SparseGatingUnit smoe(2 * C, 64, E, SmoeRouting::Deterministic, 0, 1e-5, 0.02);
  scramble(smoe);
  auto experts = smoe.channel_experts();
  for (int64_t c = 0; c < C; ++c) QCOMPARE(experts[c].item<int64_t>(), c * E / C);
  // For any input, changing expert j's W_j changes exactly the channels floor(c·E/C) = j.
  for (int trial = 0; trial < 2; ++trial) {
    auto z = torch::randn({2, 64, 2 * C}) * (trial + 1);
    auto before = smoe.forward(z, {});
    for (int64_t j = 0; j < E; ++j) {
      torch::Tensor saved = smoe.w[j].clone();
      {
        torch::NoGradGuard g;
        smoe.w[j].add_(torch::randn({64, 64}));
      }
      auto changed = (smoe.forward(z, {}) - before).abs().amax({0, 1}).gt(1e-6);  // [C]
      QVERIFY(torch::equal(changed, experts.eq(j)));
      torch::NoGradGuard g;
      smoe.w[j].copy_(saved);
    }
    QVERIFY(torch::equal(smoe.last_routing.expert, experts));
  }
}

void TestLm::deterministicOneExpertEqualsDenseSgu() {
  torch::manual_seed(3);
  SpatialGatingUnit dense(512, 64, 1e-5);
  SparseGatingUnit one(512, 64, 1, SmoeRouting::Deterministic, 0, 1e-5, 0.02);
  scramble(dense);
  {
    torch::NoGradGuard g;
    one.w[0].copy_(dense.w);
    one.b[0].copy_(dense.b);
    one.norm->weight.normal_();
    dense.norm->weight.copy_(one.norm->weight);
  }
  for (int64_t S : {64, 33}) {
    auto z = torch::randn({3, S, 512});
    QVERIFY(torch::equal(one.forward(z, {}), dense.forward(z, {})));  // bitwise
  }
}

void TestLm::causality_data() {
  add_causal_rows();
  QTest::newRow("smlp-learned-demo (leaks)") << "smlp-learned-demo";
}

void TestLm::causality() {
  // Check 1: perturb tokens after t = 31 (n = 64): outputs at positions <= t move by <= 1e-6.
  QFETCH(QString, name);
  torch::manual_seed(4);
  CausalLm model(lm_config(name));
  scramble(*model);
  model->eval();
  torch::NoGradGuard g;
  const int64_t t = 31, V = model->config().vocab_size;
  auto ids = torch::randint(V, {2, 64}, torch::kLong);
  auto other = ids.clone();
  other.narrow(1, t + 1, 64 - t - 1).copy_(torch::randint(V, {2, 64 - t - 1}, torch::kLong));
  auto a = model->forward(ids).logits, b = model->forward(other).logits;  // [2, 64, V]
  const double past = max_abs_diff(a.narrow(1, 0, t + 1), b.narrow(1, 0, t + 1));
  const double future = max_abs_diff(a.narrow(1, t + 1, 64 - t - 1), b.narrow(1, t + 1, 64 - t - 1));
  qInfo("%s: max change at positions <= %lld: %.3g; after: %.3g", qPrintable(name), (long long)t, past, future);
  QVERIFY(future > 1e-3);  // the perturbation is visible at all
  if (model->config().smoe_routing == SmoeRouting::Learned)
    QVERIFY2(past > 1e-3, "the learned sMoE reads future tokens; causality must fail for it");
  else
    QVERIFY2(past <= 1e-6, qPrintable(QString::number(past)));
}

void TestLm::teacherForcedEqualsTokenByToken_data() {
  add_causal_rows();
  QTest::newRow("smlp-learned-demo (leaks)") << "smlp-learned-demo";
}

void TestLm::teacherForcedEqualsTokenByToken() {
  // Check 2: the teacher-forced NLL (one pass) equals the NLL of predicting each token from its prefix
  // alone, within 1e-4 relative. The leaky variant's teacher-forced NLL differs (the leak demo).
  QFETCH(QString, name);
  torch::manual_seed(5);
  CausalLm model(lm_config(name));
  scramble(*model);
  model->eval();
  const int64_t V = model->config().vocab_size;
  LmBatch batch{torch::randint(V, {2, 64}, torch::kLong), {}};
  double tf = 0;
  int64_t tf_count = 0;
  {
    torch::NoGradGuard g;
    auto L = model->lm_losses(batch);
    tf = L.nll_sum.item<double>();
    tf_count = L.targets.item<int64_t>();
  }
  auto [inc, inc_count] = token_by_token_nll(model, batch);
  qInfo("%s: teacher-forced NLL %.6f, token-by-token %.6f over %lld targets", qPrintable(name), tf / double(tf_count),
        inc / double(inc_count), (long long)inc_count);
  QCOMPARE(inc_count, tf_count);
  QCOMPARE(tf_count, int64_t(2 * (63 - model->config().routing_prefix())));
  const double rel = std::abs(tf - inc) / std::abs(inc);
  if (model->config().smoe_routing == SmoeRouting::Learned)  // fails the 1e-4 check (2e-4 untrained)
    QVERIFY2(rel > 1e-4, qPrintable(QString::number(rel)));
  else
    QVERIFY2(rel < 1e-4, qPrintable(QString::number(rel)));
}

void TestLm::partialPrediction() {
  // Check 4: p = floor(0.2·n) = 12 at n = 64 (204 at 1024); router input [B, 256, 12]; tokens >= p never
  // change routing; the loss counts the n-1-p = 51 targets after the prefix.
  QCOMPARE(partial_prefix_length(64, 0.2), int64_t(12));
  QCOMPARE(partial_prefix_length(1024, 0.2), int64_t(204));
  torch::manual_seed(6);
  CausalLm model(preset("smlp-partial-demo"));
  QCOMPARE(model->config().routing_prefix(), int64_t(12));
  QCOMPARE(model->first_scored_target(), int64_t(13));
  scramble(*model);
  model->eval();
  torch::NoGradGuard g;
  const int64_t V = model->config().vocab_size, B = 3;
  auto ids = torch::randint(V, {B, 64}, torch::kLong);
  auto routings = [&](const torch::Tensor& x) {
    model->forward(x);
    std::vector<SmoeDecision> r;
    for (auto& block : model->blocks)
      if (block->gated && block->gated->sparse) r.push_back(block->gated->sparse->last_routing);
    return r;
  };
  auto a = routings(ids);
  QCOMPARE(int(a.size()), 2);
  for (const auto& r : a) QCOMPARE(r.router_input_sizes, (std::vector<int64_t>{B, 256, 12}));
  auto other = ids.clone();
  other.narrow(1, 12, 52).copy_(torch::randint(V, {B, 52}, torch::kLong));
  auto b = routings(other);
  bool spread = false;
  for (size_t i = 0; i < a.size(); ++i) {
    QVERIFY(torch::equal(a[i].expert, b[i].expert));
    QVERIFY(max_abs_diff(a[i].probs, b[i].probs) < 1e-6);
    spread = spread || a[i].expert.min().item<int64_t>() != a[i].expert.max().item<int64_t>();
  }
  QVERIFY2(spread, "the scrambled router should use more than one expert");
  // A change inside the prefix does change routing.
  auto inside = ids.clone();
  inside.narrow(1, 0, 12).copy_(torch::randint(V, {B, 12}, torch::kLong));
  auto c = routings(inside);
  QVERIFY(!torch::equal(a[0].expert, c[0].expert) || max_abs_diff(a[0].probs, c[0].probs) > 0);
  // The loss counts exactly the targets after the prefix: tokens 13..63, predicted from positions 12..62.
  auto L = model->lm_losses({ids, {}});
  QCOMPARE(L.targets.item<int64_t>(), B * 51);
  auto logits = model->forward(ids).logits;  // [B, 64, V]
  auto nll = torch::nn::functional::cross_entropy(logits.narrow(1, 12, 51).reshape({-1, V}),
                                                  ids.narrow(1, 13, 51).reshape({-1}),
                                                  torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
  QVERIFY(std::abs(L.nll_sum.item<double>() / nll.item<double>() - 1) < 1e-5);
  // A loss mask removes targets further.
  auto mask = torch::ones({B, 64}, torch::kLong);
  mask.narrow(1, 60, 4).zero_();
  QCOMPARE(model->lm_losses({ids, mask}).targets.item<int64_t>(), B * 47);
}

void TestLm::untrainedPerplexity_data() {
  add_causal_rows();
}

void TestLm::untrainedPerplexity() {
  // Check 9: an untrained model's perplexity on random tokens is within [0.5 V, 2 V].
  QFETCH(QString, name);
  torch::manual_seed(7);
  CausalLm model(lm_config(name));
  model->eval();
  torch::NoGradGuard g;
  const int64_t V = model->config().vocab_size;
  auto L = model->lm_losses({torch::randint(V, {4, 64}, torch::kLong), {}});
  const double ppl = std::exp(L.nll.item<double>());
  qInfo("%s: untrained perplexity %.1f (V = %lld)", qPrintable(name), ppl, (long long)V);
  QVERIFY(ppl >= 0.5 * double(V) && ppl <= 2.0 * double(V));
}

void TestLm::trainingStepsLowerTheLoss() {
  // Gradients reach every kind of block: a few Adam steps on one batch lower its loss.
  for (const char* name : {"smlp-demo", "smlp-partial-demo", "transformer-lm-demo", "gshard-lm-demo", "hash-lm-demo"}) {
    torch::manual_seed(8);
    CausalLm model(preset(name));
    model->train();
    torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(3e-3).betas({0.9, 0.98}));
    LmBatch batch{torch::randint(200, {4, 64}, torch::kLong), {}};
    double first = 0, last = 0;
    for (int step = 0; step < 12; ++step) {
      auto L = model->lm_losses(batch);
      opt.zero_grad();
      L.total.backward();
      opt.step();
      (step == 0 ? first : last) = L.nll.item<double>();
    }
    qInfo("%s: NLL %.3f -> %.3f after 12 steps", name, first, last);
    QVERIFY2(last < first - 0.5, name);
  }
}

void TestLm::routerDemosMatchSmlpFlops() {
  // Issue 16: the baselines' demo presets are Transformer-MoE LMs with the named router, cut to about
  // the sMLP demo's forward FLOPs per token; the sMLP demo's own feature MoE is routed by BASE layers.
  const ModelConfig smlp = preset("smlp-demo");
  QCOMPARE(smlp.router.kind, RouterKind::Base);
  const double target = model_cost(smlp).forward_flops;
  const std::pair<const char*, RouterKind> demos[] = {{"switch-lm-demo", RouterKind::Switch},
                                                      {"gshard-lm-demo", RouterKind::GShard},
                                                      {"base-lm-demo", RouterKind::Base},
                                                      {"hash-lm-demo", RouterKind::Hash}};
  for (const auto& [name, kind] : demos) {
    const ModelConfig c = preset(name);
    QCOMPARE(c.router.kind, kind);
    QCOMPARE(c.lm_mixing, LmMixing::Attention);
    QCOMPARE(c.moe_layer_count(), int64_t(2));
    const double ratio = model_cost(c).forward_flops / target;
    qInfo("%-16s forward FLOPs %.3f x the sMLP demo's", name, ratio);
    QVERIFY2(ratio > 0.88 && ratio < 1.12, name);
  }
  // Switch and GShard put a sparse block every other layer; BASE and HASH as fairseq inserts them.
  const ModelConfig sw = preset("switch-lm-demo"), base = preset("base-lm-demo");
  QVERIFY(sw.is_moe_layer(0) && !sw.is_moe_layer(1) && sw.is_moe_layer(2) && !sw.is_moe_layer(3));
  QVERIFY(base.is_moe_layer(0) && base.is_moe_layer(1) && !base.is_moe_layer(2));
}

void TestLm::hashLmRoutesByTokenId() {
  // SMLP.md check 5: in a Hash LM the same id goes to the same expert at every position and depth:
  // the table's entry for it.
  torch::manual_seed(9);
  CausalLm model(preset("hash-lm-demo"));
  model->eval();
  torch::NoGradGuard g;
  auto ids = torch::randint(50, {2, 64}, torch::kLong);  // few distinct ids: each recurs
  model->forward(ids);
  const auto layers = model->moe_layers();
  QCOMPARE(int(layers.size()), 2);
  for (const auto& [layer, moe] : layers) {
    const auto& d = moe->last_decision;
    const int64_t G = d.dispatch.size(0), E = d.dispatch.size(1), C = d.dispatch.size(2), Tg = d.probs.size(1);
    std::vector<int64_t> expert_of(static_cast<size_t>(G * Tg), -1);
    auto acc = d.dispatch.accessor<int64_t, 3>();
    for (int64_t gi = 0; gi < G; ++gi)
      for (int64_t e = 0; e < E; ++e)
        for (int64_t c = 0; c < C; ++c)
          if (acc[gi][e][c] < Tg) expert_of[static_cast<size_t>(gi * Tg + acc[gi][e][c])] = e;
    auto table = moe->router->hash_table;
    auto flat = ids.reshape({-1});
    for (int64_t i = 0; i < flat.size(0); ++i)
      QCOMPARE(expert_of[static_cast<size_t>(i)], table[flat[i].item<int64_t>()].item<int64_t>());
  }
  // One table for every depth.
  QVERIFY(torch::equal(layers[0].second->router->hash_table, layers[1].second->router->hash_table));
}

QTEST_APPLESS_MAIN(TestLm)
