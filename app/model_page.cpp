#include "app/model_page.h"

#include <QAction>
#include <QComboBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QSignalBlocker>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QSettings>
#include <QSpinBox>
#include <QHBoxLayout>
#include <QPushButton>
#include <QVBoxLayout>

#include "app/config_fields.h"
#include "app/structure_rows.h"
#include "widgets/model_structure_view.h"

namespace smx::app {

ModelPage::ModelPage(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  auto* bar = new QHBoxLayout;
  layout->addLayout(bar);
  view_ = new widgets::ModelStructureView(this);
  layout->addWidget(view_, 1);

  bar->addWidget(new QLabel(tr("Preset:"), this));
  presets_ = new QComboBox(this);
  addPresetItems(presets_);
  presets_->setToolTip(tr("Encoders: the paper's models (BERT, Sparse Mixer, Fast Sparse Mixer, sparse BERT), their "
                          "scaled sizes, and a small demo that trains on a laptop CPU. Decoder language models: the "
                          "sMLP paper's gMLP, sMLP (sMoE routing) and Transformer-LM, demos and paper sizes."));
  bar->addWidget(presets_);
  bar->addWidget(new QLabel(tr("  Batch:"), this));
  batch_ = new QSpinBox(this);
  batch_->setRange(1, 4096);
  batch_->setValue(64);
  batch_->setToolTip(tr("Examples per batch. MoE capacity is computed per token group, so the batch changes "
                        "how many slots each expert has."));
  bar->addWidget(batch_);
  auto* open = new QPushButton(tr("Open config…"), this);
  open->setToolTip(tr("Show a model config file (JSON) instead of a preset."));
  connect(open, &QPushButton::clicked, this, [this] {
    const QString path = QFileDialog::getOpenFileName(this, tr("Open model config"), {}, tr("JSON (*.json)"));
    if (!path.isEmpty()) openConfig(path);
  });
  bar->addWidget(open);
  auto* exp = new QPushButton(tr("Export…"), this);
  connect(exp, &QPushButton::clicked, this, &ModelPage::exportChart);
  bar->addWidget(exp);
  bar->addStretch(1);

  // An entry with a path in its data is a config file; the others are presets.
  connect(presets_, &QComboBox::currentIndexChanged, this, [this] {
    config_path_ = presets_->currentData().toString();
    refresh();
  });
  connect(batch_, &QSpinBox::valueChanged, this, [this] { refresh(); });

  QSettings settings;
  const QString last = settings.value("model/preset", "sparse-mixer").toString();
  presets_->setCurrentText(presets_->findText(last) >= 0 && !isPresetHeader(last) ? last : QStringLiteral("sparse-mixer"));
  refresh();
}

bool ModelPage::showPreset(const QString& name) {
  if (presets_->findText(name) < 0 || isPresetHeader(name)) {
    Q_EMIT message(tr("unknown preset '%1'").arg(name));
    return false;
  }
  presets_->setCurrentText(name);  // refreshes through currentIndexChanged
  return true;
}

bool ModelPage::openConfig(const QString& path, bool quiet) {
  try {
    const ModelConfig c = config_from_file(path.toStdString());
    config_path_ = path;
    view_->setModel(structure_summary(c, batch_->value()), structure_rows(c, batch_->value()));
    // Show the file in the model box, so it never names a preset that is not shown.
    const QSignalBlocker block(presets_);
    int index = presets_->findData(path);
    if (index < 0) {
      presets_->insertItem(0, tr("file: %1").arg(QFileInfo(path).fileName()), path);
      index = 0;
    }
    presets_->setCurrentIndex(index);
    Q_EMIT message(tr("loaded %1").arg(path));
    return true;
  } catch (const ConfigError& e) {
    if (!quiet) QMessageBox::warning(this, tr("Bad config"), QString::fromStdString(e.what()));
    Q_EMIT message(QString::fromStdString(e.what()));
    return false;
  }
}

void ModelPage::refresh() {
  if (!config_path_.isEmpty() && openConfig(config_path_, true)) return;
  if (!presets_->currentData().toString().isEmpty()) return;  // a file entry whose file went bad: keep the view
  if (isPresetHeader(presets_->currentText())) return;          // a family's header line
  const ModelConfig c = preset(presets_->currentText().toStdString());
  view_->setModel(structure_summary(c, batch_->value()), structure_rows(c, batch_->value()));
  QSettings settings;
  settings.setValue("model/preset", presets_->currentText());
}

QString ModelPage::shownName() const {
  return config_path_.isEmpty() ? presets_->currentText() : QFileInfo(config_path_).fileName();
}

void ModelPage::exportChart() {
  const QString path = QFileDialog::getSaveFileName(this, tr("Export chart"), "model.pdf",
                                                    tr("PDF (*.pdf);;PNG (*.png);;CSV (*.csv)"));
  if (path.isEmpty()) return;
  if (!view_->exportChart(path)) QMessageBox::warning(this, tr("Export failed"), tr("Could not write %1").arg(path));
}

}  // namespace smx::app
