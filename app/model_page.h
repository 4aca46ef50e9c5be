// The studio's main window. For now: pick a preset or open a config file and
// see the model's structure and cost; training views arrive with the GUI issue.
#pragma once

#include <QMainWindow>

class QComboBox;
class QSpinBox;

namespace smx::widgets {
class ModelStructureView;
}

namespace smx::app {

class MainWindow : public QMainWindow {
  Q_OBJECT
 public:
  explicit MainWindow(QWidget* parent = nullptr);
  /// Shows a preset; false (and a status message) if unknown.
  bool showPreset(const QString& name);
  /// Loads a JSON config; on error shows a message box unless quiet, and keeps the current model.
  bool openConfig(const QString& path, bool quiet = false);
  widgets::ModelStructureView* structureView() const { return view_; }

 private:
  void refresh();
  void exportChart();

  QComboBox* presets_;
  QSpinBox* batch_;
  widgets::ModelStructureView* view_;
  QString config_path_;  // empty = the preset in the combo box
};

}  // namespace smx::app
