#include "tst_reference.h"

#include <QtTest>
#include <cmath>
#include <map>
#include <set>

#include "model/config/cost.h"
#include "model/nn/encoder.h"
#include "model/nn/init.h"
#include "model/nn/routing.h"
#include "tests/engine/routing_fixtures.h"

using namespace smx;
using smx::test::probs_of;
using smx::test::slots_of;

namespace {
// (token, expert) -> combine weight of group 0, for the first `real` tokens.
std::map<std::pair<int64_t, int64_t>, float> assignments(const RoutingDecision& d, int64_t real) {
  std::map<std::pair<int64_t, int64_t>, float> m;
  const auto dispatch = d.dispatch.to(torch::kCPU);
  const auto combine = d.combine.to(torch::kCPU);
  for (int64_t e = 0; e < dispatch.size(1); ++e)
    for (int64_t c = 0; c < dispatch.size(2); ++c) {
      const auto t = dispatch[0][e][c].item<int64_t>();
      if (t < real) m[{t, e}] = combine[0][e][c].item<float>();
    }
  return m;
}
}  // namespace

void TestReference::geluIsTanhApproximation() {
  // flax nn.gelu (approximate=True): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
  auto x = torch::linspace(-6.0, 6.0, 241, torch::kDouble);
  auto want = 0.5 * x * (1 + torch::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x.pow(3))));
  QVERIFY((gelu_tanh(x) - want).abs().max().item<double>() < 1e-12);
  // Hand values: gelu_tanh(1) = 0.8411920, erf GELU(1) = 0.8413447; they differ in the 4th digit.
  QVERIFY(std::abs(gelu_tanh(torch::ones({1}, torch::kDouble)).item<double>() - 0.841191990) < 1e-8);
  QVERIFY(std::abs(torch::gelu(torch::ones({1}, torch::kDouble)).item<double>() - 0.841191990) > 1e-4);
  // The MLP uses it: FeedForward(x) = out(gelu_tanh(in(x))) with dropout off.
  torch::manual_seed(11);
  FeedForward ff(4, 8, 0.0, 0.5);
  ff->eval();
  auto h = torch::randn({2, 3, 4});
  QVERIFY(torch::allclose(ff(h), ff->out(gelu_tanh(ff->in(h))), 1e-6, 1e-7));
  QVERIFY(!torch::allclose(ff(h), ff->out(torch::gelu(ff->in(h))), 1e-6, 1e-7));
}

void TestReference::capacityRoundsHalfToEven_data() {
  QTest::addColumn<int>("tokens");
  QTest::addColumn<int>("experts");
  QTest::addColumn<double>("cf");
  QTest::addColumn<int>("expected");
  // Python: max(round(cf * T / E), 1); round(x.5) goes to the even neighbour.
  QTest::newRow("2.5 -> 2") << 40 << 16 << 1.0 << 2;
  QTest::newRow("3.5 -> 4") << 56 << 16 << 1.0 << 4;
  QTest::newRow("0.5 -> 0, raised to 1") << 8 << 16 << 1.0 << 1;
  QTest::newRow("1.5 -> 2") << 24 << 16 << 1.0 << 2;
  QTest::newRow("12.5 -> 12") << 100 << 8 << 1.0 << 12;
  QTest::newRow("cf 0.5: 6.5 -> 6") << 208 << 16 << 0.5 << 6;
  QTest::newRow("cf 1.25: 2.5 -> 2") << 32 << 16 << 1.25 << 2;
  QTest::newRow("2.4 -> 2") << 12 << 5 << 1.0 << 2;
  QTest::newRow("2.6 -> 3") << 13 << 5 << 1.0 << 3;
}

void TestReference::capacityRoundsHalfToEven() {
  QFETCH(int, tokens);
  QFETCH(int, experts);
  QFETCH(double, cf);
  QFETCH(int, expected);
  QCOMPARE(expert_capacity(tokens, experts, cf, 1), int64_t(expected));
  // The per-group capacity of a padded group follows the same rule, on the device.
  auto mask = torch::zeros({1, tokens + 7}, torch::kLong);
  mask.narrow(1, 0, tokens).fill_(1);
  QCOMPARE(token_mask(mask, experts, cf, 1).group_capacity[0].item<int64_t>(), int64_t(expected));
}

void TestReference::tokensChooseTiesGoToLowerExpert() {
  // A uniform row: the reference's top_k takes expert 0, then 1.
  auto uniform = probs_of({{0.25f, 0.25f, 0.25f, 0.25f}});
  auto d = route_tokens_choose(uniform, 2, 1, true);
  QCOMPARE(d.wanted[0][0][0].item<int64_t>(), int64_t(0));
  QCOMPARE(d.wanted[0][0][1].item<int64_t>(), int64_t(1));
  QCOMPARE(slots_of(d, 0, 0), std::vector<int64_t>{0});
  QCOMPARE(slots_of(d, 0, 1), std::vector<int64_t>{0});
  // A tie between experts 1 and 3 behind a clear first choice.
  auto tied = probs_of({{0.1f, 0.3f, 0.3f, 0.3f}, {0.4f, 0.1f, 0.4f, 0.1f}});
  auto t = route_tokens_choose(tied, 2, 2, true);
  QCOMPARE(t.wanted[0][0][0].item<int64_t>(), int64_t(1));
  QCOMPARE(t.wanted[0][0][1].item<int64_t>(), int64_t(2));
  QCOMPARE(t.wanted[0][1][0].item<int64_t>(), int64_t(0));
  QCOMPARE(t.wanted[0][1][1].item<int64_t>(), int64_t(2));
}

void TestReference::batchPrioritizedSortIsStable() {
  // Eight saturated tokens (probability 1.0 for expert 0), capacity 3: with a
  // stable sort they keep sequence order, so tokens 0, 1, 2 get the slots.
  std::vector<std::vector<float>> rows(8, {1.0f, 0.0f});
  rows[5] = {0.0f, 1.0f};
  auto d = route_tokens_choose(probs_of(rows), 1, 3, true);
  QCOMPARE(slots_of(d, 0, 0), (std::vector<int64_t>{0, 1, 2}));
  QCOMPARE(slots_of(d, 0, 1), std::vector<int64_t>{5});
  // Equal top-1 probabilities behind a more confident token: it goes first,
  // the equal ones follow in sequence order.
  auto mixed = probs_of({{0.6f, 0.4f}, {0.6f, 0.4f}, {0.9f, 0.1f}, {0.6f, 0.4f}});
  auto m = route_tokens_choose(mixed, 1, 3, true);
  QCOMPARE(slots_of(m, 0, 0), (std::vector<int64_t>{2, 0, 1}));
}

void TestReference::expertsChooseTiesGoToEarlierTokens() {
  // A uniform group of 8 tokens, capacity 3: each expert takes tokens 0, 1, 2.
  auto uniform = torch::full({1, 8, 2}, 0.5f);
  auto d = route_experts_choose(uniform, 3);
  QCOMPARE(slots_of(d, 0, 0), (std::vector<int64_t>{0, 1, 2}));
  QCOMPARE(slots_of(d, 0, 1), (std::vector<int64_t>{0, 1, 2}));
  // Ties after a clear favourite: token 4 first, then the earliest of the tied.
  auto p = probs_of({{0.3f, 0.7f}, {0.3f, 0.7f}, {0.3f, 0.7f}, {0.3f, 0.7f}, {0.9f, 0.1f}});
  auto e = route_experts_choose(p, 2);
  QCOMPARE(slots_of(e, 0, 0), (std::vector<int64_t>{4, 0}));
  QCOMPARE(slots_of(e, 0, 1), (std::vector<int64_t>{0, 1}));
}

void TestReference::bfloat16RouterOption() {
  torch::manual_seed(5);
  RouterConfig rc;
  rc.kind = RouterKind::TokensChoose;
  rc.min_capacity = 1;
  Router f32(8, 4, rc, 0.5);
  rc.precision = RouterPrecision::BFloat16;
  Router bf16(8, 4, rc, 0.5);
  bf16->dense->weight.data().copy_(f32->dense->weight.data());
  bf16->dense->bias.data().copy_(f32->dense->bias.data());
  auto x = torch::randn({2, 16, 8});
  auto a = f32(x, 16), b = bf16(x, 16);
  // Logits: bf16(bf16(x) . bf16(W)^T + bf16(b)) computed independently in double.
  auto round = [](const torch::Tensor& t) { return t.to(torch::kBFloat16).to(torch::kDouble); };
  auto want = round((round(x).matmul(round(f32->dense->weight).t()) + round(f32->dense->bias)));
  // At most one bf16 step apart (2^-7 relative): float32 and double sums may round to neighbours.
  QVERIFY((b.logits.to(torch::kDouble) - want).abs().le(want.abs() / 128 + 1e-6).all().item<bool>());
  QVERIFY(b.logits.to(torch::kBFloat16).to(torch::kFloat).equal(b.logits));  // bf16 values
  QVERIFY(b.probs.to(torch::kBFloat16).to(torch::kFloat).equal(b.probs));
  QVERIFY(!a.probs.to(torch::kBFloat16).to(torch::kFloat).equal(a.probs));   // float32 by default
  QVERIFY((a.probs - b.probs).abs().max().item<float>() < 2e-2f);
  // JSON names.
  QCOMPARE(to_string(RouterPrecision::BFloat16), std::string("bfloat16"));
  ModelConfig c = config_from_json_text(R"({"preset": "demo", "router": {"precision": "bfloat16"}})");
  QVERIFY(c.router.precision == RouterPrecision::BFloat16);
  QVERIFY(preset("demo").router.precision == RouterPrecision::Float32);
  bool refused = false;
  try {
    config_from_json_text(R"({"preset": "demo", "router": {"precision": "fp8"}})");
  } catch (const ConfigError& e) {
    refused = QString(e.what()).contains("fp8") && QString(e.what()).contains("bfloat16");
  }
  QVERIFY(refused);
}

void TestReference::routerConfidenceIsMeanKeptProbability() {
  // Tokens Choose top-1, capacity 1: token 0 (0.9) and token 2 (0.7) are kept,
  // token 1 (0.8 for expert 0) loses to token 0. Confidence = (0.9 + 0.7) / 2.
  auto probs = probs_of({{0.9f, 0.1f}, {0.8f, 0.2f}, {0.3f, 0.7f}});
  auto d = route_tokens_choose(probs, 1, 1, true);
  d.z_loss = torch::zeros({});
  QVERIFY(std::abs(summarize(d).router_confidence - 0.8) < 1e-6);
  // Experts Choose, capacity 1: expert 0 takes token 0 (0.9), expert 1 token 2 (0.7).
  auto e = route_experts_choose(probs, 1);
  e.z_loss = torch::zeros({});
  QVERIFY(std::abs(summarize(e).router_confidence - 0.8) < 1e-6);
}

void TestReference::paddingClaimsNoCapacity() {
  // Three real tokens and two pads that would out-rank them all.
  auto probs = probs_of({{0.6f, 0.4f}, {0.7f, 0.3f}, {0.55f, 0.45f}, {0.99f, 0.01f}, {0.98f, 0.02f}});
  auto mask = torch::tensor({1, 1, 1, 0, 0}, torch::kLong).view({1, 5});
  const TokenMask m = token_mask(mask, 2, 1.0, 1);
  QCOMPARE(m.group_capacity[0].item<int64_t>(), int64_t(2));  // round(1.0 * 3 / 2) = 2 (half to even)
  auto tc = route_tokens_choose(probs, 1, expert_capacity(5, 2, 1.0, 1), true, m);
  QCOMPARE(slots_of(tc, 0, 0), (std::vector<int64_t>{1, 0}));  // pads claim nothing; capacity 2 of real tokens
  auto ec = route_experts_choose(probs, expert_capacity(5, 2, 1.0, 1), m);
  QCOMPARE(slots_of(ec, 0, 0), (std::vector<int64_t>{1, 0}));
  QCOMPARE(slots_of(ec, 0, 1), (std::vector<int64_t>{2, 0}));
  // Losses and statistics count real tokens only.
  auto real = route_tokens_choose(probs.narrow(1, 0, 3), 1, 2, true);
  QVERIFY(std::abs(tc.load_balancing_loss.item<double>() - real.load_balancing_loss.item<double>()) < 1e-6);
  auto logits = torch::log(probs);
  QVERIFY(std::abs(router_z_loss(logits, m.valid).item<double>() - router_z_loss(logits.narrow(1, 0, 3)).item<double>()) < 1e-6);
  tc.z_loss = real.z_loss = torch::zeros({});
  const auto s = summarize(tc), r = summarize(real);
  QCOMPARE(s.real_tokens, int64_t(3));
  QCOMPARE(s.experts_per_token, r.experts_per_token);
  QCOMPARE(s.dropped_choices, r.dropped_choices);
  QCOMPARE(s.capacity, r.capacity);
  QVERIFY(std::abs(s.router_entropy - r.router_entropy) < 1e-6);
  QCOMPARE(s.fill, r.fill);
}

void TestReference::paddingIsInert_data() {
  QTest::addColumn<QString>("mixing");
  QTest::addColumn<QString>("router");
  for (const char* mixing : {"attention", "linear", "fourier", "hartley", "circulant", "toeplitz"})
    for (const char* router : {"tokens-choose", "experts-choose"})
      QTest::addRow("%s, %s", mixing, router) << mixing << router;
}

void TestReference::paddingIsInert() {
  QFETCH(QString, mixing);
  QFETCH(QString, router);
  ModelConfig c;
  c.name = "padding";
  c.vocab_size = 50;
  c.max_seq_len = 128;
  c.d_model = 16;
  c.d_ff = 32;
  c.num_heads = 2;
  c.num_layers = 4;
  const bool all_attention = mixing == "attention";
  c.mixing = all_attention ? MixingKind::Linear : mixing_kind_from_string(mixing.toStdString());
  c.attention_layers = all_attention ? 4 : 1;  // a mixing model keeps one attention layer on top
  c.moe_layers = 2;
  c.moe_layout = Layout::Middle;
  c.num_experts = 4;
  c.router.kind = router_kind_from_string(router.toStdString());
  c.router.top_k = 2;
  c.router.train_capacity_factor = c.router.eval_capacity_factor = 0.75;  // capacity binds: tokens compete
  c.router.min_capacity = 1;
  c.init_std = 0.3;  // confident routers and large mixing weights: any leak shows
  c.dropout = c.expert_dropout = 0.0;
  torch::manual_seed(21);
  EncoderModel model(c);
  model->eval();
  torch::NoGradGuard no_grad;

  const int64_t S = 13;
  auto ids = torch::randint(5, c.vocab_size, {1, S}, torch::kLong);
  ids[0][0] = 2;  // [CLS]
  auto run = [&](int64_t pad) {
    auto padded_ids = torch::cat({ids, torch::zeros({1, pad}, torch::kLong)}, 1);  // [PAD] = 0
    auto mask = torch::cat({torch::ones({1, S}, torch::kLong), torch::zeros({1, pad}, torch::kLong)}, 1);
    auto out = model->forward(padded_ids, torch::Tensor(), pad > 0 ? mask : torch::Tensor());
    std::vector<std::map<std::pair<int64_t, int64_t>, float>> routes;
    for (auto& [l, moe] : model->moe_layers()) routes.push_back(assignments(moe->last_decision, S));
    return std::make_pair(out.hidden.narrow(1, 0, S).clone(), routes);
  };
  const auto [base_hidden, base_routes] = run(0);
  bool some_expert_full = false;
  for (const auto& r : base_routes) some_expert_full |= int64_t(r.size()) < 2 * S;  // top-2 or cf 0.75 drops some
  QVERIFY2(some_expert_full, "the capacity must bind for this test to mean anything");
  for (int64_t pad : {1, 7, 100}) {
    const auto [hidden, routes] = run(pad);
    const double diff = (hidden - base_hidden).abs().max().item<double>();
    QVERIFY2(diff <= 1e-5, qPrintable(QString("padding %1: real tokens' hidden states moved by %2").arg(pad).arg(diff)));
    QCOMPARE(routes.size(), base_routes.size());
    for (size_t l = 0; l < routes.size(); ++l) {
      QCOMPARE(routes[l].size(), base_routes[l].size());
      for (const auto& [key, weight] : base_routes[l]) {
        auto it = routes[l].find(key);
        QVERIFY2(it != routes[l].end(), qPrintable(QString("padding %1: token %2 lost expert %3")
                                                         .arg(pad).arg(key.first).arg(key.second)));
        QVERIFY(std::abs(it->second - weight) < 1e-5f);
      }
    }
  }
}

QTEST_APPLESS_MAIN(TestReference)
