// Training curves: one scalar metric of one or more runs, smoothed with the
// raw curve faint underneath, decimated per pixel with min/max so spikes
// survive, optional log axes, and the runs' stability events marked. Fed
// plain series; knows nothing of the engine.
#pragma once

#include <QColor>
#include <QString>
#include <QVector>
#include <QWidget>

#include "widgets/curve_math.h"

class QCustomPlot;
class QCPAbstractItem;

namespace smx::widgets {

struct CurveEvent {
  double step = 0;
  QString kind;     ///< "nonfinite", "loss-spike", "checkpoint", ...
  QString message;
};

struct CurveRun {
  QString label;
  curves::Series series;       ///< the selected metric: x = step
  QVector<CurveEvent> events;  ///< only stability events are drawn
};

class TrainingCurvesView : public QWidget {
  Q_OBJECT
 public:
  explicit TrainingCurvesView(QWidget* parent = nullptr);

  void setMetricName(const QString& name);
  void setRuns(QVector<CurveRun> runs);
  /// Live runs: adds points to run `index` and redraws.
  void appendPoints(int index, const std::vector<double>& steps, const std::vector<double>& values);
  void setSmoothing(double weight);  ///< 0 .. 0.999
  void setLogY(bool on);
  void setLogX(bool on);

  int graphCount() const;        ///< two per run: raw (faint) and smoothed
  int eventMarkerCount() const;  ///< drawn stability events
  int drawnPointCount() const;   ///< points handed to the plot after decimation
  /// PNG, PDF (vector) or CSV of the raw points, by the suffix; false on failure.
  bool exportPlot(const QString& path) const;

 Q_SIGNALS:
  /// A stability event marker was clicked: the routing view jumps to its step.
  void eventClicked(double step);

 private:
  void rebuild();
  QCustomPlot* plot_;
  QString metric_;
  QVector<CurveRun> runs_;
  double smoothing_ = 0.6;
  int drawn_points_ = 0;
  QVector<QPair<QCPAbstractItem*, double>> markers_;
};

}  // namespace smx::widgets
