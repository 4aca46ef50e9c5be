// The stability lab: the paper's Table 10 in a window. The user picks
// configs and a number of seeds, the app trains every (config, seed) pair,
// and the view shows per config how many runs stayed stable, where the
// others diverged, the mean final loss, a coloured cell per seed, and the
// loss curves of all runs. Fed plain StabilityCell structs; knows nothing of
// the engine.
#pragma once

#include <QColor>
#include <QString>
#include <QStringList>
#include <QVector>
#include <QWidget>

#include "widgets/view_data.h"

class QLabel;
class QListWidget;
class QPushButton;
class QSpinBox;
class QDoubleSpinBox;
class QFormLayout;
class QStackedWidget;
class QTableWidget;
class QToolButton;

namespace smx::widgets {

class TrainingCurvesView;

class StabilityLabView : public QWidget {
  Q_OBJECT
 public:
  explicit StabilityLabView(QWidget* parent = nullptr);

  /// Presets the user can pick (bert-base, sparse-mixer, ...); checked ones stay checked.
  void setAvailableConfigs(const QStringList& presets);
  /// Fills the form; configs not among the presets (config files) are added to the list.
  void setPlan(const StabilityPlan& plan);
  /// The form's values; configs in list order.
  StabilityPlan plan() const;
  /// The batch's runs, one cell per (config, seed), as they are now. While any
  /// is queued or running the batch counts as running: "Run batch" is
  /// disabled and "Cancel" enabled.
  void setCells(const QVector<StabilityCell>& cells);
  /// Loss curves of the batch's runs: the app feeds it (label per run, x = step, y = total loss).
  TrainingCurvesView* curves() const;

  /// Larger fonts; hides batch size and steps (the learning rate stays: it is what makes runs diverge).
  void setClassroomMode(bool on);
  /// PNG/SVG/PDF of the loss curves or CSV of the per-run cells, by the suffix.
  bool exportView(const QString& path, QString* error = nullptr) const;

  int tableRowCount() const;
  /// "k/N": runs of `config` that finished out of all its runs; empty if the config has none.
  QString stableSummary(const QString& config) const;
  /// Seed cells drawn in the table's grid column (one per run).
  int seedCellCount() const;
  /// Fill colour of a run's cell by its status (finished green, diverged red, ...).
  static QColor statusColor(const QString& status);

 Q_SIGNALS:
  /// "Run batch" was clicked with at least one config checked.
  void runRequested(const StabilityPlan& plan);
  void cancelRequested();

 private:
  void requestRun();
  void rebuildTable();
  void updateButtons();
  void applyFonts();
  QStringList configOrder() const;

  QListWidget* configs_;
  QSpinBox* seeds_;
  QDoubleSpinBox* learning_rate_;
  QSpinBox* batch_;
  QSpinBox* steps_;
  QFormLayout* form_;
  QPushButton* run_;
  QPushButton* cancel_;
  QToolButton* export_;
  QLabel* form_error_;
  QStackedWidget* results_;  ///< page 0: hint, page 1: table + curves
  QTableWidget* table_;
  QLabel* legend_;
  TrainingCurvesView* curves_;
  QVector<StabilityCell> cells_;
  bool classroom_ = false;
};

}  // namespace smx::widgets
