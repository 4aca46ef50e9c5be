// Training curves: one scalar metric of one or more runs against step or
// wall time, smoothed with the raw curve faint underneath, decimated per
// pixel with min/max so spikes survive, seeds of one config drawn as a mean
// with a +-1 sd band, and the runs' stability events marked (click one to
// jump there). Live points are appended cheaply and drawn once per
// event-loop turn. Fed plain series; knows nothing of the engine.
#pragma once

#include <QColor>
#include <QString>
#include <QStringList>
#include <QVector>
#include <QWidget>
#include <vector>

#include "widgets/curve_math.h"

class QCPItemStraightLine;
class QCPItemText;
class QCPRange;
class QCheckBox;
class QComboBox;
class QCustomPlot;
class QHBoxLayout;
class QLabel;
class QSlider;
class QToolButton;
class QVBoxLayout;

namespace smx::widgets {

struct CurveEvent {
  double step = 0;
  QString kind;     ///< "nonfinite", "loss-spike", "checkpoint", ...
  QString message;
};

struct CurveRun {
  QString label;
  /// Runs with the same non-empty group differ only in their seed (the app
  /// uses a hash of the config without the seed); drawn as one mean +- sd
  /// band when seeds are grouped.
  QString group;
  curves::Series series;       ///< the selected metric: x = step (ascending; out of order is sorted)
  std::vector<double> wall;    ///< seconds since the run started, parallel to series.x (may be empty)
  QVector<CurveEvent> events;  ///< only stability events are drawn
};

class TrainingCurvesView : public QWidget {
  Q_OBJECT
 public:
  enum class YRange { Auto, FromZero, IgnoreOutliers };
  enum class XAxis { Step, WallTime };

  explicit TrainingCurvesView(QWidget* parent = nullptr);
  ~TrainingCurvesView() override;

  /// The metrics the user can pick from. The current one is kept if still
  /// listed, else the first is taken. Like setMetricName, it does not emit
  /// metricChanged: that is for the user's picks (so the app can call both,
  /// then setRuns, without being called back in between).
  void setMetricNames(const QStringList& names);
  /// Selects `name` (added to the list if missing); labels the y axis.
  void setMetricName(const QString& name);
  QString metricName() const;
  /// The metrics offered (setMetricNames).
  QStringList metricNames() const;

  /// Replaces everything drawn and fits the axes. Runs are kept until the
  /// app feeds new ones (also when the metric changes: answer metricChanged
  /// with setRuns).
  void setRuns(QVector<CurveRun> runs);
  /// Live runs: adds points to run `index` (ignored if there is none). Only
  /// that run (or its seed group) is redone, on the next event-loop turn,
  /// however many calls arrive before it; a zoom the user chose is kept.
  /// `wall` is parallel to `steps` or empty.
  void appendPoints(int index, const std::vector<double>& steps, const std::vector<double>& values,
                    const std::vector<double>& wall = {});
  /// Live stability events of run `index`: markers are added, nothing redrawn.
  void appendEvents(int index, QVector<CurveEvent> events);

  // The options the control row shows; setting one applies it at once (the
  // replot is queued) and refits the axes.
  void setSmoothing(double weight);  ///< 0 .. 0.99; NaN is ignored
  double smoothing() const { return smoothing_; }
  void setLogY(bool on);
  void setLogX(bool on);
  void setYRangeMode(YRange mode);
  void setXAxis(XAxis axis);
  void setGroupSeeds(bool on);  ///< off by default; a group of one run is drawn as a run
  /// Projector mode: fonts ~1.5x, thicker lines, expert controls hidden.
  void setClassroomMode(bool on);

  /// PNG, SVG or PDF (vector) of the plot, or CSV of the raw points, by the
  /// suffix; false and *error on failure.
  bool exportView(const QString& path, QString* error = nullptr) const;

  // What is drawn, for tests. Pending live updates are drawn on the next
  // event-loop turn; these read what is drawn now.
  int graphCount() const;        ///< a run: raw (faint) and smoothed; a seed group: also the band's two edges
  int bandCount() const;         ///< seed groups drawn as mean +- sd
  /// Milliseconds of the plot's replots, averaged over its recent ones (QCustomPlot's own timer).
  double replotMs() const;
  int eventMarkerCount() const;  ///< drawn stability events
  int drawnPointCount() const;   ///< points handed to the plot after decimation
  QCPRange xRange() const;  ///< the axes' ranges (callers include qcustomplot.h)
  QCPRange yRange() const;

 Q_SIGNALS:
  /// The user picked another metric: the app answers with that metric's series.
  void metricChanged(const QString& metric);
  /// A stability event marker was clicked: the routing view jumps to its step.
  void eventClicked(double step);

 protected:
  void resizeEvent(QResizeEvent* event) override;

 private:
  struct Entry;
  struct Marker {
    QCPItemStraightLine* line = nullptr;
    double step = 0, x = 0;
    QString kind, text;
  };

  QWidget* buildControls();
  void placeExpertControls();
  void chooseExportFile();
  void metricPicked(const QString& metric);

  // Updates are marked, then done together by refresh() (now, or on the
  // next event-loop turn after schedule()).
  void schedule();
  void refresh(bool replot_now);
  void buildEntries();
  void recompute(Entry& e);
  bool extend(Entry& e);
  void setGraphData(Entry& e);
  void addMarkers(Entry& e, int run, const QVector<CurveEvent>& events);
  void clearMarkers(Entry& e);
  void applyStyle();
  void applyRanges();
  void fitAgain();
  void userChangedRange();
  const std::vector<double>& xs(const Entry& e) const;
  const std::vector<double>& ys(const Entry& e) const;
  const Marker* markerAt(const QPoint& pos) const;  ///< the marker within a few pixels of pos, if any
  int buckets() const;
  double wallScale() const;
  QString xLabel() const;

  QCustomPlot* plot_;
  QComboBox* metric_ = nullptr;
  QSlider* smoothing_slider_ = nullptr;
  QLabel* smoothing_value_ = nullptr;
  QCheckBox* log_x_ = nullptr;
  QCheckBox* log_y_ = nullptr;
  QComboBox* y_range_ = nullptr;
  QComboBox* x_axis_ = nullptr;
  QCheckBox* group_seeds_ = nullptr;
  QToolButton* export_ = nullptr;
  QVector<QWidget*> expert_;  ///< hidden in classroom mode
  QWidget* expert_box_ = nullptr;  ///< holds expert_: in the top row, or a row of its own when narrow
  QVBoxLayout* controls_ = nullptr;
  QHBoxLayout* top_row_ = nullptr;
  QCPItemText* hint_ = nullptr;

  std::vector<CurveRun> runs_;  ///< not a QVector: entries read into it, and it must never detach
  std::vector<Entry> entries_;
  std::vector<int> entry_of_run_;  ///< run index -> entry index
  double smoothing_ = 0.6;
  bool log_x_on_ = false, log_y_on_ = false;
  YRange y_mode_ = YRange::Auto;
  XAxis x_mode_ = XAxis::Step;
  bool group_on_ = false;
  bool classroom_ = false;
  double wall_max_ = 0;            ///< largest wall time seen, seconds: picks seconds or minutes
  double applied_wall_scale_ = 1;  ///< the scale the entries' x were computed with
  bool structure_dirty_ = true;    ///< entries must be rebuilt (runs or grouping changed)
  bool ranges_dirty_ = true;
  bool update_queued_ = false;
  bool user_range_ = false;  ///< the user dragged or zoomed: stop auto-fitting until double-click
  bool setting_range_ = false;
  bool setting_metric_ = false;  ///< the app, not the user, is changing the metric
  int used_buckets_ = 0;
};

}  // namespace smx::widgets
