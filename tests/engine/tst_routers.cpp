#include "tst_routers.h"

#include <QtTest>
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <sstream>

#include "model/config/cost.h"
#include "model/nn/base_routing.h"
#include "model/nn/encoder.h"
#include "model/nn/hash_routing.h"
#include "model/nn/routing.h"
#include "tests/engine/routing_fixtures.h"

using namespace smx;
using smx::test::probs_of;
using smx::test::slots_of;

namespace {
// Expert of each token of group 0 (-1: none), from a decision with one expert per token.
std::vector<int64_t> expert_per_token(const RoutingDecision& d) {
  std::vector<int64_t> out(size_t(d.probs.size(1)), -1);
  for (int64_t e = 0; e < d.dispatch.size(1); ++e)
    for (int64_t t : slots_of(d, 0, e)) out[size_t(t)] = e;
  return out;
}
RouterConfig config_of(RouterKind kind) {
  RouterConfig r;
  r.kind = kind;
  r.min_capacity = 1;
  return r;
}
}  // namespace

void TestRouters::capacityRules() {
  // fairseq: Switch floor(cf * ceil(T / E)), GShard floor(2 cf * ceil(T / E)).
  QCOMPARE(router_capacity(config_of(RouterKind::Switch), 64, 4, 1.0), int64_t(16));
  QCOMPARE(router_capacity(config_of(RouterKind::GShard), 64, 4, 1.0), int64_t(32));
  QCOMPARE(router_capacity(config_of(RouterKind::Switch), 10, 4, 1.0), int64_t(3));   // ceil(2.5) = 3
  QCOMPARE(router_capacity(config_of(RouterKind::GShard), 10, 4, 1.0), int64_t(6));
  QCOMPARE(router_capacity(config_of(RouterKind::Switch), 10, 4, 1.5), int64_t(4));   // floor(4.5)
  QCOMPARE(router_capacity(config_of(RouterKind::Base), 2048, 4, 1.0), int64_t(512));
  QCOMPARE(router_capacity(config_of(RouterKind::TokensChoose), 40, 16, 1.0), int64_t(2));  // round half to even
  // A padded group: the same rules on its real tokens.
  auto mask = torch::tensor({1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, torch::kLong).view({1, 12});
  QCOMPARE(token_mask(mask, 4, 1.0, 1, RouterKind::GShard).group_capacity[0].item<int64_t>(), int64_t(6));
  QCOMPARE(token_mask(mask, 4, 1.0, 1, RouterKind::Switch).group_capacity[0].item<int64_t>(), int64_t(3));
  QVERIFY(!token_mask(mask, 4, 1.0, 1, RouterKind::Base).group_capacity.defined());
}

void TestRouters::switchAndGShardBalancingLoss() {
  const int64_t T = 16, E = 4;
  auto uniform = torch::full({1, T, E}, 1.0f / E);
  QVERIFY(std::abs(route_switch(uniform, T).load_balancing_loss.item<double>() - 1.0) < 1e-6);
  QVERIFY(std::abs(route_gshard(uniform, torch::log(uniform), T).load_balancing_loss.item<double>() - 1.0) < 1e-6);
  // Every token takes expert 2 with probability 1: the loss is E.
  auto one = torch::zeros({1, T, E});
  one.select(2, 2).fill_(1.0f);
  QVERIFY(std::abs(route_switch(one, T).load_balancing_loss.item<double>() - double(E)) < 1e-6);
  QVERIFY(std::abs(route_gshard(one, torch::log(one.clamp_min(1e-9)), T).load_balancing_loss.item<double>() -
                   double(E)) < 1e-5);
  // GShard counts only top-1 choices in f: half the tokens prefer 0 then 1, the others 1 then 0.
  auto p = probs_of({{0.6f, 0.4f}, {0.4f, 0.6f}, {0.6f, 0.4f}, {0.4f, 0.6f}});
  // f = (0.5, 0.5) from top-1 (with both choices it would be (1, 1)), P = (0.5, 0.5): 0.25 * 4 = 1.
  QVERIFY(std::abs(route_gshard(p, torch::log(p), 8).load_balancing_loss.item<double>() - 1.0) < 1e-6);
}

void TestRouters::switchIsFirstComeFirstServed() {
  // All want expert 0; capacity 2: the first two tokens in sequence order win, whatever their confidence.
  auto p = probs_of({{0.55f, 0.45f}, {0.6f, 0.4f}, {0.95f, 0.05f}, {0.9f, 0.1f}});
  auto d = route_switch(p, 2);
  QCOMPARE(slots_of(d, 0, 0), (std::vector<int64_t>{0, 1}));
  QVERIFY(std::abs(d.combine[0][0][1].item<float>() - 0.6f) < 1e-7f);  // the raw probability as weight
  d.z_loss = torch::zeros({});
  QCOMPARE(summarize(d).dropped_choices, int64_t(2));
}

void TestRouters::gshardKeptGatesSumToOne() {
  torch::manual_seed(3);
  const int64_t T = 32, E = 4;
  auto logits = torch::randn({2, T, E});
  auto probs = torch::softmax(logits, -1);
  for (int64_t capacity : {T, int64_t(3)}) {  // roomy (room for every token), then tight
    auto d = route_gshard(probs, logits, capacity);
    auto per_token = torch::zeros({2, T + 1}).scatter_add_(1, d.dispatch.flatten(1), d.combine.flatten(1)).narrow(1, 0, T);
    auto taken = torch::zeros({2, T + 1}).scatter_add_(1, d.dispatch.flatten(1), torch::ones({2, E * d.capacity}))
                     .narrow(1, 0, T);
    // Every token with a kept choice has gates summing to 1.
    auto kept = taken.gt(0);
    QVERIFY(kept.any().item<bool>());
    QVERIFY((per_token.masked_select(kept) - 1).abs().max().item<float>() < 1e-6f);
    if (capacity == T) QVERIFY(taken.eq(2).all().item<bool>());  // both choices kept
    else QVERIFY(taken.lt(2).any().item<bool>());                  // some dropped
  }
  // All first choices claim before any second: token 0 wants 0 then 1, token 1 wants 1 then 0; capacity 1.
  auto p = probs_of({{0.7f, 0.3f}, {0.2f, 0.8f}});
  auto d = route_gshard(p, torch::log(p), 1);
  QCOMPARE(slots_of(d, 0, 0), std::vector<int64_t>{0});
  QCOMPARE(slots_of(d, 0, 1), std::vector<int64_t>{1});
  QCOMPARE(d.combine[0][0][0].item<float>(), 1.0f);  // its second choice was dropped: 0.7 / 0.7
}

void TestRouters::gshardSecondChoiceSampledWhileTraining() {
  torch::manual_seed(4);
  auto logits = torch::zeros({1, 64, 8});
  logits.select(2, 0).fill_(3.0);  // expert 0 is everyone's first choice
  auto probs = torch::softmax(logits, -1);
  auto greedy = route_gshard(probs, logits, 128, {}, false);
  auto sampled = route_gshard(probs, logits, 128, {}, true);
  auto second_greedy = greedy.wanted.select(2, 1), second_sampled = sampled.wanted.select(2, 1);
  QVERIFY(second_greedy.eq(1).all().item<bool>());  // the lower index among the tied others
  QVERIFY(greedy.wanted.select(2, 0).eq(0).all().item<bool>() && sampled.wanted.select(2, 0).eq(0).all().item<bool>());
  QVERIFY(second_sampled.ne(0).all().item<bool>());  // never the first choice again
  QVERIFY(std::get<0>(at::_unique(second_sampled)).numel() >= 4);  // spread over the other experts
}

void TestRouters::baseGivesEveryExpertItsShare() {
  torch::manual_seed(5);
  const int64_t T = 2048, E = 4;
  auto affinity = torch::randn({1, T, E});
  affinity.select(2, 1).add_(1.0);  // skewed: most tokens like expert 1 best
  auto d = route_base(affinity, {}, /*training=*/true);
  d.z_loss = torch::zeros({});
  const auto s = summarize(d);
  QCOMPARE(s.tokens_per_expert, (std::vector<int64_t>{512, 512, 512, 512}));
  QCOMPARE(s.unrouted_tokens, int64_t(0));
  QCOMPARE(d.load_balancing_loss.item<double>(), 0.0);
  // The weight is sigmoid(affinity) of the chosen expert.
  const auto expert = expert_per_token(d);
  for (int64_t t : {int64_t(0), int64_t(777), T - 1})
    QVERIFY(std::abs(d.combine.flatten().index({d.dispatch.flatten().eq(t)}).item<float>() -
                     torch::sigmoid(affinity[0][t][expert[size_t(t)]]).item<float>()) < 1e-6f);
}

void TestRouters::baseMatchesBruteForce() {
  std::mt19937 rng(7);
  std::normal_distribution<double> normal;
  for (int trial = 0; trial < 25; ++trial) {
    // T = 8, E = 2: all C(8, 4) = 70 balanced splits.
    std::vector<double> a(16);
    for (auto& v : a) v = normal(rng);
    const auto got = balanced_assignment(a, 8, 2, 4);
    double got_total = 0;
    std::vector<int> load(2, 0);
    for (int t = 0; t < 8; ++t) {
      got_total += a[size_t(t * 2 + got[size_t(t)])];
      ++load[size_t(got[size_t(t)])];
    }
    QCOMPARE(load, (std::vector<int>{4, 4}));
    double best = -1e300;
    int splits = 0;
    for (int m = 0; m < 256; ++m) {
      if (__builtin_popcount(unsigned(m)) != 4) continue;
      ++splits;
      double total = 0;
      for (int t = 0; t < 8; ++t) total += a[size_t(t * 2 + ((m >> t) & 1))];
      best = std::max(best, total);
    }
    QCOMPARE(splits, 70);
    QVERIFY2(std::abs(got_total - best) < 1e-9, qPrintable(QString("trial %1: %2 vs best %3").arg(trial).arg(got_total).arg(best)));
  }
  // T = 6, E = 3, two each: every assignment of 6 tokens (3^6) with equal loads.
  for (int trial = 0; trial < 10; ++trial) {
    std::vector<double> a(18);
    for (auto& v : a) v = normal(rng);
    const auto got = balanced_assignment(a, 6, 3, 2);
    double got_total = 0;
    for (int t = 0; t < 6; ++t) got_total += a[size_t(t * 3 + got[size_t(t)])];
    double best = -1e300;
    for (int code = 0; code < 729; ++code) {
      int c = code, load[3] = {0, 0, 0};
      double total = 0;
      for (int t = 0; t < 6; ++t, c /= 3) {
        ++load[c % 3];
        total += a[size_t(t * 3 + c % 3)];
      }
      if (load[0] == 2 && load[1] == 2 && load[2] == 2) best = std::max(best, total);
    }
    QVERIFY(std::abs(got_total - best) < 1e-9);
  }
}

void TestRouters::baseIsGreedyInEvaluation() {
  auto affinity = torch::tensor({2.0f, 1.0f, 3.0f, 0.0f, 1.0f, 0.5f, 0.2f, 0.1f}).view({1, 4, 2});
  auto d = route_base(affinity, {}, /*training=*/false);
  QCOMPARE(expert_per_token(d), (std::vector<int64_t>{0, 0, 0, 0}));  // unequal loads: all prefer expert 0
  QCOMPARE(d.capacity, int64_t(4));
  auto t = route_base(affinity, {}, /*training=*/true);
  QCOMPARE(expert_per_token(t), (std::vector<int64_t>{0, 0, 1, 1}));  // balanced 2 + 2: tokens 2 and 3 lose least on expert 1
  // Through the router: the module's mode decides (not whether gradients are on).
  RouterConfig rc = config_of(RouterKind::Base);
  Router router(3, 2, rc, 0.5);
  auto x = torch::randn({1, 6, 3});
  router->eval();
  auto eval = router(x, 3);
  auto a = x.matmul(router->dense->weight.t());  // affinity: no bias
  QCOMPARE(expert_per_token(eval), [&] {
    std::vector<int64_t> v;
    for (int64_t i = 0; i < 6; ++i) v.push_back(a[0][i][1].item<float>() > a[0][i][0].item<float>() ? 1 : 0);
    return v;
  }());
  router->train();
  auto train = router(x, 3);
  train.z_loss = torch::zeros({});
  QCOMPARE(summarize(train).tokens_per_expert, (std::vector<int64_t>{3, 3}));
}

void TestRouters::baseRefusesIndivisibleGroups() {
  QString message;
  try {
    route_base(torch::randn({1, 10, 4}), {}, true);
  } catch (const c10::Error& e) {
    message = QString::fromStdString(e.what_without_backtrace());
  }
  QVERIFY2(message.contains("10 tokens must divide by the 4 experts"), qPrintable(message));
  route_base(torch::randn({1, 10, 4}), {}, false);  // evaluation is greedy: any size
}

void TestRouters::hashIsAFixedTable() {
  RouterConfig rc = config_of(RouterKind::Hash);
  const int64_t V = 50, E = 4;
  Router router(8, E, rc, 0.02, V);
  QCOMPARE(router->hash_table.sizes().vec(), std::vector<int64_t>{V});
  QVERIFY(router->hash_table.min().item<int64_t>() >= 0 && router->hash_table.max().item<int64_t>() < E);
  QVERIFY(router->hash_table.equal(torch::tensor(random_hash_table(V, E), torch::kLong)));  // seeded: every machine
  // One id at several positions, in two batches with other neighbours and inputs.
  auto ids = torch::tensor({7, 3, 7, 9, 7, 7, 1, 7}, torch::kLong).view({1, 8});
  auto other = torch::tensor({2, 7, 5, 7, 7, 4, 7, 8}, torch::kLong).view({1, 8});
  const int64_t want = router->hash_table[7].item<int64_t>();
  for (const auto& batch : {ids, other}) {
    auto d = router->forward(torch::randn({1, 8, 8}), 8, {}, batch);
    const auto expert = expert_per_token(d);
    for (int64_t t = 0; t < 8; ++t)
      if (batch[0][t].item<int64_t>() == 7) QCOMPARE(expert[size_t(t)], want);
    QCOMPARE(d.combine.max().item<float>(), 1.0f);  // no gate weight
  }
  // Padding takes no expert.
  auto mask = torch::tensor({1, 1, 1, 1, 1, 0, 0, 0}, torch::kLong).view({1, 8});
  auto d = router->forward(torch::randn({1, 8, 8}), 8, token_mask(mask, E, 1.0, 1, RouterKind::Hash), ids);
  const auto expert = expert_per_token(d);
  QVERIFY(expert[5] < 0 && expert[6] < 0 && expert[7] < 0);
  QVERIFY(expert[0] == want && expert[4] == want);
}

void TestRouters::hashTableSurvivesSaveAndLoad() {
  RouterConfig rc = config_of(RouterKind::Hash);
  Router a(8, 4, rc, 0.02, 20), b(8, 4, rc, 0.02, 20);
  std::vector<int64_t> table(20);
  for (size_t i = 0; i < table.size(); ++i) table[i] = int64_t((i * 7 + 3) % 4);
  a->set_hash_table(table);
  QVERIFY(!a->hash_table.equal(b->hash_table));
  std::stringstream stream;
  torch::save(a, stream);
  torch::load(b, stream);
  QVERIFY(b->hash_table.equal(torch::tensor(table, torch::kLong)));
  // A table naming an expert that does not exist is refused.
  table[3] = 4;
  bool refused = false;
  try {
    a->set_hash_table(table);
  } catch (const c10::Error& e) {
    refused = QString(e.what_without_backtrace()).contains("expert 4 of 4");
  }
  QVERIFY(refused);
}

void TestRouters::balancedHashTableSpreadsFrequency() {
  // Zipf-distributed ids (the shape of real token counts) over 4000 pieces and 8 experts.
  const int64_t V = 4000, E = 8;
  std::vector<int64_t> frequency(static_cast<size_t>(V));
  for (int64_t id = 0; id < V; ++id) frequency[size_t(id)] = int64_t(1e6 / double(id + 1));
  frequency[17] = 0;  // an id never seen still gets an expert
  const auto table = balanced_hash_table(frequency, E);
  std::vector<double> mass(size_t(E), 0);
  for (int64_t id = 0; id < V; ++id) mass[size_t(table[size_t(id)])] += double(frequency[size_t(id)]);
  const double mean = std::accumulate(mass.begin(), mass.end(), 0.0) / double(E);
  for (double m : mass) QVERIFY2(std::abs(m - mean) <= 0.10 * mean, qPrintable(QString("expert mass %1 vs mean %2").arg(m).arg(mean)));
  // A random table does not balance as well on the same counts.
  const auto random = random_hash_table(V, E);
  std::vector<double> rmass(size_t(E), 0);
  for (int64_t id = 0; id < V; ++id) rmass[size_t(random[size_t(id)])] += double(frequency[size_t(id)]);
  const auto [lo, hi] = std::minmax_element(rmass.begin(), rmass.end());
  const auto [blo, bhi] = std::minmax_element(mass.begin(), mass.end());
  QVERIFY(*hi - *lo > *bhi - *blo);
  // id_frequencies counts ids in range only.
  QCOMPARE(id_frequencies({1, 1, 3, 9, -1}, 4), (std::vector<int64_t>{0, 2, 0, 1}));
}

void TestRouters::everyRouterTrainsAnEncoder_data() {
  QTest::addColumn<QString>("router");
  for (const char* r : {"switch", "gshard", "base", "hash"}) QTest::newRow(r) << r;
}

void TestRouters::everyRouterTrainsAnEncoder() {
  QFETCH(QString, router);
  ModelConfig c = config_from_json_text(R"({"preset": "demo", "d_model": 32, "d_ff": 64, "num_layers": 2,
    "attention_layers": 1, "moe_layers": 1, "num_experts": 4, "num_heads": 2, "max_seq_len": 16, "vocab_size": 60})");
  c.router.kind = router_kind_from_string(router.toStdString());
  c.dropout = c.expert_dropout = 0.0;
  torch::manual_seed(9);
  EncoderModel model(c);
  model->train();
  PretrainBatch b;
  b.ids = torch::randint(5, 60, {4, 16}, torch::kLong);
  b.types = torch::zeros({4, 16}, torch::kLong);
  b.mask = torch::ones({4, 16}, torch::kLong);
  b.mask[3].narrow(0, 12, 4).zero_();  // some padding
  b.mlm_positions = torch::randint(1, 12, {4, 3}, torch::kLong);
  b.mlm_labels = torch::randint(5, 60, {4, 3}, torch::kLong);
  b.nsp_labels = torch::randint(0, 2, {4}, torch::kLong);
  torch::optim::Adam opt(model->parameters(), 1e-2);
  double first = 0, last = 0;
  for (int step = 0; step < 8; ++step) {
    opt.zero_grad();
    auto losses = model->pretrain_losses(b);
    QVERIFY(std::isfinite(losses.total.item<double>()));
    losses.total.backward();
    opt.step();
    (step == 0 ? first : last) = losses.total.item<double>();
  }
  QVERIFY2(last < first, qPrintable(QString("%1: loss %2 -> %3").arg(router).arg(first).arg(last)));
  // The routing statistics the views draw: real tokens only, nothing lost for BASE and Hash.
  auto moe = model->moe_layers().front().second;  // a holder: shares the module
  const auto s = summarize(moe->last_decision);
  QCOMPARE(s.real_tokens, int64_t(60));
  QCOMPARE(moe->last_decision.probs.size(2), int64_t(4));
  if (router == "base" || router == "hash") QCOMPARE(s.unrouted_tokens, int64_t(0));
  if (router == "base") QCOMPARE(std::accumulate(s.tokens_per_expert.begin(), s.tokens_per_expert.end(), int64_t(0)), int64_t(60));
  // Evaluation mode routes too (BASE greedily).
  model->eval();
  torch::NoGradGuard no_grad;
  QVERIFY(std::isfinite(model->pretrain_losses(b).total.item<double>()));
}

QTEST_APPLESS_MAIN(TestRouters)
