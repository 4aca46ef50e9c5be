// The training curves view's legend entry, shared by training_curves_view.cpp
// and training_curves_view_plot.cpp only.
#pragma once

#include <QColor>
#include <QString>
#include <QVector>
#include <algorithm>
#include <limits>
#include <vector>

#include "widgets/curve_math.h"
#include "widgets/training_curves_view.h"

class QCPGraph;

namespace smx::widgets {

inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// One legend entry: a run, or a group of seeds drawn as mean +- sd. Keeps
// the curve as drawn before decimation (x sorted, raw, smoothed, band
// edges) so that live points and zooming only redo what changed. A run
// whose x is already sorted and finite is read in place (`direct`): a 1M
// point run is not copied.
struct TrainingCurvesView::Entry {
  enum Stale { Fresh, Decimate, Tail, Full };
  QVector<int> runs;
  QString label;
  QColor colour;
  bool band = false;
  Stale stale = Full;
  bool direct = false;  ///< x and raw are the run's own vectors (see xs(), ys())
  size_t consumed = 0;  ///< points of the run already in smooth (single runs)
  std::vector<double> x, raw, smooth, low, high;  ///< x and raw only when not direct
  curves::Smoother smoother;
  curves::Range range, positive;  ///< of raw and the band edges; positive: values > 0 (log axis)
  QCPGraph *g_raw = nullptr, *g_smooth = nullptr, *g_high = nullptr, *g_low = nullptr;
  QVector<Marker> markers;
  int drawn = 0;

  void mark(Stale s) { stale = std::max(stale, s); }
};

}  // namespace smx::widgets
