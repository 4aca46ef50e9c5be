// Capacity: how full each expert's buffer is over training, which tokens lose
// their choice to capacity, and what a different eval capacity factor would
// change. One MoE layer at a time; everything is drawn in one QCustomPlot so
// an export shows the whole picture.
#pragma once

#include <QFont>
#include <QVector>
#include <QWidget>
#include <map>

#include "widgets/view_data.h"

class QComboBox;
class QCustomPlot;
class QCPAxisRect;
class QCPBars;
class QCPGraph;
class QCPItemText;
class QCPLayoutGrid;
class QCPTextElement;
class QDoubleSpinBox;
class QLabel;
class QPushButton;
class QStackedWidget;
class QToolButton;

namespace smx::widgets {

class ColorBar;
class HeatMap;

class CapacityView : public QWidget {
  Q_OBJECT
 public:
  explicit CapacityView(QWidget* parent = nullptr);
  ~CapacityView() override;

  /// All snapshots of the run so far, oldest first. When `all` starts with
  /// the snapshots already shown, only the new ones are read (live runs).
  void setSnapshots(const QVector<SnapshotPtr>& all);
  /// Result of routing a held-out batch at an eval capacity factor the user chose.
  void setEvalProbe(const CapacityProbe& probe);
  /// Larger fonts; hides the eval capacity factor control and its plot.
  void setClassroomMode(bool on);
  /// PNG/SVG/PDF of the plot, or its numbers as CSV, by the suffix of `path`.
  bool exportView(const QString& path, QString* error = nullptr) const;

  // For tests (and the app): what is drawn.
  int layerCount() const;            ///< MoE layers in the layer combo
  void setCurrentLayer(int index);   ///< index into the layer combo
  int currentLayer() const;
  int fillCellCount() const;         ///< experts x snapshots of the fill heat map
  double fillValue(int expert, int snapshot) const;  ///< NaN where nothing is drawn
  /// Bars of the second panel: per position (Tokens Choose) or per number
  /// of experts taking a token (Experts Choose).
  int positionBarCount() const;
  int evalBarCount() const;          ///< one per expert at the eval factor, 0 without a probe
  QString caption() const;           ///< "Block 3 (tokens choose): capacity 20 tokens per expert per group of 64"
  QString evalSummary() const;       ///< the line under the eval control
  QString evalError() const;         ///< the red line (probe.error), empty when none

 Q_SIGNALS:
  /// The user pressed Apply next to the eval capacity factor.
  void evalCapacityFactorRequested(double factor);

 private:
  /// Per MoE layer, what every snapshot said (NaN / empty where it said nothing).
  struct LayerSeries {
    QVector<QVector<float>> fill;  ///< [snapshot][expert]
    QVector<double> dropped, unrouted;  ///< [snapshot], in %
    int experts = 0;                    ///< most experts any snapshot reported
  };
  void buildPlot();
  void ingest(const SnapshotPtr& s);
  void updateLayerCombo();
  void redraw(bool incremental);
  void drawFill(const LayerSeries& series);
  void drawLatest(int block);
  void drawEval(int block);
  void updateFonts();
  void exportDialog();
  int currentBlock() const;
  const telemetry::MoeLayerStats* latestStats(int block, int* snapshotIndex = nullptr) const;

  QStackedWidget* stack_;
  QLabel* hint_;
  QComboBox* layer_combo_;
  QDoubleSpinBox* eval_factor_;
  QPushButton* apply_;
  QLabel* eval_label_;
  QLabel* eval_summary_;
  QLabel* eval_error_;
  QToolButton* export_;
  QCustomPlot* plot_;

  QCPTextElement* fill_title_ = nullptr;
  QCPAxisRect* fill_rect_ = nullptr;
  HeatMap* fill_map_ = nullptr;
  ColorBar* bar_ = nullptr;  ///< colour bar of the fill map
  QCPAxisRect* drop_rect_ = nullptr;
  QCPGraph* dropped_graph_ = nullptr;
  QCPGraph* unrouted_graph_ = nullptr;
  QCPLayoutGrid* bottom_grid_ = nullptr;
  QCPTextElement* pos_title_ = nullptr;
  QCPAxisRect* pos_rect_ = nullptr;
  QCPBars* pos_bars_ = nullptr;
  QCPItemText* pos_note_ = nullptr;
  QCPTextElement* eval_title_ = nullptr;
  QCPAxisRect* eval_rect_ = nullptr;
  QCPBars* train_bars_ = nullptr;
  QCPBars* eval_bars_ = nullptr;
  QCPItemText* eval_note_ = nullptr;

  QVector<SnapshotPtr> snapshots_;
  QVector<qint64> steps_;
  std::map<int, LayerSeries> layers_;  ///< by block index
  CapacityProbe probe_;
  bool has_probe_ = false;
  bool latest_experts_choose_ = false;  ///< the second panel shows experts per token
  int drawn_block_ = -1;   ///< layer the line graphs hold
  int drawn_points_ = 0;   ///< points the line graphs hold
  bool classroom_ = false;
  QFont base_font_;
};

}  // namespace smx::widgets
