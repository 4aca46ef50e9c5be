// The studio's Model page: pick a preset or open a config file and see the
// model's structure, parameters and cost per layer.
#pragma once

#include <QWidget>

class QComboBox;
class QSpinBox;

namespace smx::widgets {
class ModelStructureView;
}

namespace smx::app {

class ModelPage : public QWidget {
  Q_OBJECT
 public:
  explicit ModelPage(QWidget* parent = nullptr);
  /// Shows a preset; false (and a status message) if unknown.
  bool showPreset(const QString& name);
  /// Loads a JSON config; on error shows a message box unless quiet, and keeps the current model.
  bool openConfig(const QString& path, bool quiet = false);
  widgets::ModelStructureView* structureView() const { return view_; }
  /// The preset or file shown ("mine.json" for a file).
  QString shownName() const;
  void exportChart();

 Q_SIGNALS:
  void message(const QString& text);

 private:
  void refresh();

  QComboBox* presets_;
  QSpinBox* batch_;
  widgets::ModelStructureView* view_;
  QString config_path_;  // empty = the preset in the combo box
};

}  // namespace smx::app
