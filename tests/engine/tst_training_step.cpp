#include "tst_training_step.h"

#include <QtTest>

#include "model/bench/bench.h"
#include "model/core/compat.h"
#include "model/nn/encoder.h"

using namespace smx;

namespace {
ModelConfig tiny(const QString& variant) {
  ModelConfig c = preset("demo");
  c.vocab_size = 200;
  c.max_seq_len = 16;
  c.d_model = 32;
  c.d_ff = 64;
  c.num_heads = 4;
  c.num_experts = 4;
  c.router.min_capacity = 1;
  if (variant == "fourier") c.mixing = MixingKind::Fourier;
  if (variant == "hartley") c.mixing = MixingKind::Hartley;
  if (variant == "circulant") c.mixing = MixingKind::Circulant;
  if (variant == "toeplitz") c.mixing = MixingKind::Toeplitz;
  if (variant == "tokens-choose") {
    c.router.kind = RouterKind::TokensChoose;
    c.router.top_k = 2;
    c.router.train_capacity_factor = 2.0;  // room for every choice, so every expert learns
    c.router.jitter = 0.01;
  }
  if (variant == "bert") {
    c.attention_layers = c.num_layers;
    c.moe_layers = 0;
  }
  if (variant == "sparse-bert") c.attention_layers = c.num_layers;
  return c;
}

std::vector<float> train(const ModelConfig& c, uint64_t seed, int steps, double lr) {
  torch::manual_seed(seed);
  EncoderModel model(c);
  auto batch = synthetic_pretrain_batch(c, 4, c.max_seq_len, 3);
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(lr).eps(1e-6).weight_decay(0.01));
  model->train();
  std::vector<float> losses;
  for (int i = 0; i < steps; ++i) {
    opt.zero_grad();
    auto l = model->pretrain_losses(batch);
    l.total.backward();
    opt.step();
    losses.push_back(l.total.item<float>());
  }
  return losses;
}
}  // namespace

void TestTrainingStep::everyParameterGetsGradient_data() {
  QTest::addColumn<QString>("variant");
  for (const char* v : {"linear", "fourier", "hartley", "circulant", "toeplitz", "tokens-choose", "bert", "sparse-bert"})
    QTest::newRow(v) << QString(v);
}

void TestTrainingStep::everyParameterGetsGradient() {
  QFETCH(QString, variant);
  const ModelConfig c = tiny(variant);
  torch::manual_seed(0);
  EncoderModel model(c);
  model->train();
  auto b = synthetic_pretrain_batch(c, 4, c.max_seq_len, 3);
  b.types.narrow(1, 0, 4).fill_(3);  // use every segment id
  b.types.narrow(1, 4, 4).fill_(2);
  auto losses = model->pretrain_losses(b);
  // The classifier head is trained in fine-tuning; add its loss so it is covered too.
  auto out = model->forward(b.ids, b.types, b.mask);
  auto cls = torch::nn::functional::cross_entropy(model->classify(out.pooled), b.nsp_labels);
  (losses.total + cls).backward();
  for (const auto& p : model->named_parameters()) {
    QVERIFY2(p.value().grad().defined(), p.key().c_str());
    QVERIFY2(p.value().grad().abs().sum().item<double>() > 0, p.key().c_str());
    QVERIFY2(torch::isfinite(p.value().grad()).all().item<bool>(), p.key().c_str());
  }
  if (c.moe_layers > 0) QVERIFY(losses.z_loss.item<double>() > 0);
  if (c.router.kind == RouterKind::TokensChoose) QVERIFY(losses.load_balancing.item<double>() > 0);
}

void TestTrainingStep::lossDecreasesOnFixedBatch() {
  ModelConfig c = tiny("linear");
  c.dropout = c.expert_dropout = 0.0;
  const auto losses = train(c, 1, 40, 3e-3);
  qInfo("loss %.3f -> %.3f over %zu steps", losses.front(), losses.back(), losses.size());
  QVERIFY(losses.back() < 0.5f * losses.front());
}

void TestTrainingStep::sameSeedSameResult() {
  const ModelConfig c = tiny("tokens-choose");  // dropout, jitter and routing all seeded
  const auto a = train(c, 7, 4, 1e-3), b = train(c, 7, 4, 1e-3), other = train(c, 8, 4, 1e-3);
  QCOMPARE(a, b);
  QVERIFY(a != other);
}

void TestTrainingStep::cudaMatchesCpu() {
  if (!torch::cuda::is_available()) QSKIP("no CUDA device in this LibTorch build or machine");
  ModelConfig c = tiny("tokens-choose");
  c.dropout = c.expert_dropout = 0.0;
  c.router.jitter = 0.0;
  torch::manual_seed(3);
  EncoderModel model(c);
  model->eval();
  auto b = synthetic_pretrain_batch(c, 4, c.max_seq_len, 3);
  double cpu = 0, gpu = 0;
  {
    torch::NoGradGuard ng;
    cpu = model->pretrain_losses(b).total.item<double>();
    model->to(torch::kCUDA);
    gpu = model->pretrain_losses(b.to(torch::kCUDA)).total.item<double>();
  }
  QVERIFY2(std::abs(cpu - gpu) < 1e-3 * std::abs(cpu), qPrintable(QString("cpu %1 vs cuda %2").arg(cpu).arg(gpu)));
  // A bf16-autocast training step on the device (float32 routers and losses)
  // leaves finite parameters.
  model->train();
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(1e-3));
  torch::Tensor total;
  {
    compat::CudaAutocastBf16 autocast;
    total = model->pretrain_losses(b.to(torch::kCUDA)).total;
  }
  QCOMPARE(total.scalar_type(), torch::kFloat);
  total.backward();
  opt.step();
  for (const auto& p : model->parameters()) QVERIFY(torch::isfinite(p).all().item<bool>());
}

QTEST_APPLESS_MAIN(TestTrainingStep)
