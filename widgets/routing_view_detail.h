// Reading a probe routing safely (missing cells, corrupt sizes) and the
// thinning tick labels: shared by routing_view.cpp, routing_view_map.cpp and
// routing_view_panels.cpp only.
#pragma once

#include <QColor>
#include <QFontMetricsF>
#include <QPointer>
#include <QString>
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <qcustomplot.h>

#include "widgets/view_data.h"

namespace smx::widgets::routing_detail {

using telemetry::MoeLayerStats;
using telemetry::ProbeRouting;
using telemetry::Snapshot;

inline const QColor kChangedColour(0xD5, 0x5E, 0x00);  // vermilion: assignments the what-if changed
inline constexpr int kMaxExperts = 4096;                 // larger counts are corrupt data, not a model
inline constexpr int kMaxTokens = 1 << 20;
inline constexpr int kMaxCells = 1 << 22;

inline QString qs(const std::string& s) { return QString::fromStdString(s); }

/// Rows and columns of a probe routing; 0 when it cannot be drawn.
struct Shape {
  int tokens = 0, experts = 0;
  bool ok() const { return tokens > 0 && experts > 0; }
};

inline Shape shape_of(const ProbeRouting* p) {
  Shape s;
  if (!p) return s;
  const size_t t = p->tokens.size();
  int e = p->num_experts;
  if (e <= 0 && t > 0) e = static_cast<int>(p->probs.size() / t);
  if (t == 0 || t > size_t(kMaxTokens) || e <= 0 || e > kMaxExperts || t * size_t(e) > size_t(kMaxCells)) return s;
  s.tokens = static_cast<int>(t);
  s.experts = e;
  return s;
}

// Accessors that tolerate vectors shorter than T*E (missing cells are NaN / not set).
inline double prob_at(const ProbeRouting& p, const Shape& s, int t, int e) {
  const size_t i = size_t(t) * s.experts + e;
  if (i >= p.probs.size() || !std::isfinite(p.probs[i])) return std::numeric_limits<double>::quiet_NaN();
  return p.probs[i];
}
inline bool assigned_at(const ProbeRouting& p, const Shape& s, int t, int e) {
  const size_t i = size_t(t) * s.experts + e;
  return i < p.assigned.size() && p.assigned[i] != 0;
}
inline bool wanted_at(const ProbeRouting& p, const Shape& s, int t, int e) {
  const size_t i = size_t(t) * s.experts + e;
  return i < p.wanted.size() && p.wanted[i] != 0;
}

inline const ProbeRouting* find_probe(const Snapshot& s, int block) {
  for (const auto& p : s.probe)
    if (p.layer == block) return &p;
  return nullptr;
}
inline const MoeLayerStats* find_moe(const Snapshot& s, int block) {
  for (const auto& m : s.moe)
    if (m.layer == block) return &m;
  return nullptr;
}

/// Two routings of the same tokens through the same number of experts, both complete.
inline bool comparable(const ProbeRouting* a, const ProbeRouting* b) {
  const Shape sa = shape_of(a), sb = shape_of(b);
  if (!sa.ok() || !sb.ok() || sa.experts != sb.experts || a->tokens != b->tokens) return false;
  const size_t n = size_t(sa.tokens) * sa.experts;
  return a->assigned.size() >= n && b->assigned.size() >= n;
}

inline QString router_of(const ProbeRouting* p, const MoeLayerStats* m) {
  if (m && !m->router.empty()) return qs(m->router);
  if (p) return p->wanted.empty() ? QStringLiteral("experts-choose") : QStringLiteral("tokens-choose");
  return {};
}

/// Text ticks that thin themselves out when labels would overlap: every k-th
/// label is kept, k chosen from the axis' pixel length and the label size.
class ThinningTicker : public QCPAxisTickerText {
 public:
  explicit ThinningTicker(QCPAxis* axis) : axis_(axis) {}

 protected:
  QVector<double> createTickVector(double tickStep, const QCPRange& range) override {
    QVector<double> all = QCPAxisTickerText::createTickVector(tickStep, range);
    if (!axis_ || all.size() < 2 || range.size() <= 0) return all;
    const bool vertical = axis_->orientation() == Qt::Vertical;
    const QRect r = axis_->axisRect()->rect();
    const double length = vertical ? r.height() : r.width();
    if (length <= 0) return all;
    const QFontMetricsF fm(axis_->tickLabelFont());
    double extent = fm.height() * 1.05;
    if (!vertical) {
      extent = 0;
      for (const auto& label : mTicks) extent = std::max(extent, fm.horizontalAdvance(label));
      extent += fm.horizontalAdvance(QStringLiteral("  "));
    }
    const double per_unit = length / range.size();
    const int k = std::max(1, static_cast<int>(std::ceil(extent / per_unit)));
    if (k == 1) return all;
    QVector<double> kept;
    for (double t : all)
      if (std::lround(t) % k == 0) kept.append(t);
    return kept;
  }

 private:
  QPointer<QCPAxis> axis_;
};

}  // namespace smx::widgets::routing_detail
