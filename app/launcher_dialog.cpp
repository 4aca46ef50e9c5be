#include "app/launcher_dialog.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDialogButtonBox>
#include <QDoubleSpinBox>
#include <QFile>
#include <QFileDialog>
#include <QFormLayout>
#include <QGridLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QScrollArea>
#include <QSpinBox>
#include <QThread>
#include <QTabWidget>
#include <QVBoxLayout>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "app/config_fields.h"
#include "app/run_list_model.h"
#include "model/config/model_config.h"
#include "model/config/train_config.h"
#include "model/data/tasks.h"
#include "model/inspect/inspector.h"
#include "model/inspect/runtime.h"
#include "model/store/run_store.h"
#include "widgets/view_style.h"

namespace smx::app {

namespace {

QString fieldId(const ConfigField& f) { return f.section + "/" + f.key; }

nlohmann::json::json_pointer pointer(const ConfigField& f) {
  return nlohmann::json::json_pointer("/" + f.section.toStdString() + "/" + f.key.toStdString());
}

/// A number in a line edit: scientific values (1e-4) are common here and spin boxes show them badly.
class NumberEdit : public QLineEdit {
 public:
  NumberEdit(bool integer, QWidget* parent) : QLineEdit(parent), integer_(integer) {}
  bool integer_;
};

}  // namespace

LauncherDialog::LauncherDialog(store::RunStore* store, const QString& dataDir, bool classroom, QWidget* parent)
    : QDialog(parent), store_(store), data_dir_(dataDir) {
  setWindowTitle("New run");
  auto* layout = new QVBoxLayout(this);

  auto* top = new QGridLayout;
  preset_ = new QComboBox;
  preset_->setObjectName("preset");
  addPresetItems(preset_);
  preset_->setToolTip("Start from a published configuration; every field below can then be changed. Encoders "
                      "(BERT, Sparse Mixer) pre-train with masked-language modelling; decoder language models (the "
                      "sMLP paper's gMLP, sMLP and Transformer-LM) with next-token prediction.");
  from_run_ = new QComboBox;
  from_run_->addItem("— (pre-train, or fine-tune from scratch)", qlonglong(0));
  if (store_) {
    try {
      for (const auto& r : store_->list_runs())
        if (runTask(r.config_json) == "pretrain" && !runIsLm(r) && r.last_step > 0)  // encoders only
          from_run_->addItem(QString("run %1: %2 (%3, step %4)")
                                 .arg(r.id)
                                 .arg(QString::fromStdString(r.name), QString::fromStdString(r.status))
                                 .arg(r.last_step),
                             qlonglong(r.id));
    } catch (const std::exception&) {
    }
  }
  from_run_->setToolTip("Fine-tune a pre-trained model: the model comes from that run's newest checkpoint, with a new "
                        "classifier head. Pick a task other than pretrain below.");
  seeds_ = new QSpinBox;
  seeds_->setRange(1, 50);
  seeds_->setToolTip("Run the same configuration with this many seeds (seed, seed+1, ...); the curves then show their "
                     "mean and spread.");
  processes_ = new QSpinBox;
  processes_->setObjectName("processes");
  processes_->setRange(1, std::max(1, QThread::idealThreadCount()));
  processes_->setToolTip("Train with this many processes on this machine (data parallelism on PyTorch's c10d/Gloo): "
                         "each trains on its share of every batch, so the batch size must divide by it; the run is "
                         "the same as on one process, and Pause and Stop reach every process. The status bar shows "
                         "each process's tokens/s.");
  name_ = new QLineEdit;
  name_->setPlaceholderText("the preset's name");
  name_->setToolTip("A name for the run list.");
  top->addWidget(new QLabel("Preset"), 0, 0);
  top->addWidget(preset_, 0, 1);
  top->addWidget(new QLabel("Run name"), 0, 2);
  top->addWidget(name_, 0, 3);
  top->addWidget(new QLabel("Start from run"), 1, 0);
  top->addWidget(from_run_, 1, 1);
  top->addWidget(new QLabel("Seeds"), 1, 2);
  top->addWidget(seeds_, 1, 3);
  top->addWidget(new QLabel("Processes"), 1, 4);
  top->addWidget(processes_, 1, 5);
  family_ = new QLabel;
  family_->setObjectName("family");
  family_->setWordWrap(true);
  top->addWidget(family_, 2, 0, 1, 4);
  layout->addLayout(top);

  buildForm(classroom);

  error_ = new QLabel;
  widgets::styleAsError(error_);
  layout->addWidget(error_);

  auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel);
  buttons->button(QDialogButtonBox::Ok)->setText("Start");
  auto* open = buttons->addButton("Open config…", QDialogButtonBox::ActionRole);
  auto* save = buttons->addButton("Save config…", QDialogButtonBox::ActionRole);
  connect(open, &QPushButton::clicked, this, [this] {
    const QString f = QFileDialog::getOpenFileName(this, "Open run config", {}, "JSON (*.json);;All files (*)");
    if (!f.isEmpty()) loadConfigFile(f);
  });
  connect(save, &QPushButton::clicked, this, &LauncherDialog::saveConfigFile);
  connect(buttons, &QDialogButtonBox::accepted, this, &LauncherDialog::accept);
  connect(buttons, &QDialogButtonBox::rejected, this, &LauncherDialog::reject);
  layout->addWidget(buttons);

  connect(preset_, &QComboBox::currentTextChanged, this, &LauncherDialog::setPreset);
  connect(from_run_, &QComboBox::currentIndexChanged, this, &LauncherDialog::updateEnabled);
  setPreset("demo");
  resize(900, 680);
}

void LauncherDialog::buildForm(bool classroom) {
  classroom_ = classroom;
  auto* tabs = new QTabWidget;
  QHash<QString, QFormLayout*> groups;
  QHash<QString, QWidget*> pages;
  // task_names() lists the folder tasks; the offline WordNet task is the one
  // "start from run" picks (updateEnabled), so it must be a choice too.
  QStringList tasks = {"pretrain", "wordnet-lexname"};
  for (const auto& t : data::task_names())
    if (!tasks.contains(QString::fromStdString(t))) tasks << QString::fromStdString(t);

  for (const ConfigField& f : configFields()) {
    const QString page = f.section == "model" ? "Model" : "Training";
    if (!pages.contains(page)) {
      auto* scroll = new QScrollArea;
      auto* inner = new QWidget;
      auto* grid = new QGridLayout(inner);
      grid->setAlignment(Qt::AlignTop);
      scroll->setWidget(inner);
      scroll->setWidgetResizable(true);
      pages.insert(page, inner);
      tabs->addTab(scroll, page);
    }
    if (!groups.contains(f.group)) {
      auto* box = new QGroupBox(f.group);
      auto* form = new QFormLayout(box);
      auto* grid = static_cast<QGridLayout*>(pages[page]->layout());
      const int n = grid->count();
      grid->addWidget(box, n / 2, n % 2);
      groups.insert(f.group, form);
      group_boxes_.insert(f.group, box);
      if (f.section == "model") model_groups_.push_back(box);
    }
    QWidget* editor = nullptr;
    switch (f.kind) {
      case ConfigField::Int:
      case ConfigField::Real: editor = new NumberEdit(f.kind == ConfigField::Int, this); break;
      case ConfigField::Bool: editor = new QCheckBox; break;
      case ConfigField::Choice: {
        // Each item's data is the config value; its text may say more (a device's name and memory).
        auto* c = new QComboBox;
        if (f.key == "device") addDeviceChoices(c);
        else
          for (const QString& v : f.key == "task" ? tasks : f.choices) c->addItem(v, v);
        editor = c;
        break;
      }
      case ConfigField::Text: editor = new QLineEdit; break;
    }
    editor->setToolTip(f.tooltip);
    editor->setObjectName(fieldId(f));
    auto* label = new QLabel(f.label);
    label->setToolTip(f.tooltip);
    groups[f.group]->addRow(label, editor);
    if (classroom && f.expert) {
      label->hide();
      editor->hide();
    }
    editors_.insert(fieldId(f), editor);
    labels_.insert(fieldId(f), label);
    if (f.key == "smoe_routing" || f.key == "task" || f.key == "device")
      connect(static_cast<QComboBox*>(editor), &QComboBox::currentTextChanged, this, &LauncherDialog::updateEnabled);
  }
  layout()->addWidget(tabs);
}

void LauncherDialog::addDeviceChoices(QComboBox* combo) {
  const auto devices = inspect::list_devices();
  const bool gpu = devices.size() > 1;
  combo->addItem(gpu ? tr("auto · the first GPU (cuda:0)") : tr("auto · the CPU (no GPU on this machine)"), "auto");
  for (const auto& d : devices) {
    combo->addItem(QString::fromStdString(inspect::describe_device(d)), QString::fromStdString(d.id));
    combo->setItemData(combo->count() - 1, QString::fromStdString(d.id), Qt::ToolTipRole);
  }
  if (!gpu) combo->setToolTip(tr("LibTorch sees no CUDA device here (%1): runs train on the CPU.")
                                  .arg(QString::fromStdString(inspect::runtime_description())));
}

void LauncherDialog::selectChoice(QComboBox* combo, const QString& value) {
  int i = combo->findData(value);
  if (i < 0 && value == "cuda") i = combo->findData("cuda:0");  // "cuda" is the first GPU
  if (i < 0) i = combo->findText(value);
  if (i < 0 && combo == editors_.value("training/device")) {
    // A config made on another machine: keep its GPU visible; validation says what this machine has.
    combo->addItem(tr("%1 (not on this machine)").arg(value), value);
    i = combo->count() - 1;
  }
  if (i >= 0) combo->setCurrentIndex(i);
}

QString LauncherDialog::choiceValue(const QComboBox* combo) {
  const QVariant v = combo->currentData();
  return v.isValid() ? v.toString() : combo->currentText();
}

void LauncherDialog::fillFrom(const std::string& runConfigJson) {
  base_json_ = runConfigJson;
  const auto j = nlohmann::json::parse(runConfigJson);
  for (const ConfigField& f : configFields()) {
    QWidget* w = editors_.value(fieldId(f));
    const auto p = pointer(f);
    if (!w || !j.contains(p)) continue;
    const auto& v = j.at(p);
    if (auto* c = qobject_cast<QCheckBox*>(w)) c->setChecked(v.is_boolean() && v.get<bool>());
    else if (auto* c = qobject_cast<QComboBox*>(w)) selectChoice(c, QString::fromStdString(v.is_string() ? v.get<std::string>() : v.dump()));
    else if (auto* e = qobject_cast<QLineEdit*>(w)) {
      if (v.is_string()) e->setText(QString::fromStdString(v.get<std::string>()));
      else if (v.is_number_float()) e->setText(QString::number(v.get<double>(), 'g', 8));
      else e->setText(QString::fromStdString(v.dump()));
    }
  }
}

std::string LauncherDialog::collect() const {
  auto j = nlohmann::json::parse(base_json_);
  const bool decoder = isDecoderLm();
  for (const ConfigField& f : configFields()) {
    QWidget* w = editors_.value(fieldId(f));
    if (!w) continue;
    // A field of the other family keeps what the preset or file says (it is hidden).
    if ((f.family == ConfigField::DecoderOnly && !decoder) || (f.family == ConfigField::EncoderOnly && decoder)) continue;
    const auto p = pointer(f);
    if (auto* c = qobject_cast<QCheckBox*>(w)) {
      j[p] = c->isChecked();
    } else if (auto* c = qobject_cast<QComboBox*>(w)) {
      j[p] = choiceValue(c).toStdString();
    } else if (auto* e = dynamic_cast<NumberEdit*>(w)) {
      bool ok = false;
      const QString t = e->text().trimmed();
      const double v = t.toDouble(&ok);
      if (!ok || !std::isfinite(v))
        throw ConfigError(QString("%1: '%2' is not a number").arg(f.label, t).toStdString());
      if (v < f.min || v > f.max)
        throw ConfigError(QString("%1: %2 is outside %3 .. %4").arg(f.label, t).arg(f.min).arg(f.max).toStdString());
      if (e->integer_) {
        if (v != std::floor(v)) throw ConfigError(QString("%1: '%2' must be a whole number").arg(f.label, t).toStdString());
        j[p] = static_cast<int64_t>(v);
      } else {
        j[p] = v;
      }
    } else if (auto* e = qobject_cast<QLineEdit*>(w)) {
      j[p] = e->text().toStdString();
    }
  }
  return j.dump();
}

void LauncherDialog::setPreset(const QString& name) {
  if (isPresetHeader(name)) return;  // a family's header line, not a preset
  try {
    const ModelConfig m = preset(name.toStdString());
    fillFrom(run_config_to_json_text(m, recommended_pretraining(m)));
    if (preset_->currentText() != name) preset_->setCurrentText(name);
    error_->hide();
  } catch (const std::exception& e) {
    error_->setText(QString::fromUtf8(e.what()));
    error_->show();
  }
  updateEnabled();
}

bool LauncherDialog::setValue(const QString& section, const QString& key, const QString& value) {
  QWidget* w = editors_.value(section + "/" + key);
  if (!w) return false;
  if (auto* c = qobject_cast<QCheckBox*>(w)) c->setChecked(value == "true" || value == "1");
  else if (auto* c = qobject_cast<QComboBox*>(w)) {
    if (c->findData(value) < 0 && c->findText(value) < 0) return false;
    selectChoice(c, value);
  } else if (auto* e = qobject_cast<QLineEdit*>(w)) e->setText(value);
  return true;
}

QString LauncherDialog::value(const QString& section, const QString& key) const {
  QWidget* w = editors_.value(section + "/" + key);
  if (auto* c = qobject_cast<QCheckBox*>(w)) return c->isChecked() ? "true" : "false";
  if (auto* c = qobject_cast<QComboBox*>(w)) return choiceValue(c);
  if (auto* e = qobject_cast<QLineEdit*>(w)) return e->text();
  return {};
}

void LauncherDialog::setSeeds(int n) { seeds_->setValue(n); }
void LauncherDialog::setProcesses(int n) { processes_->setValue(n); }

void LauncherDialog::setStartFromRun(qint64 runId) {
  const int i = from_run_->findData(qlonglong(runId));
  from_run_->setCurrentIndex(std::max(i, 0));
}

bool LauncherDialog::isDecoderLm() const {
  try {
    const auto j = nlohmann::json::parse(base_json_);
    return j.contains("model") && j["model"].value("family", std::string()) == "decoder-lm";
  } catch (const std::exception&) {
    return false;
  }
}

bool LauncherDialog::fieldVisible(const QString& section, const QString& key) const {
  const QWidget* w = editors_.value(section + "/" + key);
  return w && !w->isHidden();
}

bool LauncherDialog::fieldEnabled(const QString& section, const QString& key) const {
  const QWidget* w = editors_.value(section + "/" + key);
  return w && w->isEnabled() && w->parentWidget() && w->parentWidget()->isEnabled();
}

void LauncherDialog::updateEnabled() {
  const bool from_run = from_run_->currentData().toLongLong() != 0;
  const bool decoder = isDecoderLm();
  for (QWidget* g : model_groups_) {
    g->setEnabled(!from_run);
    g->setToolTip(from_run ? "The model comes from the chosen run's checkpoint." : QString());
  }
  if (from_run && value("training", "task") == "pretrain") setValue("training", "task", "wordnet-lexname");
  // Only the fields of this model family are shown; a group left empty is hidden.
  QHash<QString, bool> group_shown;
  for (const ConfigField& f : configFields()) {
    const bool applies = f.family == ConfigField::Both || (f.family == ConfigField::DecoderOnly) == decoder;
    const bool shown = applies && !(classroom_ && f.expert);
    if (QWidget* e = editors_.value(fieldId(f))) e->setVisible(shown);
    if (QWidget* l = labels_.value(fieldId(f))) l->setVisible(shown);
    group_shown[f.group] = group_shown.value(f.group, false) || applies;
  }
  for (auto it = group_shown.begin(); it != group_shown.end(); ++it)
    if (QWidget* box = group_boxes_.value(it.key())) box->setVisible(it.value());
  // Decoder LMs: the routing prefix means something for partial prediction only; the task is next-token prediction.
  const QString smoe = value("model", "smoe_routing");
  if (QWidget* w = editors_.value("model/smoe_prefix_fraction")) w->setEnabled(smoe == "partial");
  if (QWidget* w = editors_.value("model/smoe_balancing_weight")) w->setEnabled(smoe == "partial" || smoe == "learned");
  if (QWidget* w = editors_.value("training/task")) {
    if (decoder && value("training", "task") != "pretrain") setValue("training", "task", "pretrain");
    w->setEnabled(!decoder);
    QString tip;
    for (const ConfigField& f : configFields())
      if (f.key == "task") tip = f.tooltip;
    w->setToolTip(decoder ? "A decoder language model trains with next-token prediction on the corpus (task pretrain); "
                            "fine-tuning tasks need an encoder preset."
                          : tip);
  }
  // bf16 autocast applies on a GPU only.
  if (QWidget* w = editors_.value("training/bf16")) {
    const QString device = value("training", "device");
    const bool gpu = device.startsWith("cuda") || (device == "auto" && inspect::default_device() == "cuda");
    w->setEnabled(gpu);
    w->setToolTip(gpu ? "Compute in bfloat16 on the GPU (routers and losses stay float32): about twice as fast."
                      : "bf16 applies on a GPU only; on the CPU the run computes in float32.");
  }
  family_->setText(decoder ? "<b>Decoder language model</b> (sMLP family): next-token prediction on the corpus, "
                             "held-out perplexity; the Playground generates text from it."
                           : "<b>Encoder</b> (masked-language model): MLM + next-sentence pre-training, or "
                             "fine-tuning on a task.");
}

bool LauncherDialog::loadConfigFile(const QString& path) {
  QFile file(path);
  if (!file.open(QIODevice::ReadOnly)) {
    error_->setText(QString("cannot open %1: %2").arg(path, file.errorString()));
    error_->show();
    return false;
  }
  const std::string text = file.readAll().toStdString();
  try {
    ModelConfig m;
    TrainConfig t;
    try {
      run_config_from_json_text(text, m, t);
    } catch (const ConfigError&) {
      // A model config alone is fine too: training gets the recommended defaults.
      m = config_from_json_text(text);
      t = recommended_pretraining(m);
    }
    fillFrom(run_config_to_json_text(m, t));
    error_->hide();
    return true;
  } catch (const std::exception& e) {
    error_->setText(QString("%1: %2").arg(path, QString::fromUtf8(e.what())));
    error_->show();
    return false;
  }
}

void LauncherDialog::saveConfigFile() {
  const QString path = QFileDialog::getSaveFileName(this, "Save run config", "run-config.json", "JSON (*.json)");
  if (path.isEmpty()) return;
  try {
    const auto j = nlohmann::json::parse(collect());
    QFile file(path);
    if (!file.open(QIODevice::WriteOnly | QIODevice::Truncate)) throw std::runtime_error(file.errorString().toStdString());
    file.write(QByteArray::fromStdString(j.dump(2) + "\n"));
  } catch (const std::exception& e) {
    error_->setText(QString("cannot save: %1").arg(QString::fromUtf8(e.what())));
    error_->show();
  }
}

bool LauncherDialog::validate() {
  requests_.clear();
  try {
    ModelConfig model;
    TrainConfig training;
    run_config_from_json_text(collect(), model, training);
    model.validate();
    training.validate();
    inspect::resolve_device(training.device);  // a GPU this machine lacks is refused here, with what it has
    if (model.is_decoder() && !training.is_pretraining())
      throw ConfigError("'" + model.name + "' is a decoder language model: it trains only with task pretrain "
                        "(next-token prediction); fine-tuning on '" + training.task + "' needs an encoder preset");
    const qint64 from = from_run_->currentData().toLongLong();
    std::filesystem::path init;
    if (from != 0) {
      if (training.is_pretraining()) throw ConfigError("fine-tuning from a run needs a task other than pretrain");
      const auto run = store_ ? store_->find_run(from) : std::nullopt;
      if (!run) throw ConfigError("run " + std::to_string(from) + " is not in the run store");
      if (runIsLm(*run))
        throw ConfigError("run " + std::to_string(from) + " is a decoder language model: fine-tuning needs an encoder run");
      init = inspect::latest_checkpoint(store_->run_folder(from));  // a damaged row is refused with its message
      if (init.empty()) throw ConfigError("run " + std::to_string(from) + " has no loadable checkpoint yet");
    }
    const int processes = processes_->value();
    if (processes > 1 && training.batch_size % processes != 0)
      throw ConfigError("batch_size " + std::to_string(training.batch_size) + " cannot be split evenly over " +
                        std::to_string(processes) + " processes: give a multiple of " + std::to_string(processes));
    const QString base_name = name_->text().trimmed().isEmpty()
                                  ? QString::fromStdString(model.name) + (training.is_pretraining() ? "" : " → " + QString::fromStdString(training.task))
                                  : name_->text().trimmed();
    const int n = seeds_->value();
    // Seeds of one launch share a group, so the curves can show their mean and spread.
    const QString group = n > 1 ? QString("seeds-%1").arg(QString::number(qHash(QString::fromStdString(collect())), 16)) : QString();
    for (int i = 0; i < n; ++i) {
      RunRequest r;
      r.options.model = model;
      r.options.training = training;
      r.options.training.seed = training.seed + uint64_t(i);
      r.options.data_dir = data_dir_.toStdString();
      r.options.run_name = (n > 1 ? QString("%1 (seed %2)").arg(base_name).arg(r.options.training.seed) : base_name).toStdString();
      if (!init.empty()) {
        r.options.init_checkpoint = init;
        r.options.parent_run = from;
      }
      r.options.dist.world_size = processes;  // the controller starts ranks 1.. beside this process's rank 0
      r.options.dist.local_world_size = processes;
      r.label = QString::fromStdString(r.options.run_name);
      r.group = group;
      r.seed_index = i;
      requests_.push_back(std::move(r));
    }
    error_->hide();
    return true;
  } catch (const std::exception& e) {
    error_->setText(QString::fromUtf8(e.what()));
    error_->show();
    return false;
  }
}

QString LauncherDialog::errorText() const { return error_->isHidden() ? QString() : error_->text(); }

void LauncherDialog::accept() {
  if (validate()) QDialog::accept();
}

}  // namespace smx::app
