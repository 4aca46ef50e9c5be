// The run launcher: a preset or a custom config (every model, router and
// training option, grouped, each with a tooltip), pre-training corpus or a
// fine-tuning task (optionally from a finished pre-training run), device, and
// how many seeds. The form is checked by the engine's own validation before
// anything starts; a bad config shows the engine's message and starts nothing.
#pragma once

#include <QDialog>
#include <QHash>
#include <QVector>

#include "app/run_controller.h"

class QComboBox;
class QLabel;
class QLineEdit;
class QSpinBox;
class QWidget;
class QFormLayout;

namespace smx::store {
class RunStore;
}

namespace smx::app {

class LauncherDialog : public QDialog {
  Q_OBJECT
 public:
  /// store may be null (no "start from run" choices); dataDir is where runs go.
  LauncherDialog(store::RunStore* store, const QString& dataDir, bool classroom, QWidget* parent = nullptr);

  void setPreset(const QString& name);
  /// True when the form describes a decoder LM (an sMLP-family preset or config).
  bool isDecoderLm() const;
  /// Whether a field's editor is shown (a field of the other model family is hidden).
  bool fieldVisible(const QString& section, const QString& key) const;
  bool fieldEnabled(const QString& section, const QString& key) const;
  /// Sets a form value by its config path, e.g. ("training", "steps", "200").
  bool setValue(const QString& section, const QString& key, const QString& value);
  QString value(const QString& section, const QString& key) const;
  void setSeeds(int n);
  /// Processes per run (data-parallel ranks on this machine).
  void setProcesses(int n);
  /// Fine-tune from this run's newest checkpoint (0: from scratch).
  void setStartFromRun(qint64 runId);
  /// Loads a run config JSON file ({"model": ..., "training": ...}); false and a message on error.
  bool loadConfigFile(const QString& path);

  /// Validates the form; on success fills requests() and returns true, else
  /// shows the error in the dialog (errorText()) and returns false.
  bool validate();
  const QVector<RunRequest>& requests() const { return requests_; }
  QString errorText() const;

  void accept() override;

 private:
  void buildForm(bool classroom);
  void fillFrom(const std::string& runConfigJson);
  std::string collect() const;  // the run config JSON from the form
  void updateEnabled();
  /// The device choice: auto, the CPU and every CUDA device, each with its name and memory.
  static void addDeviceChoices(QComboBox* combo);
  /// Selects the item whose value (item data) is `value`.
  void selectChoice(QComboBox* combo, const QString& value);
  static QString choiceValue(const QComboBox* combo);
  void saveConfigFile();

  store::RunStore* store_;
  QString data_dir_;
  QComboBox* preset_;
  QComboBox* from_run_;
  QSpinBox* seeds_;
  QSpinBox* processes_;
  QLineEdit* name_;
  QLabel* error_;
  QHash<QString, QWidget*> editors_;  // "section/key" -> editor
  QHash<QString, QWidget*> labels_;   // "section/key" -> its label
  QHash<QString, QWidget*> group_boxes_;  // group name -> its box
  QLabel* family_ = nullptr;          // which family the form describes
  bool classroom_ = false;
  QVector<QWidget*> model_groups_;
  std::string base_json_;  // fields the form does not show are kept from here
  QVector<RunRequest> requests_;
};

}  // namespace smx::app
