#include "tst_config.h"

#include <QtTest>

#include <tuple>

#include "model/config/cost.h"
#include "model/config/model_config.h"
#include "model/config/train_config.h"
#include "model/inspect/runtime.h"
#include "model/nn/encoder.h"

using namespace smx;

namespace {
QString layers_where(const ModelConfig& c, bool attention) {
  QStringList l;
  for (int64_t i = 0; i < c.num_layers; ++i)
    if (attention ? c.is_attention_layer(i) : c.is_moe_layer(i)) l << QString::number(i);
  return l.join(',');
}
}  // namespace

void TestConfig::presetsHaveDesignShapes_data() {
  QTest::addColumn<QString>("name");
  QTest::addColumn<int>("layers");
  QTest::addColumn<int>("d_model");
  QTest::addColumn<int>("d_ff");
  QTest::addColumn<QString>("attention");
  QTest::addColumn<QString>("moe");
  QTest::addColumn<int>("experts");
  QTest::addColumn<double>("cf");
  const QString all12 = "0,1,2,3,4,5,6,7,8,9,10,11";
  QTest::newRow("bert-base") << "bert-base" << 12 << 768 << 3072 << all12 << "" << 0 << 0.0;
  QTest::newRow("sparse-mixer") << "sparse-mixer" << 14 << 512 << 2048 << "10,11,12,13" << "5,6,7,8" << 16 << 1.0;
  QTest::newRow("fast-sparse-mixer") << "fast-sparse-mixer" << 14 << 512 << 2048 << "10,11,12,13" << "5,6,7,8" << 16
                                     << 0.5;
  QTest::newRow("sparse-bert-4") << "sparse-bert-4" << 12 << 768 << 3072 << all12 << "4,5,6,7" << 16 << 1.0;
  QTest::newRow("sparse-bert-12") << "sparse-bert-12" << 12 << 768 << 3072 << all12 << all12 << 16 << 1.0;
  QTest::newRow("sparse-mixer-large") << "sparse-mixer-large" << 24 << 1024 << 4096 << "18,19,20,21,22,23"
                                      << "9,10,11,12,13,14" << 64 << 1.0;
}

void TestConfig::presetsHaveDesignShapes() {
  QFETCH(QString, name);
  QFETCH(int, layers);
  QFETCH(int, d_model);
  QFETCH(int, d_ff);
  QFETCH(QString, attention);
  QFETCH(QString, moe);
  QFETCH(int, experts);
  QFETCH(double, cf);
  const ModelConfig c = preset(name.toStdString());
  QCOMPARE(c.num_layers, int64_t(layers));
  QCOMPARE(c.d_model, int64_t(d_model));
  QCOMPARE(c.d_ff, int64_t(d_ff));
  QCOMPARE(c.vocab_size, int64_t(32000));
  QCOMPARE(c.max_seq_len, int64_t(512));
  QCOMPARE(layers_where(c, true), attention);
  QCOMPARE(layers_where(c, false), moe);
  if (experts > 0) {
    QCOMPARE(c.num_experts, int64_t(experts));
    QVERIFY(c.router.kind == RouterKind::ExpertsChoose);
    QCOMPARE(c.router.train_capacity_factor, cf);
    QCOMPARE(c.router.eval_capacity_factor, cf);
  }
  if (c.attention_layers < c.num_layers) QVERIFY(c.mixing == MixingKind::Linear);
}

void TestConfig::table10PresetsAtDemoSize() {
  // The stability lab's Table 10 set: demo (Sparse Mixer), demo-bert, demo-sparse-bert-2 and -4 share the
  // demo's size and differ only in mixing and in which feed-forward sublayers are MoE.
  const ModelConfig demo = preset("demo");
  for (const char* name : {"demo-bert", "demo-sparse-bert-2", "demo-sparse-bert-4"}) {
    const ModelConfig c = preset(name);
    QCOMPARE(c.num_layers, demo.num_layers);
    QCOMPARE(c.d_model, demo.d_model);
    QCOMPARE(c.d_ff, demo.d_ff);
    QCOMPARE(c.num_heads, demo.num_heads);
    QCOMPARE(c.vocab_size, demo.vocab_size);
    QCOMPARE(c.max_seq_len, demo.max_seq_len);
    QCOMPARE(c.router.max_group_size, demo.router.max_group_size);
    QCOMPARE(layers_where(c, true), QString("0,1,2,3"));  // attention everywhere, as BERT
  }
  QCOMPARE(layers_where(preset("demo-bert"), false), QString());
  QCOMPARE(layers_where(preset("demo-sparse-bert-2"), false), layers_where(demo, false));  // the demo's MoE layers
  QCOMPARE(layers_where(preset("demo-sparse-bert-4"), false), QString("0,1,2,3"));
  QCOMPARE(preset("demo-sparse-bert-4").num_experts, demo.num_experts);
  QVERIFY(preset("demo-sparse-bert-4").router.kind == RouterKind::ExpertsChoose);
  // Parameters (the cost model, itself checked against the modules below): BERT 1,105,188; each MoE layer
  // adds 7 more experts' FFNs (7 x 65,920) and a router (128 x 8 + 8).
  const int64_t per_moe = 7 * (2 * 128 * 256 + 256 + 128) + 128 * 8 + 8;
  QCOMPARE(model_cost(preset("demo-bert")).total_params, int64_t(1105188));
  QCOMPARE(model_cost(preset("demo-sparse-bert-2")).total_params, 1105188 + 2 * per_moe);
  QCOMPARE(model_cost(preset("demo-sparse-bert-4")).total_params, 1105188 + 4 * per_moe);
  QCOMPARE(model_cost(preset("demo-sparse-bert-4")).total_params, int64_t(2955076));

  // Sparse BERTs of the small BERTs: the BERT's shape, MoE in half or all of its layers.
  for (const auto& [name, dense, moe] : std::vector<std::tuple<std::string, std::string, int>>{
           {"sparse-bert-l2-h256-moe1", "bert-l2-h256", 1}, {"sparse-bert-l4-h256-moe2", "bert-l4-h256", 2},
           {"sparse-bert-l4-h256-moe4", "bert-l4-h256", 4}, {"sparse-bert-l8-h512-moe8", "bert-l8-h512", 8}}) {
    const ModelConfig c = preset(name), d = preset(dense);
    QCOMPARE(c.num_layers, d.num_layers);
    QCOMPARE(c.d_model, d.d_model);
    QCOMPARE(c.attention_layers, d.num_layers);
    QCOMPARE(c.moe_layers, int64_t(moe));
    QCOMPARE(c.num_experts, int64_t(16));
    QCOMPARE(model_cost(c).total_params - model_cost(d).total_params,
             moe * (15 * (2 * d.d_model * d.d_ff + d.d_ff + d.d_model) + d.d_model * 16 + 16));
  }
}

void TestConfig::layoutsFollowReferenceRules_data() {
  QTest::addColumn<QString>("layout");
  QTest::addColumn<int>("L");
  QTest::addColumn<int>("k");
  QTest::addColumn<QString>("expected");
  QTest::newRow("top 14/4") << "top" << 14 << 4 << "10,11,12,13";
  QTest::newRow("bottom 14/4") << "bottom" << 14 << 4 << "0,1,2,3";
  QTest::newRow("middle 14/4") << "middle" << 14 << 4 << "5,6,7,8";
  QTest::newRow("middle 12/3") << "middle" << 12 << 3 << "5,6,7";
  // MIXED is the reference rule l mod (L div k) == 0, which can place more than k.
  QTest::newRow("mixed 14/4") << "mixed" << 14 << 4 << "0,3,6,9,12";
  QTest::newRow("mixed 12/4") << "mixed" << 12 << 4 << "0,3,6,9";
  QTest::newRow("mixed 12/5") << "mixed" << 12 << 5 << "0,2,4,6,8,10";
  QTest::newRow("mixed 4/4") << "mixed" << 4 << 4 << "0,1,2,3";
  QTest::newRow("none") << "top" << 6 << 0 << "";
}

void TestConfig::layoutsFollowReferenceRules() {
  QFETCH(QString, layout);
  QFETCH(int, L);
  QFETCH(int, k);
  QFETCH(QString, expected);
  QStringList got;
  for (int l = 0; l < L; ++l)
    if (layer_is_selected(layout_from_string(layout.toStdString()), k, L, l)) got << QString::number(l);
  QCOMPARE(got.join(','), expected);
  // The count the structure view and `smx info` show is the real one.
  QCOMPARE(selected_layer_count(layout_from_string(layout.toStdString()), k, L), int64_t(got.size()));
}

void TestConfig::jsonRoundTrip() {
  ModelConfig c = preset("sparse-mixer");
  c.mixing = MixingKind::Toeplitz;
  c.router.kind = RouterKind::TokensChoose;
  c.router.top_k = 2;
  c.router.jitter = 0.01;
  c.moe_layout = Layout::Mixed;
  const std::string text = config_to_json_text(c);
  const ModelConfig back = config_from_json_text(text);
  QCOMPARE(config_to_json_text(back), text);
  // A config may start from a preset and override fields.
  const ModelConfig demo = config_from_json_text(R"({"preset": "demo", "d_model": 64, "router": {"top_k": 1}})");
  QCOMPARE(demo.d_model, int64_t(64));
  QCOMPARE(demo.num_layers, preset("demo").num_layers);
}

void TestConfig::badConfigsAreRejected_data() {
  QTest::addColumn<QString>("json");
  QTest::addColumn<QString>("mentions");
  QTest::newRow("zero experts") << R"({"preset":"sparse-mixer","num_experts":0})" << "num_experts";
  QTest::newRow("train cf 0") << R"({"preset":"sparse-mixer","router":{"train_capacity_factor":0}})"
                              << "router.train_capacity_factor";
  QTest::newRow("eval cf < 0") << R"({"preset":"sparse-mixer","router":{"eval_capacity_factor":-1}})"
                               << "router.eval_capacity_factor";
  QTest::newRow("heads") << R"({"preset":"bert-base","num_heads":7})" << "num_heads";
  QTest::newRow("too many attention layers") << R"({"preset":"sparse-mixer","attention_layers":15})"
                                             << "attention_layers";
  QTest::newRow("negative moe layers") << R"({"preset":"sparse-mixer","moe_layers":-1})" << "moe_layers";
  QTest::newRow("zero layers") << R"({"num_layers":0})" << "num_layers";
  QTest::newRow("unknown mixing") << R"({"mixing":"wavelet"})" << "wavelet";
  QTest::newRow("unknown router") << R"({"router":{"kind":"random"}})" << "router.kind";
  QTest::newRow("unknown layout") << R"({"moe_layout":"sideways"})" << "moe_layout";
  QTest::newRow("unknown field") << R"({"num_expert":4})" << "num_expert";
  QTest::newRow("wrong type") << R"({"d_model":"big"})" << "d_model";
  QTest::newRow("top_k > experts") << R"({"preset":"demo","router":{"kind":"tokens-choose","top_k":9}})"
                                   << "router.top_k";
  QTest::newRow("dropout 1") << R"({"dropout":1.0})" << "dropout";
  QTest::newRow("not json") << "{d_model: 3" << "JSON";
  QTest::newRow("unknown preset") << R"({"preset":"gpt-5"})" << "gpt-5";
}

void TestConfig::badConfigsAreRejected() {
  QFETCH(QString, json);
  QFETCH(QString, mentions);
  try {
    config_from_json_text(json.toStdString());
    QFAIL("accepted a bad config");
  } catch (const ConfigError& e) {
    QVERIFY2(QString(e.what()).contains(mentions), e.what());
  }
}

void TestConfig::parameterCountsMatchModules_data() {
  QTest::addColumn<QString>("name");
  for (const auto& n : preset_names()) QTest::newRow(n.c_str()) << QString::fromStdString(n);
  QTest::newRow("custom toeplitz/tokens-choose") << "custom";
}

void TestConfig::parameterCountsMatchModules() {
  QFETCH(QString, name);
  ModelConfig c;
  if (name == "custom") {
    c = preset("demo");
    c.mixing = MixingKind::Toeplitz;
    c.router.kind = RouterKind::TokensChoose;
    c.router.top_k = 2;
    c.d_embedding = 96;
    c.expert_d_ff = 64;
  } else {
    c = preset(name.toStdString());
  }
  const ModelCost cost = model_cost(c);
  qInfo("%-22s %8.2fM parameters, %8.2fM active per token, %8.2f GFLOP/example forward", c.name.c_str(),
        double(cost.total_params) / 1e6, cost.active_params / 1e6, cost.forward_flops / 1e9);
  if (cost.total_params > 400'000'000) QSKIP("too large to instantiate in a unit test; count printed above");
  EncoderModel model(c);
  QCOMPARE(count_parameters(*model), cost.total_params);
}

void TestConfig::devicesOfThisMachine() {
  // The device field: auto, cpu, cuda and cuda:N; anything else is refused by validation.
  for (const char* ok : {"auto", "cpu", "cuda", "cuda:0", "cuda:7", "cuda:123"}) {
    TrainConfig t;
    t.device = ok;
    t.validate();
  }
  for (const char* bad : {"gpu", "cuda:", "cuda:-1", "cuda:x", "CUDA", "cuda:1234", "cuda:0 "}) {
    TrainConfig t;
    t.device = bad;
    try {
      t.validate();
      QFAIL(qPrintable(QString("accepted device '%1'").arg(bad)));
    } catch (const ConfigError& e) {
      QVERIFY2(QString(e.what()).contains("device"), e.what());
    }
  }
  // What this machine has: the CPU first (with its memory), then every GPU LibTorch sees.
  const auto devices = inspect::list_devices();
  QVERIFY(!devices.empty());
  QCOMPARE(devices.front().id, std::string("cpu"));
  QVERIFY(devices.front().memory_bytes > 0);
  QVERIFY(inspect::describe_device(devices.front()).rfind("CPU", 0) == 0);
  const int gpus = int(devices.size()) - 1;
  for (int i = 0; i < gpus; ++i) {
    QCOMPARE(devices[size_t(i) + 1].id, "cuda:" + std::to_string(i));
    QVERIFY(devices[size_t(i) + 1].memory_bytes > 0);
  }
  QCOMPARE(gpus > 0, inspect::default_device() == "cuda");
  QCOMPARE(inspect::resolve_device("cpu"), std::string("cpu"));
  QCOMPARE(inspect::resolve_device("auto"), std::string(gpus > 0 ? "cuda:0" : "cpu"));
  if (gpus > 0) QCOMPARE(inspect::resolve_device("cuda"), std::string("cuda:0"));
  // A GPU this machine does not have is refused, saying what it has (none, here, on a CPU machine).
  const std::string missing = "cuda:" + std::to_string(gpus);
  for (const std::string& d : gpus > 0 ? std::vector<std::string>{missing} : std::vector<std::string>{"cuda", missing}) {
    try {
      inspect::resolve_device(d);
      QFAIL(qPrintable(QString("resolved missing device %1").arg(d.c_str())));
    } catch (const ConfigError& e) {
      const QString m = e.what();
      QVERIFY2(m.contains("'" + QString::fromStdString(d) + "' is not on this machine"), e.what());
      QVERIFY2(m.contains(gpus == 0 ? "no CUDA device" : "CUDA device"), e.what());
    }
  }
}

void TestConfig::flopsMatchHandCount() {
  // BERT-Base per layer: 24 S D^2 (q,k,v,o, two FF matmuls with d_ff = 4D) + 4 S^2 D (scores, weighted sum).
  const ModelConfig bert = preset("bert-base");
  const double S = 512, D = 768, V = 32000, P = 80;
  const double per_layer = 24 * S * D * D + 4 * S * S * D;
  const double hand = 12 * per_layer + 2 * S * D * D /*embedding projection*/ +
                      2 * D * D + 4 * D /*pooler, NSP*/ + P * (2 * D * D + 2 * D * V) /*MLM*/;
  const ModelCost cost = model_cost(bert, CostShape{64, 512, 80, true});
  QVERIFY(std::abs(cost.forward_flops - hand) / hand < 1e-9);
  QCOMPARE(cost.train_flops, 3 * cost.forward_flops);
  // The Sparse Mixer needs about 2.3x fewer FLOPs than BERT-Base (DESIGN.md).
  const double ratio = hand / model_cost(preset("sparse-mixer"), CostShape{64, 512, 80, true}).forward_flops;
  qInfo("bert-base / sparse-mixer forward FLOPs: %.2f", ratio);
  QVERIFY(ratio > 2.1 && ratio < 2.5);
  // Halving the capacity factor halves the expert FLOPs.
  const auto sm = model_cost(preset("sparse-mixer"), CostShape{64, 512, 80, true});
  const auto fast = model_cost(preset("fast-sparse-mixer"), CostShape{64, 512, 80, true});
  const double expert_flops = 4 * 512.0 * 2048 * 512;  // one token per expert slot x S per example at cf 1
  QVERIFY(std::abs((sm.layers[5].forward_flops - fast.layers[5].forward_flops) - expert_flops / 2) < 1);
}

QTEST_APPLESS_MAIN(TestConfig)
