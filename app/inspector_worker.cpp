#include "app/inspector_worker.h"

#include <filesystem>

#include "model/inspect/inspector.h"

namespace smx::app {

namespace {
QString describe(inspect::Inspector& in) {
  return QString("run %1 · %2 · %3 · %4")
      .arg(in.run_id())
      .arg(QString::fromStdString(in.model_config().name))
      .arg(InspectorWorker::weightsLabel(in.step(), in.live()))
      .arg(QString::fromStdString(in.device()));
}
}  // namespace

QString InspectorWorker::weightsLabel(qint64 step, bool live) {
  return live ? QString("weights of step %1 (live, running)").arg(step) : QString("checkpoint step %1").arg(step);
}

InspectorWorker::InspectorWorker() : context_(new QObject) {
  qRegisterMetaType<WhatIfResult>();
  qRegisterMetaType<widgets::PlaygroundResult>();
  qRegisterMetaType<widgets::GenerationSettings>();
  qRegisterMetaType<widgets::GenerationResult>();
  qRegisterMetaType<widgets::LeakCheckResult>();
  qRegisterMetaType<widgets::CapacityProbe>();
  qRegisterMetaType<widgets::SpeedResult>();
  context_->moveToThread(&thread_);
  thread_.setObjectName("inspector");
  thread_.start();
}

InspectorWorker::~InspectorWorker() {
  thread_.quit();
  thread_.wait();
  delete context_;
}

template <typename F>
void InspectorWorker::post(F&& job) {
  ++pending_;
  QMetaObject::invokeMethod(context_, [this, job = std::forward<F>(job)]() mutable {
    job();
    --pending_;
  }, Qt::QueuedConnection);
}

inspect::Inspector& InspectorWorker::inspector(const QString& checkpoint) {
  if (checkpoint.isEmpty()) throw inspect::InspectError("no checkpoint yet: the run writes one every checkpoint_every steps and at its end");
  if (!inspector_ || inspector_path_ != checkpoint) {
    std::filesystem::path file = checkpoint.toStdString();
    // A live copy is deleted when its run ends (or two copies later): the run's newest checkpoint then
    // holds the same or newer weights.
    if (file.parent_path().filename() == "live" && !std::filesystem::exists(file)) {
      const auto newest = inspect::latest_checkpoint(file.parent_path().parent_path());
      if (!newest.empty()) file = newest;
    }
    inspector_.reset();
    inspector_ = std::make_unique<inspect::Inspector>(file, "auto");
    inspector_path_ = checkpoint;
  }
  return *inspector_;
}

void InspectorWorker::predict(const QString& checkpoint, const QString& text) {
  post([this, checkpoint, text] {
    widgets::PlaygroundResult r;
    QString description;
    try {
      auto& in = inspector(checkpoint);
      description = describe(in);
      const auto p = in.predict(text.toStdString(), 5);
      r.device = QString::fromStdString(in.device());
      r.latency_ms = p.latency_ms;
      for (int l : p.moe_layers) r.moe_layers.push_back(l);
      for (size_t t = 0; t < p.tokens.size(); ++t) {
        widgets::PlaygroundToken tok;
        tok.piece = QString::fromStdString(p.tokens[t]);
        tok.masked = std::find(p.masked.begin(), p.masked.end(), int(t)) != p.masked.end();
        for (const auto& layer : p.experts) {
          QVector<int> e;
          if (t < layer.size())
            for (int x : layer[t]) e.push_back(x);
          tok.experts.push_back(e);
        }
        r.tokens.push_back(tok);
      }
      for (size_t m = 0; m < p.masked.size() && m < p.top.size(); ++m) {
        widgets::MaskPrediction mp;
        mp.position = p.masked[m];
        for (const auto& [piece, prob] : p.top[m]) mp.top.push_back({QString::fromStdString(piece), prob});
        r.predictions.push_back(mp);
      }
    } catch (const std::exception& e) {
      r.error = QString::fromUtf8(e.what());
    }
    Q_EMIT predicted(r, description);
  });
}

void InspectorWorker::generate(const QString& checkpoint, const QString& prompt, const widgets::GenerationSettings& settings) {
  post([this, checkpoint, prompt, settings] {
    widgets::GenerationResult r;
    QString description;
    try {
      auto& in = inspector(checkpoint);
      description = describe(in);
      inspect::GenerateSettings g;
      g.max_new_tokens = settings.max_new_tokens;
      g.temperature = settings.temperature;
      g.top_k = settings.top_k;
      g.seed = settings.seed;
      const auto out = in.generate(prompt.toStdString(), g);
      r.prompt = prompt.trimmed();
      r.continuation = QString::fromStdString(out.continuation);
      r.prompt_tokens = int(out.prompt_tokens.size());
      r.stopped = out.stopped;
      r.latency_ms = out.latency_ms;
      r.device = QString::fromStdString(in.device());
      for (int l : out.moe_layers) r.moe_layers.push_back(l);
      const size_t n = out.prompt_tokens.size() + out.new_tokens.size();
      for (size_t t = 0; t < n; ++t) {
        widgets::PlaygroundToken tok;
        tok.piece = QString::fromStdString(t < out.prompt_tokens.size() ? out.prompt_tokens[t]
                                                                         : out.new_tokens[t - out.prompt_tokens.size()]);
        for (const auto& layer : out.experts) {
          QVector<int> e;
          if (t < layer.size())
            for (int x : layer[t]) e.push_back(x);
          tok.experts.push_back(e);
        }
        r.tokens.push_back(tok);
      }
    } catch (const std::exception& e) {
      r.error = QString::fromUtf8(e.what());
    }
    Q_EMIT generated(r, description);
  });
}

void InspectorWorker::leakCheck(const QString& checkpoint, const QString& dataDir, int windows) {
  post([this, checkpoint, dataDir, windows] {
    widgets::LeakCheckResult r;
    try {
      const auto c = inspector(checkpoint).leak_check(windows, dataDir.toStdString());
      r.teacher_forced = c.teacher_forced_perplexity;
      r.token_by_token = c.token_by_token_perplexity;
      r.windows = c.windows;
      r.targets = c.targets;
      r.smoe_routing = QString::fromStdString(c.smoe_routing);
    } catch (const std::exception& e) {
      r.error = QString::fromUtf8(e.what());
    }
    Q_EMIT leakChecked(r);
  });
}

void InspectorWorker::whatIf(const QString& checkpoint, const QString& text, double capacityFactor,
                             const QString& router) {
  post([this, checkpoint, text, capacityFactor, router] {
    WhatIfResult r;
    try {
      auto& in = inspector(checkpoint);
      r.routing = in.route(text.toStdString(), capacityFactor, router.toStdString());
      QStringList parts;
      parts << weightsLabel(in.step(), in.live());
      parts << (capacityFactor > 0 ? QString("capacity factor %1").arg(capacityFactor)
                                   : QString("capacity factor %1 (model's)")
                                         .arg(in.model_config().router.eval_capacity_factor));
      parts << (router.isEmpty() ? QString::fromStdString(to_string(in.model_config().router.kind)) + " (model's)"
                                 : router);
      r.caption = "What-if: " + parts.join(", ");
    } catch (const std::exception& e) {
      r.error = QString::fromUtf8(e.what());
    }
    Q_EMIT whatIfReady(r);
  });
}

void InspectorWorker::capacityProbe(const QString& checkpoint, double capacityFactor) {
  post([this, checkpoint, capacityFactor] {
    widgets::CapacityProbe p;
    p.capacity_factor = capacityFactor;
    try {
      auto& in = inspector(checkpoint);
      p.weights = weightsLabel(in.step(), in.live());
      p.layers = in.route_batch(capacityFactor);
    } catch (const std::exception& e) {
      p.error = QString::fromUtf8(e.what());
    }
    Q_EMIT capacityReady(p);
  });
}

void InspectorWorker::bench(const QStringList& presets, int batch, int seqLen, const QString& device) {
  post([this, presets, batch, seqLen, device] {
    widgets::SpeedResult r;
    r.batch = batch;
    r.seq_len = seqLen;
    try {
      std::vector<std::string> names;
      for (const auto& p : presets) names.push_back(p.toStdString());
      const std::string dev = device.isEmpty() ? inspect::default_device() : device.toStdString();
      r.device = QString::fromStdString(dev);
      const auto rows = inspect::speed_bench(names, batch, seqLen, dev,
                                             [this](const std::string& line) { Q_EMIT benchProgress(QString::fromStdString(line)); });
      for (const auto& row : rows)
        r.rows.push_back({QString::fromStdString(row.preset), row.train_ms_per_example, row.infer_ms_per_example,
                          row.forward_gflops_per_example});
    } catch (const std::exception& e) {
      r.error = QString::fromUtf8(e.what());
    }
    Q_EMIT benchReady(r);
  });
}

}  // namespace smx::app
