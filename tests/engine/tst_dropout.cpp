#include "tst_dropout.h"

#include <QtTest>
#include <cmath>

#include "model/config/model_config.h"
#include "model/nn/dropout.h"
#include "model/nn/encoder.h"

using namespace smx;

void TestDropout::identityOutsideTraining() {
  auto x = torch::randn({4, 8});
  QVERIFY(smx::dropout(x, 0.3, false).equal(x));
  QVERIFY(smx::dropout(x, 0.0, true).equal(x));
  Dropout d(0.3);
  d->eval();
  QVERIFY(d(x).equal(x));
  d->train();
  QVERIFY(!d(x).equal(x));
}

void TestDropout::dropsAtTheRateAndScalesTheRest() {
  torch::manual_seed(1);
  const int64_t n = 1 << 20;
  auto x = torch::rand({n}) + 0.5;  // no zeros of its own
  for (double p : {0.1, 0.5, 0.9}) {
    auto y = smx::dropout(x, p, true);
    auto dropped = y.eq(0);
    const double rate = dropped.to(torch::kDouble).mean().item<double>();
    // Binomial standard deviation sqrt(p(1-p)/n) < 5e-4: 6 of them.
    QVERIFY2(std::abs(rate - p) < 3e-3, qPrintable(QString("p %1: dropped %2").arg(p).arg(rate)));
    auto kept = dropped.logical_not();
    QVERIFY(torch::allclose(y.masked_select(kept), x.masked_select(kept) / (1.0 - p), 1e-6, 0));
    // The expectation is kept.
    QVERIFY(std::abs(y.mean().item<double>() - x.mean().item<double>()) < 0.02);
  }
}

void TestDropout::masksAreUncorrelated() {
  torch::manual_seed(2);
  const int64_t n = 1 << 18;
  auto ones = torch::ones({n});
  auto a = smx::dropout(ones, 0.5, true).ne(0).to(torch::kDouble);
  auto b = smx::dropout(ones, 0.5, true).ne(0).to(torch::kDouble);
  // Two calls draw different masks; neighbours and consecutive calls are uncorrelated.
  QVERIFY(!a.equal(b));
  auto corr = [&](const torch::Tensor& u, const torch::Tensor& v) {
    auto cu = u - u.mean(), cv = v - v.mean();
    return ((cu * cv).mean() / (cu.std(false) * cv.std(false))).item<double>();
  };
  QVERIFY(std::abs(corr(a, b)) < 0.02);
  QVERIFY(std::abs(corr(a.narrow(0, 0, n - 1), a.narrow(0, 1, n - 1))) < 0.02);  // pairs from one hash
  QVERIFY(std::abs(corr(a.narrow(0, 0, n - 2), a.narrow(0, 2, n - 2))) < 0.02);  // neighbouring hashes
}

void TestDropout::gradientFollowsTheMask() {
  torch::manual_seed(3);
  auto x = torch::randn({64, 32}, torch::requires_grad());
  auto y = smx::dropout(x, 0.25, true);
  auto w = torch::randn({64, 32});
  (y * w).sum().backward();
  auto kept = y.detach().ne(0);
  auto expected = torch::where(kept, w / 0.75, torch::zeros_like(w));
  QVERIFY(torch::allclose(x.grad(), expected, 1e-6, 1e-7));
}

void TestDropout::repeatsUnderASeedWhateverTheThreads() {
  const int before = torch::get_num_threads();
  auto x = torch::ones({3, 100001});  // odd: the last hash gives one element
  torch::set_num_threads(1);
  torch::manual_seed(7);
  auto one = smx::dropout(x, 0.2, true);
  torch::set_num_threads(std::max(2, before));
  torch::manual_seed(7);
  auto many = smx::dropout(x, 0.2, true);
  torch::set_num_threads(before);
  QVERIFY(one.equal(many));
  // The mask itself depends only on its seed.
  QVERIFY(dropout_mask({5, 7}, 0.5, torch::kFloat, 42).equal(dropout_mask({5, 7}, 0.5, torch::kFloat, 42)));
  QVERIFY(!dropout_mask({64}, 0.5, torch::kFloat, 42).equal(dropout_mask({64}, 0.5, torch::kFloat, 43)));
}

void TestDropout::edgeProbabilities() {
  auto x = torch::randn({100});
  QVERIFY(smx::dropout(x, 1.0, true).eq(0).all().item<bool>());
  QVERIFY(smx::dropout(torch::empty({0, 3}), 0.5, true).numel() == 0);
  bool refused = false;
  try {
    smx::dropout(x, 1.5, true);
  } catch (const c10::Error&) {
    refused = true;
  }
  QVERIFY(refused);
  refused = false;
  try {
    Dropout bad(-0.1);
  } catch (const c10::Error&) {
    refused = true;
  }
  QVERIFY(refused);
}

void TestDropout::otherTypes() {
  torch::manual_seed(4);
  for (auto type : {torch::kDouble, torch::kBFloat16}) {
    auto x = torch::ones({4096}, type);
    auto y = smx::dropout(x, 0.5, true);
    QCOMPARE(y.scalar_type(), type);
    const double rate = y.eq(0).to(torch::kDouble).mean().item<double>();
    QVERIFY(std::abs(rate - 0.5) < 0.05);
    QVERIFY(y.masked_select(y.ne(0)).eq(2).all().item<bool>());
  }
  // Integers cannot be dropped out: a clear error, not a call that never returns.
  auto z = torch::ones({16}, torch::kLong);
  QVERIFY(smx::dropout(z, 0.5, false).equal(z));
  bool refused = false;
  try {
    smx::dropout(z, 0.5, true);
  } catch (const c10::Error& e) {
    refused = QString(e.what()).contains("floating-point");
  }
  QVERIFY(refused);
}

void TestDropout::modelsDropOnlyWhileTraining() {
  auto c = preset("demo");
  c.dropout = 0.5;
  torch::manual_seed(5);
  EncoderModel model(c);
  auto ids = torch::randint(5, c.vocab_size, {2, 16}, torch::kLong);
  auto types = torch::zeros_like(ids);
  auto mask = torch::ones_like(ids);
  model->eval();
  auto a = model->forward(ids, types, mask).hidden, b = model->forward(ids, types, mask).hidden;
  QVERIFY(a.equal(b));
  model->train();
  auto c1 = model->forward(ids, types, mask).hidden, c2 = model->forward(ids, types, mask).hidden;
  QVERIFY(!c1.equal(c2));
  torch::manual_seed(6);
  auto d1 = model->forward(ids, types, mask).hidden;
  torch::manual_seed(6);
  auto d2 = model->forward(ids, types, mask).hidden;
  QVERIFY(d1.equal(d2));
}

QTEST_GUILESS_MAIN(TestDropout)
