// The routing view's panels beside the map: experts per token (or kept per
// expert), each expert's top tokens, routing stability and the coloured probe sentence.
#include "widgets/routing_view.h"

#include <QHash>
#include <QTableWidget>
#include <QTextBrowser>
#include <algorithm>
#include <cmath>
#include <limits>
#include <qcustomplot.h>

#include "widgets/routing_view_detail.h"

namespace smx::widgets {

using telemetry::MoeLayerStats;
using telemetry::ProbeRouting;
using telemetry::Snapshot;
using namespace routing_detail;

namespace {

QColor text_colour_on(const QColor& bg) { return bg.lightnessF() > 0.55 ? Qt::black : Qt::white; }

QString css(const QColor& c) { return c.name(QColor::HexRgb); }

}  // namespace

void RoutingView::buildSidePlot() {
  side_ = new QCustomPlot(this);
  side_->setObjectName(QStringLiteral("routingBars"));
  side_->setMinimumSize(240, 160);
  side_->setAutoAddPlottableToLegend(false);
  side_title_ = new QCPTextElement(side_, QString());
  side_->plotLayout()->insertRow(0);
  side_->plotLayout()->addElement(0, 0, side_title_);
  side_->xAxis->grid()->setVisible(false);
  side_->xAxis->setSubTicks(false);
  side_->xAxis->setTickLength(0, 3);
  side_->xAxis->setTicker(QSharedPointer<QCPAxisTicker>(new ThinningTicker(side_->xAxis)));
  side_->yAxis->grid()->setPen(QPen(QColor(220, 220, 220), 1, Qt::DotLine));
  auto* group = new QCPBarsGroup(side_);
  group->setSpacingType(QCPBarsGroup::stAbsolute);
  group->setSpacing(1);
  bars_a_ = new QCPBars(side_->xAxis, side_->yAxis);
  bars_b_ = new QCPBars(side_->xAxis, side_->yAxis);
  for (auto* b : {bars_a_, bars_b_}) {
    b->setBarsGroup(group);
    b->setWidth(0.38);
    b->addToLegend();
  }
  // The legend sits between title and chart, never over the bars.
  side_->axisRect()->insetLayout()->take(side_->legend);
  side_->plotLayout()->insertRow(1);
  side_->plotLayout()->addElement(1, 0, side_->legend);
  side_->plotLayout()->setRowStretchFactor(0, 0.001);
  side_->plotLayout()->setRowStretchFactor(1, 0.001);
  side_->plotLayout()->setRowSpacing(0);
  side_->legend->setVisible(true);
  side_->legend->setFillOrder(QCPLayoutGrid::foColumnsFirst);
  side_->legend->setBorderPen(Qt::NoPen);
  side_->legend->setBrush(Qt::NoBrush);
  side_->legend->setMargins(QMargins(4, 0, 4, 0));
  side_->legend->setIconSize(16, 10);
}


void RoutingView::updateSide(const ProbeRouting* probe, const MoeLayerStats* stats) {
  const Shape s = shape_of(probe);
  const QString router = router_of(probe, stats);
  QVector<double> ka, va, kb, vb;
  QVector<double> pos;
  QVector<QString> labels;
  auto ticker = side_->xAxis->ticker().dynamicCast<QCPAxisTickerText>();
  if (router_drops_choices(router)) {
    // Per expert: probe tokens that asked for it and tokens it kept.
    const int E = s.ok() ? s.experts : 0;
    for (int e = 0; e < E; ++e) {
      int wanted = 0, kept = 0;
      for (int t = 0; t < s.tokens; ++t) {
        wanted += wanted_at(*probe, s, t, e);
        kept += assigned_at(*probe, s, t, e);
      }
      ka << e;
      va << wanted;
      kb << e;
      vb << kept;
      pos << e;
      labels << QStringLiteral("E%1").arg(e);
    }
    side_title_->setText(tr("Probe tokens per expert: wanted vs kept"));
    side_->xAxis->setLabel(tr("expert"));
    side_->yAxis->setLabel(tr("probe tokens"));
    bars_a_->setName(tr("wanted"));
    bars_a_->setPen(QPen(QColor(0x00, 0x72, 0xB2), 1));
    bars_a_->setBrush(QColor(0x56, 0xB4, 0xE9, 110));
    bars_b_->setName(tr("kept"));
    bars_b_->setPen(Qt::NoPen);
    bars_b_->setBrush(QColor(0x00, 0x72, 0xB2));
    side_->xAxis->setRange(-0.6, std::max(E, 1) - 0.4);
  } else {
    // Experts Choose: how many experts took each token, probe vs the step's batch (as shares).
    if (s.ok()) {
      double bins[3] = {0, 0, 0};
      for (int t = 0; t < s.tokens; ++t) {
        int n = 0;
        for (int e = 0; e < s.experts; ++e) n += assigned_at(*probe, s, t, e);
        bins[std::min(n, 2)] += 1;
      }
      for (int b = 0; b < 3; ++b) {
        ka << b;
        va << 100.0 * bins[b] / s.tokens;
      }
    }
    if (stats && !stats->experts_per_token.empty()) {
      double bins[3] = {0, 0, 0}, total = 0;
      for (size_t i = 0; i < stats->experts_per_token.size(); ++i) {
        const double v = stats->experts_per_token[i];
        if (!std::isfinite(v) || v < 0) continue;
        bins[std::min<size_t>(i, 2)] += v;
        total += v;
      }
      if (total > 0)
        for (int b = 0; b < 3; ++b) {
          kb << b;
          vb << 100.0 * bins[b] / total;
        }
    }
    pos = {0, 1, 2};
    labels = {tr("0"), tr("1"), tr("2+")};
    side_title_->setText(tr("How many experts took each token"));
    side_->xAxis->setLabel(tr("experts that took the token"));
    side_->yAxis->setLabel(tr("share of tokens (%)"));
    bars_a_->setName(tr("probe sentence"));
    bars_a_->setPen(Qt::NoPen);
    bars_a_->setBrush(QColor(0x00, 0x72, 0xB2));
    bars_b_->setName(tr("training batch"));
    bars_b_->setPen(Qt::NoPen);
    bars_b_->setBrush(QColor(0xE6, 0x9F, 0x00));
    side_->xAxis->setRange(-0.6, 2.6);
  }
  if (ticker) ticker->setTicks(pos, labels);
  bars_a_->setData(ka, va, true);
  bars_b_->setData(kb, vb, true);
  // A series without data leaves the legend, so it never names bars that are not there.
  for (auto* b : {bars_a_, bars_b_}) {
    if (b->data()->isEmpty()) b->removeFromLegend();
    else if (!side_->legend->hasItemWithPlottable(b)) b->addToLegend();
  }
  double top = 0;
  for (double v : va) top = std::max(top, v);
  for (double v : vb) top = std::max(top, v);
  side_->yAxis->setRange(0, top > 0 ? top * 1.18 : 1);
}

void RoutingView::updateTopTokens(const ProbeRouting* probe, const MoeLayerStats* stats) {
  // Sum the batch's per-expert top tokens over the recent snapshots.
  QVector<QHash<QString, int>> sums;
  bool any = false;
  for (const auto& snap : snapshots_) {
    const MoeLayerStats* m = find_moe(*snap, block_);
    if (!m) continue;
    if (sums.size() < int(m->top_tokens.size())) sums.resize(int(m->top_tokens.size()));
    for (size_t e = 0; e < m->top_tokens.size() && e < size_t(kMaxExperts); ++e)
      for (const auto& tc : m->top_tokens[e]) {
        if (tc.count <= 0) continue;
        sums[int(e)][qs(tc.token)] += tc.count;
        any = true;
      }
  }
  if (!any) {
    // No tokenizer-side counts: count the probe tokens each expert took instead.
    sums.clear();
    for (const auto& snap : snapshots_) {
      const ProbeRouting* p = find_probe(*snap, block_);
      const Shape s = shape_of(p);
      if (!s.ok()) continue;
      if (sums.size() < s.experts) sums.resize(s.experts);
      for (int t = 0; t < s.tokens; ++t)
        for (int e = 0; e < s.experts; ++e)
          if (assigned_at(*p, s, t, e)) sums[e][qs(p->tokens[size_t(t)])] += 1;
    }
  }
  int experts = sums.size();
  if (shape_of(probe).ok()) experts = std::max(experts, shape_of(probe).experts);
  if (stats) experts = std::max(experts, std::min(stats->num_experts, kMaxExperts));
  top_.clear();
  top_.resize(experts);
  for (int e = 0; e < sums.size(); ++e) {
    auto& list = top_[e];
    for (auto it = sums[e].cbegin(); it != sums[e].cend(); ++it) list.append({it.key(), it.value()});
    std::sort(list.begin(), list.end(), [](const TokenCount& a, const TokenCount& b) {
      return a.count != b.count ? a.count > b.count : a.token < b.token;
    });
  }

  table_->setRowCount(experts);
  for (int e = 0; e < experts; ++e) {
    auto* name = table_->item(e, 0);
    if (!name) {
      name = new QTableWidgetItem;
      name->setTextAlignment(Qt::AlignCenter);
      table_->setItem(e, 0, name);
    }
    name->setText(QStringLiteral("E%1").arg(e));
    name->setBackground(expertColor(e));
    name->setForeground(text_colour_on(expertColor(e)));
    QStringList parts;
    for (int i = 0; i < top_[e].size() && i < 6; ++i)
      parts << QStringLiteral("%1 ×%2").arg(displayPiece(top_[e][i].token)).arg(top_[e][i].count);
    auto* cell = table_->item(e, 1);
    if (!cell) {
      cell = new QTableWidgetItem;
      table_->setItem(e, 1, cell);
    }
    cell->setText(parts.isEmpty() ? tr("(none yet)") : parts.join(QStringLiteral("   ")));
    cell->setToolTip(parts.join(QStringLiteral("\n")));
  }
  table_->resizeRowsToContents();
}

void RoutingView::updateStability(const ProbeRouting* probe) {
  changed_ = -1;
  if (snapshots_.size() < 2) {
    stability_text_ = tr("Routing stability: one snapshot so far, nothing to compare with yet.");
    return;
  }
  const Snapshot& prev = *snapshots_[snapshots_.size() - 2];
  const ProbeRouting* before = find_probe(prev, block_);
  if (!before || !probe) {
    stability_text_ = tr("Routing stability: no probe routing at step %1 to compare with.").arg(prev.step);
    return;
  }
  if (!comparable(before, probe)) {
    stability_text_ = tr("Routing stability: the probe tokens differ from step %1, not comparable.").arg(prev.step);
    return;
  }
  const Shape s = shape_of(probe);
  int changed = 0;
  for (int t = 0; t < s.tokens; ++t)
    for (int e = 0; e < s.experts; ++e)
      if (assigned_at(*probe, s, t, e) != assigned_at(*before, s, t, e)) {
        ++changed;
        break;
      }
  changed_ = changed;
  stability_text_ =
      tr("Routing stability: %1 of %2 probe tokens changed expert since step %3.").arg(changed).arg(s.tokens).arg(prev.step);
}

void RoutingView::updateColouredText(const ProbeRouting* probe) {
  const Shape s = shape_of(probe);
  coloured_tokens_ = unrouted_tokens_ = 0;
  if (!s.ok()) {
    coloured_html_ = tr("<p style='color:#777'>No probe sentence for this layer.</p>");
    text_->setHtml(coloured_html_);
    return;
  }
  QString body;
  for (int t = 0; t < s.tokens; ++t) {
    QString piece = qs(probe->tokens[size_t(t)]);
    const bool word_start = piece.startsWith(QChar(0x2581));
    if (word_start) piece.remove(0, 1);
    int first = -1, count = 0;
    for (int e = 0; e < s.experts; ++e)
      if (assigned_at(*probe, s, t, e)) {
        if (first < 0) first = e;
        ++count;
      }
    const QColor bg = first >= 0 ? expertColor(first) : QColor(0xD9, 0xD9, 0xD9);
    const QColor fg = first >= 0 ? text_colour_on(bg) : QColor(0x55, 0x55, 0x55);
    if (word_start && t > 0) body += QLatin1Char(' ');
    QString style = QStringLiteral("background-color:%1; color:%2;").arg(css(bg), css(fg));
    if (count > 1) style += QStringLiteral(" font-weight:bold;");
    if (first < 0) style += QStringLiteral(" font-style:italic;");
    body += QStringLiteral("<span style=\"%1\">%2</span>").arg(style, piece.toHtmlEscaped());
    ++coloured_tokens_;
    if (first < 0) ++unrouted_tokens_;
  }
  QString legend;
  for (int e = 0; e < s.experts; ++e) {
    const QColor c = expertColor(e);
    legend += QStringLiteral("<span style=\"background-color:%1; color:%2;\">&nbsp;E%3&nbsp;</span> ")
                  .arg(css(c), css(text_colour_on(c)))
                  .arg(e);
  }
  legend += tr("<span style=\"background-color:#d9d9d9; color:#555555; font-style:italic;\">&nbsp;no expert&nbsp;</span>"
               " &nbsp; <b>bold</b>: taken by 2+ experts");
  const int pt = std::max(1, qRound(font().pointSizeF() * (classroom_ ? 1.5 : 1.0)));
  // The colour key first: with a long probe the sentence may need scrolling, the key should not.
  const QString html = QStringLiteral("<p style=\"font-size:%1pt; color:#555555;\">%2</p>"
                                      "<p style=\"font-size:%3pt; line-height:135%;\">%4</p>")
                           .arg(std::max(1, qRound(pt * 0.9)))
                           .arg(legend)
                           .arg(qRound(pt * 1.2))
                           .arg(body);
  // Live updates repeat the same text: re-setting it would reset the user's scroll position.
  if (html == coloured_html_) return;
  coloured_html_ = html;
  text_->setHtml(coloured_html_);
}

}  // namespace smx::widgets
