// The routing view's token x expert maps: the snapshot's and the what-if's,
// with their marks, ticks, hover tool tips and mark sizes.
#include "widgets/routing_view.h"

#include <QPainterPath>
#include <QToolTip>
#include <algorithm>
#include <cmath>
#include <limits>
#include <qcustomplot.h>

#include "widgets/heat_map.h"
#include "widgets/routing_view_detail.h"

namespace smx::widgets {

using telemetry::MoeLayerStats;
using telemetry::ProbeRouting;
using telemetry::Snapshot;
using namespace routing_detail;

namespace {

// The marks drawn on the map. `aspect` (>= 1) widens the ring and the square
// to fill wide, flat cells (64 tokens leave rows a few pixels high).
QCPScatterStyle assigned_style(double size) {
  return QCPScatterStyle(QCPScatterStyle::ssCircle, QPen(Qt::white, size < 7 ? 1.0 : 1.5), QBrush(QColor(25, 25, 25)),
                         size);
}
QCPScatterStyle wanted_style(double size, double aspect = 1.0) {
  // A white ring outlined in dark grey: visible on both ends of viridis and on the legend's white.
  QPainterPath ring;
  ring.setFillRule(Qt::OddEvenFill);
  const double thick = std::clamp(9.0 / size, 0.8, 1.2);  // about 1.5 px whatever the size
  ring.addEllipse(QPointF(0, 0), 3.0 * aspect, 3.0);
  ring.addEllipse(QPointF(0, 0), 3.0 * aspect - thick, 3.0 - thick);
  return QCPScatterStyle(ring, QPen(QColor(40, 40, 40), 0.2), QBrush(Qt::white), size);
}
QCPScatterStyle changed_style(double size, double aspect = 1.0) {
  QPainterPath box;
  box.addRect(QRectF(-3.0 * aspect, -3.0, 6.0 * aspect, 6.0));
  return QCPScatterStyle(box, QPen(kChangedColour, 2.0 * 6.0 / size), Qt::NoBrush, size);
}

/// Axes of a token x expert map: experts along the bottom (and top), tokens down the left.
void setup_map_axes(QCPAxisRect* rect) {
  for (auto* axis : rect->axes()) {
    axis->grid()->setVisible(false);
    axis->setSubTicks(false);
    axis->setTickLength(0, 3);
    axis->setBasePen(QPen(QColor(120, 120, 120)));
    axis->setTickPen(QPen(QColor(120, 120, 120)));
  }
  auto* x = rect->axis(QCPAxis::atBottom);
  auto* x2 = rect->axis(QCPAxis::atTop);
  auto* y = rect->axis(QCPAxis::atLeft);
  x->setLabel(QStringLiteral("expert"));
  x->setTicker(QSharedPointer<QCPAxisTicker>(new ThinningTicker(x)));
  x2->setVisible(true);
  x2->setTicker(QSharedPointer<QCPAxisTicker>(new ThinningTicker(x2)));
  y->setTicker(QSharedPointer<QCPAxisTicker>(new ThinningTicker(y)));
  y->setRangeReversed(true);  // token 0 on top, read like text
  rect->axis(QCPAxis::atRight)->setVisible(false);
  rect->setRangeDrag(Qt::Vertical);
  rect->setRangeZoom(Qt::Vertical);
  rect->setRangeDragAxes(nullptr, y);
  rect->setRangeZoomAxes(nullptr, y);
}

void set_expert_ticks(QCPAxisRect* rect, int experts) {
  QVector<double> pos;
  QVector<QString> labels;
  for (int e = 0; e < experts; ++e) {
    pos << e;
    labels << QStringLiteral("E%1").arg(e);
  }
  for (auto type : {QCPAxis::atBottom, QCPAxis::atTop}) {
    auto ticker = rect->axis(type)->ticker().dynamicCast<QCPAxisTickerText>();
    if (ticker) ticker->setTicks(pos, labels);
  }
}

void set_token_ticks(QCPAxis* axis, const std::vector<std::string>& tokens) {
  QVector<double> pos;
  QVector<QString> labels;
  for (size_t t = 0; t < tokens.size(); ++t) {
    pos << double(t);
    labels << displayPiece(qs(tokens[t]));
  }
  if (auto ticker = axis->ticker().dynamicCast<QCPAxisTickerText>()) ticker->setTicks(pos, labels);
}

QCPItemText* make_note(QCustomPlot* plot, QCPAxisRect* rect) {
  auto* note = new QCPItemText(plot);
  note->setClipAxisRect(rect);
  note->position->setType(QCPItemPosition::ptAxisRectRatio);
  note->position->setAxisRect(rect);
  note->position->setCoords(0.5, 0.5);
  note->setPositionAlignment(Qt::AlignCenter);
  note->setColor(QColor(110, 110, 110));
  note->setVisible(false);
  return note;
}

}  // namespace

void RoutingView::buildMapPlot() {
  map_ = new QCustomPlot(this);
  map_->setObjectName(QStringLiteral("routingMap"));
  map_->setMinimumSize(320, 240);
  map_->setAutoAddPlottableToLegend(false);
  map_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
  map_->setNoAntialiasingOnDrag(true);
  map_->setMouseTracking(true);  // cell tooltips on hover, no button held

  // Plot layout: row 0 the maps grid (titles; snapshot map, what-if map, colour scale), row 1 the legend.
  auto* top = map_->plotLayout();
  top->clear();  // also deletes the default legend; ours spans the width below the maps
  top->setRowSpacing(0);
  maps_ = new QCPLayoutGrid;
  top->addElement(0, 0, maps_);
  maps_->setRowSpacing(0);
  maps_->setColumnSpacing(6);
  map_title_ = new QCPTextElement(map_, QString());
  maps_->addElement(0, 0, map_title_);
  map_rect_ = new QCPAxisRect(map_, true);
  setup_map_axes(map_rect_);
  maps_->addElement(1, 0, map_rect_);
  auto* legend = new QCPLegend;
  top->addElement(1, 0, legend);
  legend->setLayer(QStringLiteral("legend"));
  legend->setFillOrder(QCPLayoutGrid::foColumnsFirst);
  legend->setWrap(2);
  legend->setBorderPen(Qt::NoPen);
  legend->setBrush(Qt::NoBrush);
  legend->setIconSize(24, 14);
  legend->setMargins(QMargins(4, 0, 4, 2));
  map_->legend = legend;
  top->setRowStretchFactor(1, 0.001);
  maps_->setRowStretchFactor(0, 0.001);

  auto* x = map_rect_->axis(QCPAxis::atBottom);
  auto* y = map_rect_->axis(QCPAxis::atLeft);
  heat_ = new HeatMap(x, y);
  heat_->setGradient(viridisGradient());
  // Probabilities keep one fixed scale, so steps and layers compare at a glance.
  heat_->setDataRange(QCPRange(0, 1));
  // Also lines the maps' tops and bottoms up (the what-if map joins that group).
  scale_ = new ColorBar(maps_, 1, 1, heat_, tr("router probability"));

  wanted_graph_ = new QCPGraph(x, y);
  wanted_graph_->setLineStyle(QCPGraph::lsNone);
  wanted_graph_->setAdaptiveSampling(false);  // every mark is a cell: never merge them
  wanted_graph_->setScatterStyle(wanted_style(12));
  assigned_graph_ = new QCPGraph(x, y);
  assigned_graph_->setLineStyle(QCPGraph::lsNone);
  assigned_graph_->setAdaptiveSampling(false);
  assigned_graph_->setScatterStyle(assigned_style(7));
  auto legend_only = [&](const QString& name, const QCPScatterStyle& style) {
    auto* g = new QCPGraph(x, y);
    g->setLineStyle(QCPGraph::lsNone);
    g->setAdaptiveSampling(false);
    g->setScatterStyle(style);
    g->setName(name);
    return g;
  };
  legend_chosen_ = legend_only(tr("expert took the token"), assigned_style(8));
  legend_wanted_ = legend_only(tr("wanted; ring alone = dropped"), wanted_style(11, 1.6));
  legend_changed_ = legend_only(tr("changed by the what-if"), changed_style(11, 1.6));
  legend_chosen_->addToLegend(legend);
  map_note_ = make_note(map_, map_rect_);

  connect(map_, &QCustomPlot::afterLayout, this, &RoutingView::updateMarkSizes);
  connect(map_, &QCustomPlot::mouseMove, this, &RoutingView::onMapHover);
  // The what-if map follows the snapshot's token range when both show the same tokens.
  connect(y, QOverload<const QCPRange&>::of(&QCPAxis::rangeChanged), this, [this](const QCPRange& range) {
    if (what_if_rect_ && what_if_same_tokens_) what_if_rect_->axis(QCPAxis::atLeft)->setRange(range);
  });
}


void RoutingView::updateMap(const ProbeRouting* probe) {
  const Shape s = shape_of(probe);
  const int T = s.tokens, E = s.experts;
  QVector<double> values;
  QVector<double> ak, av, wk, wv;
  if (s.ok()) {
    values.resize(T * E);
    for (int t = 0; t < T; ++t)
      for (int e = 0; e < E; ++e) {
        values[t * E + e] = prob_at(*probe, s, t, e);
        if (assigned_at(*probe, s, t, e)) {
          ak << e;
          av << t;
        }
        if (wanted_at(*probe, s, t, e)) {
          wk << e;
          wv << t;
        }
      }
  }
  heat_->setData(T, E, values);
  assigned_graph_->setData(ak, av);  // keys (experts) are not sorted: let QCP sort
  wanted_graph_->setData(wk, wv);
  wanted_marks_ = wk.size();
  // The ring explains itself only where the router has wants (Tokens Choose).
  const bool tokens_choose = probe && !probe->wanted.empty();
  wanted_graph_->setVisible(tokens_choose);
  if (tokens_choose) legend_wanted_->addToLegend(map_->legend);
  else legend_wanted_->removeFromLegend(map_->legend);
  if (!tokens_choose) wanted_marks_ = 0;

  QStringList tokens;
  if (s.ok())
    for (const auto& tok : probe->tokens) tokens << qs(tok);
  if (T != map_rows_ || E != map_cols_ || tokens != map_tokens_) {
    // A new shape or probe: fit the axes; otherwise keep the user's zoom.
    auto* y = map_rect_->axis(QCPAxis::atLeft);
    set_expert_ticks(map_rect_, E);
    if (s.ok()) set_token_ticks(y, probe->tokens);
    else set_token_ticks(y, {});
    map_rect_->axis(QCPAxis::atBottom)->setRange(-0.5, std::max(E, 1) - 0.5);
    map_rect_->axis(QCPAxis::atTop)->setRange(-0.5, std::max(E, 1) - 0.5);
    y->setRange(-0.5, std::max(T, 1) - 0.5);
    map_rows_ = T;
    map_cols_ = E;
    map_tokens_ = tokens;
  }
  map_rect_->axis(QCPAxis::atLeft)->setLabel(T > 0 ? tr("probe token") : QString());
  map_note_->setText(probe ? tr("The probe routing of this layer has no tokens")
                           : tr("No probe routing for this layer in this snapshot"));
  map_note_->setVisible(!s.ok());
  const Snapshot& last = *snapshots_.back();
  map_title_->setText(what_if_.empty() ? tr("Router probability, step %1").arg(last.step)
                                       : tr("Training snapshot\nstep %1").arg(last.step));
}

const ProbeRouting* RoutingView::whatIfFor(int block) const {
  for (const auto& p : what_if_)
    if (p.layer == block) return &p;
  // The engine may number what-if layers 0..L-1; fall back to the position in the selector.
  const int index = blocks_.indexOf(block);
  if (index >= 0 && size_t(index) < what_if_.size() && what_if_.size() == size_t(blocks_.size()))
    return &what_if_[index];
  return nullptr;
}

void RoutingView::ensureWhatIfRect() {
  if (what_if_rect_) return;
  auto* grid = maps_;
  grid->insertColumn(1);
  what_if_title_ = new QCPTextElement(map_, QString());
  grid->addElement(0, 1, what_if_title_);
  what_if_rect_ = new QCPAxisRect(map_, true);
  setup_map_axes(what_if_rect_);
  grid->addElement(1, 1, what_if_rect_);
  what_if_rect_->setMarginGroup(QCP::msTop | QCP::msBottom, map_rect_->marginGroup(QCP::msTop));
  auto* x = what_if_rect_->axis(QCPAxis::atBottom);
  auto* y = what_if_rect_->axis(QCPAxis::atLeft);
  what_if_heat_ = new HeatMap(x, y);
  what_if_heat_->setGradient(viridisGradient());
  what_if_heat_->setDataRange(QCPRange(0, 1));
  what_if_changed_graph_ = new QCPGraph(x, y);
  what_if_changed_graph_->setLineStyle(QCPGraph::lsNone);
  what_if_changed_graph_->setAdaptiveSampling(false);
  what_if_changed_graph_->setScatterStyle(changed_style(12));
  legend_changed_->addToLegend(map_->legend);
  what_if_assigned_ = new QCPGraph(x, y);
  what_if_assigned_->setLineStyle(QCPGraph::lsNone);
  what_if_assigned_->setAdaptiveSampling(false);
  what_if_assigned_->setScatterStyle(assigned_graph_->scatterStyle());
  what_if_note_ = make_note(map_, what_if_rect_);
  applyFonts();
}

void RoutingView::removeWhatIfRect() {
  if (!what_if_rect_) return;
  // Plottables and items first: they hold pointers to the rect's axes.
  map_->removeItem(what_if_note_);
  map_->removePlottable(what_if_heat_);
  map_->removeGraph(what_if_assigned_);
  map_->removeGraph(what_if_changed_graph_);
  legend_changed_->removeFromLegend(map_->legend);
  auto* grid = maps_;
  grid->remove(what_if_title_);
  grid->remove(what_if_rect_);
  grid->simplify();
  what_if_rect_ = nullptr;
  what_if_heat_ = nullptr;
  what_if_assigned_ = what_if_changed_graph_ = nullptr;
  what_if_note_ = nullptr;
  what_if_title_ = nullptr;
}

void RoutingView::updateWhatIf(const ProbeRouting* probe) {
  what_if_changed_ = -1;
  what_if_marks_ = 0;
  what_if_same_tokens_ = false;
  if (what_if_.empty()) {
    removeWhatIfRect();
    return;
  }
  ensureWhatIfRect();
  const ProbeRouting* w = whatIfFor(block_);
  const Shape s = shape_of(w);
  QVector<double> values;
  QVector<double> ak, av, ck, cv;
  const bool same = comparable(probe, w);
  const Shape ps = shape_of(probe);
  if (s.ok()) {
    values.resize(s.tokens * s.experts);
    for (int t = 0; t < s.tokens; ++t)
      for (int e = 0; e < s.experts; ++e) {
        values[t * s.experts + e] = prob_at(*w, s, t, e);
        const bool a = assigned_at(*w, s, t, e);
        if (a) {
          ak << e;
          av << t;
        }
        if (same && a != assigned_at(*probe, ps, t, e)) {
          ck << e;
          cv << t;
        }
      }
  }
  what_if_heat_->setData(s.tokens, s.experts, values);
  what_if_assigned_->setData(ak, av);
  what_if_changed_graph_->setData(ck, cv);
  what_if_marks_ = ak.size();
  if (same) what_if_changed_ = ck.size();
  what_if_same_tokens_ = s.ok() && probe && ps.ok() && w->tokens == probe->tokens;

  auto* y = what_if_rect_->axis(QCPAxis::atLeft);
  set_expert_ticks(what_if_rect_, s.experts);
  set_token_ticks(y, s.ok() ? w->tokens : std::vector<std::string>{});
  const double top_range = std::max(s.experts, 1) - 0.5;
  what_if_rect_->axis(QCPAxis::atBottom)->setRange(-0.5, top_range);
  what_if_rect_->axis(QCPAxis::atTop)->setRange(-0.5, top_range);
  if (what_if_same_tokens_) {
    // Same rows as the snapshot's map: share its token labels and zoom.
    y->setTickLabels(false);
    y->setLabel(QString());
    y->setRange(map_rect_->axis(QCPAxis::atLeft)->range());
    what_if_rect_->setRangeDrag(Qt::Orientations());
    what_if_rect_->setRangeZoom(Qt::Orientations());
  } else {
    y->setTickLabels(true);
    y->setLabel(s.ok() ? tr("what-if token") : QString());
    y->setRange(-0.5, std::max(s.tokens, 1) - 0.5);
    what_if_rect_->setRangeDrag(Qt::Vertical);
    what_if_rect_->setRangeZoom(Qt::Vertical);
  }
  what_if_note_->setText(tr("The what-if has no routing for this layer"));
  what_if_note_->setVisible(!s.ok());

  QString title = what_if_caption_.isEmpty() ? tr("What-if") : tr("What-if: %1").arg(what_if_caption_);
  if (same)
    title += what_if_changed_ == 1 ? tr("\n1 assignment changed") : tr("\n%1 assignments changed").arg(what_if_changed_);
  else if (s.ok())
    title += tr("\nother tokens: not compared");
  else
    title += QLatin1Char('\n');
  what_if_title_->setText(title);
}


void RoutingView::updateMarkSizes() {
  // Marks scale with the cells, so 64 tokens stay readable and 8 do not look sparse.
  auto apply = [](QCPAxisRect* rect, QCPGraph* dots, QCPGraph* rings, QCPGraph* boxes) {
    const QCPRange xr = rect->axis(QCPAxis::atBottom)->range(), yr = rect->axis(QCPAxis::atLeft)->range();
    if (xr.size() <= 0 || yr.size() <= 0) return;
    const double w = rect->width() / xr.size(), h = rect->height() / yr.size();
    const double dot = std::clamp(0.7 * std::min(w, h), 3.0, 11.0);
    if (dots && dots->scatterStyle().size() != dot) dots->setScatterStyle(assigned_style(dot));
    const double size = std::clamp(0.95 * h, dot + 2.0, 20.0);
    const double aspect = std::clamp(0.7 * w / size, 1.0, 2.2);
    if (rings) rings->setScatterStyle(wanted_style(size, aspect));
    if (boxes) boxes->setScatterStyle(changed_style(size, std::clamp(0.9 * w / size, 1.0, 3.0)));
  };
  apply(map_rect_, assigned_graph_, wanted_graph_, nullptr);
  if (what_if_rect_) apply(what_if_rect_, what_if_assigned_, nullptr, what_if_changed_graph_);
}

void RoutingView::onMapHover(QMouseEvent* event) {
  const QPointF pos = event->position();
  auto describe = [&](HeatMap* heat, const ProbeRouting* p, const QString& what) -> QString {
    int t = 0, e = 0;
    if (!heat || !p || !heat->cellAt(pos, &t, &e)) return {};
    const Shape s = shape_of(p);
    if (t >= s.tokens || e >= s.experts) return {};
    const double prob = prob_at(*p, s, t, e);
    QString state = assigned_at(*p, s, t, e) ? tr("chosen") : tr("not chosen");
    if (!p->wanted.empty() && wanted_at(*p, s, t, e) && !assigned_at(*p, s, t, e))
      state = tr("wanted, but dropped: the expert was full");
    return tr("%1token %2 “%3” → E%4\nrouter probability %5, %6")
        .arg(what)
        .arg(t)
        .arg(displayPiece(qs(p->tokens[size_t(t)])))
        .arg(e)
        .arg(std::isfinite(prob) ? QString::number(prob, 'f', 3) : tr("missing"))
        .arg(state);
  };
  QString tip;
  if (!snapshots_.isEmpty()) {
    if (map_rect_->rect().contains(pos.toPoint())) tip = describe(heat_, find_probe(*snapshots_.back(), block_), QString());
    else if (what_if_rect_ && what_if_rect_->rect().contains(pos.toPoint()))
      tip = describe(what_if_heat_, whatIfFor(block_), tr("what-if: "));
  }
  if (tip.isEmpty()) QToolTip::hideText();
  else QToolTip::showText(event->globalPosition().toPoint(), tip, map_);
}

}  // namespace smx::widgets
