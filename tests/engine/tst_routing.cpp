#include "tst_routing.h"

#include <QtTest>
#include <cmath>
#include <set>

#include "model/config/cost.h"
#include "model/nn/encoder.h"
#include "model/nn/moe.h"
#include "model/nn/routing.h"
#include "tests/engine/routing_fixtures.h"

using namespace smx;
using smx::test::probs_of;

namespace {
std::set<int64_t> tokens_of(const RoutingDecision& d, int64_t g, int64_t e) {
  std::set<int64_t> s;
  const int64_t T = d.probs.size(1);
  for (int64_t c = 0; c < d.capacity; ++c) {
    const auto t = d.dispatch[g][e][c].item<int64_t>();
    if (t < T) s.insert(t);
  }
  return s;
}
RouterConfig router_config(RouterKind kind, double cf, int64_t top_k = 1) {
  RouterConfig r;
  r.kind = kind;
  r.train_capacity_factor = r.eval_capacity_factor = cf;
  r.top_k = top_k;
  r.min_capacity = 1;
  return r;
}
}  // namespace

void TestRouting::groupsAndCapacity() {
  QCOMPARE(routing_group_count(3 * 4096, 4096), int64_t(3));
  QCOMPARE(routing_group_count(5000, 4096), int64_t(1));  // smallest n >= 1 dividing 5000
  QCOMPARE(routing_group_count(100, 30), int64_t(4));     // 100 div 30 = 3 does not divide 100
  QCOMPARE(expert_capacity(1024, 16, 1.0, 4), int64_t(64));
  QCOMPARE(expert_capacity(1024, 16, 0.5, 4), int64_t(32));
  QCOMPARE(expert_capacity(40, 16, 1.0, 4), int64_t(4));   // round(2.5) -> 3, raised to the minimum 4
  QCOMPARE(expert_capacity(3, 16, 1.0, 4), int64_t(3));    // never more than the group
}

void TestRouting::expertsChooseFillsCapacityWithTopTokens() {
  torch::manual_seed(1);
  const int64_t G = 3, T = 32, E = 4, C = 5;
  auto probs = torch::softmax(torch::randn({G, T, E}), -1);
  auto d = route_experts_choose(probs, C);
  QCOMPARE(d.dispatch.sizes().vec(), (std::vector<int64_t>{G, E, C}));
  QVERIFY(d.dispatch.lt(T).all().item<bool>());  // every slot of every expert is taken
  for (int64_t g = 0; g < G; ++g)
    for (int64_t e = 0; e < E; ++e) {
      auto expected = std::get<1>(probs[g].select(1, e).sort(0, true)).narrow(0, 0, C);
      std::set<int64_t> want;
      for (int64_t c = 0; c < C; ++c) want.insert(expected[c].item<int64_t>());
      QCOMPARE(tokens_of(d, g, e), want);
      for (int64_t c = 0; c < C; ++c)  // weight = the expert's probability of that token
        QCOMPARE(d.combine[g][e][c].item<float>(), probs[g][d.dispatch[g][e][c].item<int64_t>()][e].item<float>());
    }
  // Through the layer: every expert gets exactly its capacity in every group.
  Moe moe(8, 16, E, router_config(RouterKind::ExpertsChoose, 1.0), 0.0, 0.02);
  moe->eval();
  moe(torch::randn({2, 48, 8}));
  const auto s = summarize(moe->last_decision);
  QCOMPARE(s.capacity, int64_t(24));  // 96 tokens / 4 experts
  for (auto n : s.tokens_per_expert) QCOMPARE(n, s.groups * s.capacity);
}

void TestRouting::tokensChooseNeverExceedsCapacity() {
  torch::manual_seed(2);
  const int64_t G = 2, T = 40, E = 4, C = 6;
  // Skewed router: most tokens want expert 0, so it must drop some.
  auto logits = torch::randn({G, T, E});
  logits.select(2, 0).add_(2.0);
  auto probs = torch::softmax(logits, -1);
  auto d = route_tokens_choose(probs, 2, C, true);
  for (int64_t g = 0; g < G; ++g)
    for (int64_t e = 0; e < E; ++e) {
      const auto toks = tokens_of(d, g, e);
      QVERIFY(int64_t(toks.size()) <= C);
      int64_t filled = 0;
      for (int64_t c = 0; c < C; ++c) filled += d.dispatch[g][e][c].item<int64_t>() < T;
      QCOMPARE(int64_t(toks.size()), filled);  // no token twice in one expert
      for (auto t : toks) {                    // a token sits only where it asked to
        const auto wanted = d.wanted[g][t];
        QVERIFY(wanted.eq(e).any().item<bool>());
      }
    }
  QVERIFY(summarize(d).dropped_choices > 0);
}

void TestRouting::batchPrioritizedRoutingKeepsMostConfident() {
  // Five tokens all prefer expert 0 with different confidence; capacity 2.
  auto probs = probs_of({{0.55f, 0.45f}, {0.9f, 0.1f}, {0.6f, 0.4f}, {0.95f, 0.05f}, {0.7f, 0.3f}});
  auto bpr = route_tokens_choose(probs, 1, 2, true);
  QCOMPARE(tokens_of(bpr, 0, 0), (std::set<int64_t>{1, 3}));  // the two most confident
  auto in_order = route_tokens_choose(probs, 1, 2, false);
  QCOMPARE(tokens_of(in_order, 0, 0), (std::set<int64_t>{0, 1}));  // first come, first served
  QCOMPARE(tokens_of(bpr, 0, 1), std::set<int64_t>{});
}

void TestRouting::topOneChoicesPlacedBeforeTopTwo() {
  // Token 0 is the most confident and wants expert 1 second; token 1 wants
  // expert 1 first. With capacity 1, token 1's top-1 choice wins.
  auto probs = probs_of({{0.9f, 0.08f, 0.02f}, {0.1f, 0.6f, 0.3f}, {0.2f, 0.1f, 0.7f}});
  auto d = route_tokens_choose(probs, 2, 1, true);
  QCOMPARE(tokens_of(d, 0, 1), (std::set<int64_t>{1}));
  QCOMPARE(tokens_of(d, 0, 0), (std::set<int64_t>{0}));
  QCOMPARE(tokens_of(d, 0, 2), (std::set<int64_t>{2}));
  QCOMPARE(d.combine[0][1][0].item<float>(), 0.6f);  // raw softmax probability as weight
}

void TestRouting::droppedTokensPassThroughResidual() {
  torch::manual_seed(3);
  ModelConfig c = preset("demo");
  c.moe_layers = 1;
  c.attention_layers = 0;
  c.num_layers = 1;
  c.num_experts = 4;
  c.router = router_config(RouterKind::TokensChoose, 0.25);
  c.dropout = c.expert_dropout = 0.0;
  Block block(c, 0);
  block->eval();
  auto in = torch::randn({2, 32, c.d_model});
  auto out = block(in, torch::Tensor()).y;  // [2, 32, D]

  const auto& d = block->moe->last_decision;
  const int64_t T = d.probs.size(1);
  auto taken = torch::zeros({d.probs.size(0), T + 1}, torch::kLong);
  taken.scatter_add_(1, d.dispatch.flatten(1), torch::ones_like(d.dispatch.flatten(1)));
  auto dropped = taken.narrow(1, 0, T).eq(0).reshape({2, 32});  // [B, S]
  QVERIFY2(dropped.sum().item<int64_t>() > 0, "capacity factor 0.25 must drop tokens");
  QVERIFY(dropped.logical_not().sum().item<int64_t>() > 0);

  // Dropped tokens: MoE output is zero, so the sum before the output LayerNorm
  // is the MoE's input x and the block output is LN(x).
  torch::NoGradGuard ng;
  auto x = block->mixing_norm(in + block->mixing->forward(in, torch::Tensor()));
  auto moe_out = block->moe(x).y;
  QVERIFY(moe_out.index({dropped}).abs().max().item<float>() == 0.0f);
  auto expected = block->output_norm(x);
  QVERIFY(torch::allclose(out.index({dropped}), expected.index({dropped}), 1e-5, 1e-6));
  QVERIFY(!torch::allclose(out.index({dropped.logical_not()}), expected.index({dropped.logical_not()}), 1e-5, 1e-6));
}

void TestRouting::auxLossesMatchFormulas() {
  // Both tokens choose expert 0: f = (1, 0), P = (0.65, 0.35);
  // loss = mean_e(f_e P_e) * E^2 = (0.65 / 2) * 4 = 1.3.
  auto probs = probs_of({{0.7f, 0.3f}, {0.6f, 0.4f}});
  auto d = route_tokens_choose(probs, 1, 2, true);
  QVERIFY(std::abs(d.load_balancing_loss.item<double>() - 1.3) < 1e-6);
  // Balanced choices: f = (0.5, 0.5), P = (0.55, 0.45): 0.25 * 4 = 1.0.
  auto balanced = route_tokens_choose(probs_of({{0.7f, 0.3f}, {0.4f, 0.6f}}), 1, 2, true);
  QVERIFY(std::abs(balanced.load_balancing_loss.item<double>() - 1.0) < 1e-6);

  // z-loss = mean over tokens of logsumexp(logits)^2, computed by hand in double.
  auto logits = torch::tensor({1.0f, 2.0f, 0.0f, 0.0f, -1.0f, 3.0f}).view({1, 3, 2});
  auto lse = [](double a, double b) { return std::log(std::exp(a) + std::exp(b)); };
  const double want = (std::pow(lse(1, 2), 2) + std::pow(lse(0, 0), 2) + std::pow(lse(-1, 3), 2)) / 3;
  QVERIFY(std::abs(router_z_loss(logits).item<double>() - want) < 1e-5);
  // Experts Choose has no balancing loss.
  QCOMPARE(route_experts_choose(probs, 1).load_balancing_loss.item<double>(), 0.0);
}

void TestRouting::trainAndEvalCapacityFactors() {
  RouterConfig rc = router_config(RouterKind::ExpertsChoose, 1.0);
  rc.eval_capacity_factor = 0.5;
  Moe moe(8, 16, 4, rc, 0.0, 0.02);
  auto x = torch::randn({1, 64, 8});
  moe->train();
  moe(x);
  QCOMPARE(moe->last_decision.capacity, int64_t(16));  // 1.0 * 64 / 4
  moe->eval();
  moe(x);
  QCOMPARE(moe->last_decision.capacity, int64_t(8));   // 0.5 * 64 / 4
  moe->set_capacity_factors(2.0, 0.25);
  moe(x);
  QCOMPARE(moe->last_decision.capacity, int64_t(4));
  moe->train();
  moe(x);
  QCOMPARE(moe->last_decision.capacity, int64_t(32));
}

void TestRouting::summaryCountsExpertsPerToken() {
  // Experts Choose with capacity 1: expert 0 and 1 both take token 0; expert 2 takes token 2.
  auto probs = probs_of({{0.6f, 0.5f, 0.1f}, {0.2f, 0.3f, 0.2f}, {0.2f, 0.2f, 0.7f}});
  auto d = route_experts_choose(probs, 1);
  d.z_loss = torch::zeros({});
  const auto s = summarize(d);
  QCOMPARE(s.experts_per_token, (std::vector<int64_t>{1, 1, 1, 0}));  // token 1: 0, token 2: 1, token 0: 2
  QCOMPARE(s.unrouted_tokens, int64_t(1));
  QCOMPARE(s.tokens_per_expert, (std::vector<int64_t>{1, 1, 1}));
}

void TestRouting::moeForwardSpeed_data() {
  QTest::addColumn<double>("capacity_factor");
  QTest::addRow("cf 1.0") << 1.0;
  QTest::addRow("cf 0.5") << 0.5;
}

void TestRouting::moeForwardSpeed() {
  // Dispatch cost follows the capacity factor: compare the two rows with -tickcounter / -median.
  QFETCH(double, capacity_factor);
  torch::manual_seed(0);
  Moe moe(256, 1024, 16, router_config(RouterKind::ExpertsChoose, capacity_factor), 0.0, 0.02);
  moe->eval();
  torch::NoGradGuard ng;
  auto x = torch::randn({4, 256, 256});
  QBENCHMARK { moe(x); }
}

QTEST_APPLESS_MAIN(TestRouting)
