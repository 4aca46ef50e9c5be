// The router comparison: the sMLP paper's Table 4 at classroom scale. One
// button trains the demo-size sMLP and Transformer-MoE LMs (Switch, GShard,
// BASE layers, HASH layers) on the same data with the same seed; the view
// overlays their held-out perplexity against steps or wall time and lists,
// per model, final perplexity, tokens/s, load spread and dropped tokens
// beside the paper's numbers. Fed plain structs; knows nothing of the engine.
#pragma once

#include <QString>
#include <QStringList>
#include <QVector>
#include <QWidget>
#include <QtNumeric>
#include <utility>

class QLabel;
class QListWidget;
class QPushButton;
class QSpinBox;
class QTableWidget;

namespace smx::widgets {

class TrainingCurvesView;

/// What to train: LM presets or config files (in list order), steps each, one seed for all.
struct RouterComparisonPlan {
  QStringList presets;
  int steps = 400;
  int seed = 0;
};

/// One model of the comparison, as it is now. NaN: not known (yet).
struct RouterComparisonRow {
  QString preset;
  QString router;  ///< "sMLP (det. sMoE + BASE)", "Switch", "GShard", "BASE", "HASH", ...
  QString status;  ///< queued, running, finished, stopped, diverged, failed, cancelled
  qint64 run_id = 0;
  double perplexity = qQNaN();     ///< final held-out perplexity
  double tokens_per_s = qQNaN();   ///< median over the run's logged steps
  double load_spread = qQNaN();    ///< mean coefficient of variation of tokens per expert
  double dropped = qQNaN();        ///< mean fraction of choices dropped at capacity
  double forward_mflops = qQNaN(); ///< per token, from the cost model
};

class RouterComparisonView : public QWidget {
  Q_OBJECT
 public:
  explicit RouterComparisonView(QWidget* parent = nullptr);

  /// LM presets the user can pick; `checked` ones start checked (list order kept).
  void setAvailablePresets(const QStringList& presets, const QStringList& checked);
  void setPlan(const RouterComparisonPlan& plan);
  RouterComparisonPlan plan() const;
  /// The comparison's models as they are now. While any is queued or running
  /// "Compare" is disabled and "Cancel" enabled.
  void setRows(const QVector<RouterComparisonRow>& rows);
  /// Held-out perplexity of the runs against steps (or wall time: the view's x-axis choice).
  TrainingCurvesView* curves() const;
  /// PNG/SVG/PDF of the curves or CSV of the table, by the suffix.
  bool exportView(const QString& path, QString* error = nullptr) const;
  void setClassroomMode(bool on);

  int tableRowCount() const;
  /// The table's text at (row, column name), for tests: "model", "perplexity", "paper".
  QString tableText(int row, const QString& column) const;

  /// The paper's Table 4 (top: 0.8T FLOPs, 25k updates) for a router label
  /// whose first word is "sMLP" (deterministic sMoE), "Switch", "GShard",
  /// "BASE" or "HASH": perplexity and words per second; NaN for other models.
  static std::pair<double, double> paperTable4(const QString& router);

 Q_SIGNALS:
  void compareRequested(const smx::widgets::RouterComparisonPlan& plan);
  void cancelRequested();

 private:
  QListWidget* presets_;
  QSpinBox *steps_, *seed_;
  QPushButton *compare_, *cancel_;
  QLabel* summary_;
  QTableWidget* table_;
  TrainingCurvesView* curves_;
  QVector<RouterComparisonRow> rows_;
};

}  // namespace smx::widgets

Q_DECLARE_METATYPE(smx::widgets::RouterComparisonPlan)
