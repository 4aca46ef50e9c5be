#include "tst_mixing.h"

#include <QtTest>
#include <cmath>

#include "model/nn/encoder.h"
#include "model/nn/mixing.h"

using namespace smx;

namespace {
// cos and sin parts of the DFT matrix F[j,k] = exp(-2 pi i jk / n) = C - iS, in double.
std::pair<torch::Tensor, torch::Tensor> dft_parts(int64_t n) {
  auto c = torch::empty({n, n}, torch::kDouble), s = torch::empty({n, n}, torch::kDouble);
  auto ca = c.accessor<double, 2>(), sa = s.accessor<double, 2>();
  for (int64_t j = 0; j < n; ++j)
    for (int64_t k = 0; k < n; ++k) {
      const double a = 2.0 * M_PI * double((j * k) % n) / double(n);
      ca[j][k] = std::cos(a);
      sa[j][k] = std::sin(a);
    }
  return {c, s};
}
// Re and Im of F_S X F_D for one example X [S, D], computed from the parts:
// (Cs - iSs) X (Cd - iSd) = (Cs X Cd - Ss X Sd) - i (Cs X Sd + Ss X Cd).
std::pair<torch::Tensor, torch::Tensor> dft2(const torch::Tensor& x) {
  auto [cs, ss] = dft_parts(x.size(0));
  auto [cd, sd] = dft_parts(x.size(1));
  auto xd = x.to(torch::kDouble);
  auto re = cs.mm(xd).mm(cd) - ss.mm(xd).mm(sd);
  auto im = -(cs.mm(xd).mm(sd) + ss.mm(xd).mm(cd));
  return {re, im};
}
bool close(const torch::Tensor& a, const torch::Tensor& b, double tol) {
  const double err = (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
  const double scale = b.abs().max().item<double>();
  if (err > tol * std::max(scale, 1.0)) {
    qWarning("max error %g (scale %g, tol %g)", err, scale, tol);
    return false;
  }
  return true;
}
}  // namespace

void TestMixing::fourierEqualsRealPartOfDft() {
  torch::manual_seed(0);
  FourierMixing fourier(12, 10, false);
  auto x = torch::randn({2, 12, 10});
  auto y = fourier.forward(x, {});
  for (int64_t b = 0; b < 2; ++b) QVERIFY(close(y[b], dft2(x[b]).first, 1e-5));
}

void TestMixing::hartleyEqualsRealMinusImaginary() {
  torch::manual_seed(1);
  FourierMixing hartley(9, 6, true);
  auto x = torch::randn({3, 9, 6});
  auto y = hartley.forward(x, {});
  for (int64_t b = 0; b < 3; ++b) {
    auto [re, im] = dft2(x[b]);
    QVERIFY(close(y[b], re - im, 1e-5));
  }
}

void TestMixing::linearIsWseqXWhidden() {
  torch::manual_seed(2);
  LinearMixing linear(16, 8, 0.5);
  auto x = torch::randn({2, 16, 8});
  auto y = linear.forward(x, {});
  auto ws = linear.w_seq.to(torch::kDouble), wh = linear.w_hidden.to(torch::kDouble);
  for (int64_t b = 0; b < 2; ++b) QVERIFY(close(y[b], ws.mm(x[b].to(torch::kDouble)).mm(wh), 1e-5));
  // A shorter input uses the top-left block of W_seq.
  auto xs = torch::randn({1, 5, 8});
  auto ys = linear.forward(xs, {});
  QVERIFY(close(ys[0], ws.narrow(0, 0, 5).narrow(1, 0, 5).mm(xs[0].to(torch::kDouble)).mm(wh), 1e-5));
  QCOMPARE(linear.matrices().size(), size_t(2));
}

void TestMixing::circulantStructure() {
  torch::manual_seed(3);
  StructuredMixing circ(7, 5, false, 1.0);
  auto m = circ.seq_matrix();
  for (int64_t i = 0; i < 7; ++i)
    for (int64_t j = 0; j < 7; ++j)
      QCOMPARE(m[i][j].item<float>(), circ.v_seq[((i - j) % 7 + 7) % 7].item<float>());
  // Each row is the previous one shifted right by one, cyclically.
  QVERIFY(torch::equal(m[3], torch::roll(m[2], 1)));
  QCOMPARE(circ.v_seq.numel(), int64_t(7));
  QCOMPARE(circ.v_hidden.numel(), int64_t(5));
}

void TestMixing::toeplitzStructure() {
  torch::manual_seed(4);
  StructuredMixing toe(6, 4, true, 1.0);
  QCOMPARE(toe.v_seq.numel(), int64_t(11));  // 2N - 1
  auto m = toe.seq_matrix();
  for (int64_t i = 0; i < 6; ++i)
    for (int64_t j = 0; j < 6; ++j) {
      QCOMPARE(m[i][j].item<float>(), toe.v_seq[6 - 1 - i + j].item<float>());
      if (i + 1 < 6 && j + 1 < 6) QCOMPARE(m[i][j].item<float>(), m[i + 1][j + 1].item<float>());  // constant diagonals
    }
  // Forward = M_seq X M_hidden^T.
  auto x = torch::randn({2, 6, 4});
  auto y = toe.forward(x, {});
  auto ms = m.to(torch::kDouble), mh = toe.hidden_matrix().to(torch::kDouble);
  for (int64_t b = 0; b < 2; ++b) QVERIFY(close(y[b], ms.mm(x[b].to(torch::kDouble)).mm(mh.t()), 1e-5));
}

void TestMixing::circulantAgreesWithFftPath() {
  torch::manual_seed(5);
  StructuredMixing circ(16, 12, false, 1.0);
  auto x = torch::randn({3, 16, 12});
  auto dense = circ.forward(x, {});
  // M_seq X M_hidden^T = circulant(v_seq) along S of circulant(v_hidden) along D.
  auto fft = circulant_apply_fft(circ.v_seq, circulant_apply_fft(circ.v_hidden, x, 2), 1);
  QVERIFY(close(dense, fft, 1e-4));
}

void TestMixing::attentionIgnoresPadding() {
  torch::manual_seed(6);
  SelfAttention attn(16, 4, 0.0, 0.2);
  attn.eval();
  auto x = torch::randn({2, 10, 16});
  auto mask = torch::ones({2, 10}, torch::kLong);
  mask.narrow(1, 7, 3).zero_();  // last three positions are padding
  auto y1 = attn.forward(x, mask);
  auto x2 = x.clone();
  x2.narrow(1, 7, 3).normal_();  // change only the padding
  auto y2 = attn.forward(x2, mask);
  QVERIFY(torch::allclose(y1.narrow(1, 0, 7), y2.narrow(1, 0, 7), 1e-5, 1e-6));
  // Without the mask, the padding does leak in.
  QVERIFY(!torch::allclose(attn.forward(x, {}).narrow(1, 0, 7), attn.forward(x2, {}).narrow(1, 0, 7), 1e-5, 1e-6));
  // Recorded probabilities: rows sum to 1, padding columns get ~0.
  attn.record_probabilities = true;
  attn.forward(x, mask);
  auto p = attn.last_probabilities;  // [B, H, S, S]
  QCOMPARE(p.sizes().vec(), (std::vector<int64_t>{2, 4, 10, 10}));
  QVERIFY(torch::allclose(p.sum(-1), torch::ones({2, 4, 10}), 1e-5, 1e-5));
  QVERIFY(p.narrow(3, 7, 3).max().item<float>() < 1e-6f);
}

void TestMixing::attentionPathsAgree() {
  // Inference without gradients takes another path on the CPU (head by head, LibTorch 1.13; the
  // fused kernel on 2.x): it must give what the training-time path gives, with padding and causal
  // masks and without.
  for (const bool causal : {false, true}) {
    torch::manual_seed(7);
    SelfAttention attn(32, 4, 0.1, 0.2, causal);
    attn.eval();
    auto x = torch::randn({3, 12, 32});
    auto mask = torch::ones({3, 12}, torch::kLong);
    mask[1].narrow(0, 9, 3).zero_();
    mask[2].narrow(0, 5, 7).zero_();
    for (const bool masked : {false, true}) {
      const auto m = masked ? mask : torch::Tensor();
      const auto with_grad = attn.forward(x, m);  // grad mode on: the path training takes
      torch::Tensor without;
      {
        torch::NoGradGuard no_grad;
        without = attn.forward(x, m);
      }
      QVERIFY2(torch::allclose(with_grad.detach(), without, 1e-5, 1e-6),
               qPrintable(QString("causal %1 masked %2: max difference %3")
                              .arg(causal).arg(masked).arg((with_grad.detach() - without).abs().max().item<double>())));
    }
  }
}

void TestMixing::layerPlacementFollowsConfig() {
  ModelConfig c = preset("sparse-mixer");
  c.vocab_size = 100;  // keep the model small: only placement matters here
  c.max_seq_len = 16;
  c.d_model = 16;
  c.d_ff = 16;
  c.num_heads = 2;
  c.num_experts = 2;
  c.mixing = MixingKind::Toeplitz;
  EncoderModel model(c);
  QString kinds, mlps;
  for (const auto& b : model->blocks) {
    kinds += QString::fromStdString(b->mixing->kind()).left(1);
    mlps += b->is_moe() ? "M" : "d";
  }
  QCOMPARE(kinds, QString("ttttttttttaaaa"));  // 4 attention layers on TOP of 14
  QCOMPARE(mlps, QString("dddddMMMMddddd"));   // 4 MoE layers in the MIDDLE (5..8)
}

QTEST_APPLESS_MAIN(TestMixing)
