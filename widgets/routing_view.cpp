#include "widgets/routing_view.h"

#include <QComboBox>
#include <QDoubleSpinBox>
#include <QHBoxLayout>
#include <QHash>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QPainterPath>
#include <QPointer>
#include <QPushButton>
#include <QSplitter>
#include <QStackedWidget>
#include <QTableWidget>
#include <QTextBrowser>
#include <QToolButton>
#include <QToolTip>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <limits>
#include <qcustomplot.h>

#include "widgets/heat_map.h"
#include "widgets/view_style.h"

namespace smx::widgets {

using telemetry::MoeLayerStats;
using telemetry::ProbeRouting;
using telemetry::Snapshot;

QColor expertColor(int e) {
  // Okabe-Ito (its black left out: text must stay readable on it), then
  // Tableau 10 minus its grey, which marks "no expert".
  static const QColor kPalette[] = {
      QColor(0xE6, 0x9F, 0x00), QColor(0x56, 0xB4, 0xE9), QColor(0x00, 0x9E, 0x73), QColor(0xF0, 0xE4, 0x42),
      QColor(0x00, 0x72, 0xB2), QColor(0xD5, 0x5E, 0x00), QColor(0xCC, 0x79, 0xA7), QColor(0x4E, 0x79, 0xA7),
      QColor(0xE1, 0x57, 0x59), QColor(0x76, 0xB7, 0xB2), QColor(0x59, 0xA1, 0x4F), QColor(0xED, 0xC9, 0x48),
      QColor(0xB0, 0x7A, 0xA1), QColor(0xFF, 0x9D, 0xA7), QColor(0x9C, 0x75, 0x5F), QColor(0xF2, 0x8E, 0x2B)};
  constexpr int n = sizeof(kPalette) / sizeof(kPalette[0]);
  if (e < 0) return QColor(0xBA, 0xB0, 0xAC);
  const QColor base = kPalette[e % n];
  // Past 16 experts the palette repeats, lighter each round so repeats stay distinguishable.
  return e < n ? base : base.lighter(100 + 25 * (e / n));
}

QString displayPiece(const QString& piece) {
  QString s = piece;
  s.replace(QChar(0x2581), QChar(0x2423));
  return s;
}

namespace {

const QColor kChangedColour(0xD5, 0x5E, 0x00);  // vermilion: assignments the what-if changed
constexpr int kMaxExperts = 4096;                 // larger counts are corrupt data, not a model
constexpr int kMaxTokens = 1 << 20;
constexpr int kMaxCells = 1 << 22;

QString qs(const std::string& s) { return QString::fromStdString(s); }

/// Rows and columns of a probe routing; 0 when it cannot be drawn.
struct Shape {
  int tokens = 0, experts = 0;
  bool ok() const { return tokens > 0 && experts > 0; }
};

Shape shape_of(const ProbeRouting* p) {
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
double prob_at(const ProbeRouting& p, const Shape& s, int t, int e) {
  const size_t i = size_t(t) * s.experts + e;
  if (i >= p.probs.size() || !std::isfinite(p.probs[i])) return std::numeric_limits<double>::quiet_NaN();
  return p.probs[i];
}
bool assigned_at(const ProbeRouting& p, const Shape& s, int t, int e) {
  const size_t i = size_t(t) * s.experts + e;
  return i < p.assigned.size() && p.assigned[i] != 0;
}
bool wanted_at(const ProbeRouting& p, const Shape& s, int t, int e) {
  const size_t i = size_t(t) * s.experts + e;
  return i < p.wanted.size() && p.wanted[i] != 0;
}

const ProbeRouting* find_probe(const Snapshot& s, int block) {
  for (const auto& p : s.probe)
    if (p.layer == block) return &p;
  return nullptr;
}
const MoeLayerStats* find_moe(const Snapshot& s, int block) {
  for (const auto& m : s.moe)
    if (m.layer == block) return &m;
  return nullptr;
}

/// Two routings of the same tokens through the same number of experts, both complete.
bool comparable(const ProbeRouting* a, const ProbeRouting* b) {
  const Shape sa = shape_of(a), sb = shape_of(b);
  if (!sa.ok() || !sb.ok() || sa.experts != sb.experts || a->tokens != b->tokens) return false;
  const size_t n = size_t(sa.tokens) * sa.experts;
  return a->assigned.size() >= n && b->assigned.size() >= n;
}

QString router_of(const ProbeRouting* p, const MoeLayerStats* m) {
  if (m && !m->router.empty()) return qs(m->router);
  if (p) return p->wanted.empty() ? QStringLiteral("experts-choose") : QStringLiteral("tokens-choose");
  return {};
}

QColor text_colour_on(const QColor& bg) { return bg.lightnessF() > 0.55 ? Qt::black : Qt::white; }

QString css(const QColor& c) { return c.name(QColor::HexRgb); }

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

RoutingView::RoutingView(QWidget* parent) : QWidget(parent) {
  auto* outer = new QVBoxLayout(this);
  outer->setContentsMargins(4, 4, 4, 4);
  outer->setSpacing(4);

  error_label_ = new QLabel(this);
  error_label_->setObjectName(QStringLiteral("whatIfError"));
  styleAsError(error_label_);

  stack_ = new QStackedWidget(this);
  hint_ = new QLabel(tr("Start a run to see routing"), this);
  styleAsHint(hint_);
  stack_->addWidget(hint_);

  auto* content = new QWidget(this);
  auto* cl = new QVBoxLayout(content);
  cl->setContentsMargins(0, 0, 0, 0);
  cl->setSpacing(4);

  // --- control row: layer, step, what-if (expert only), export ---
  auto* controls = new QHBoxLayout;
  controls->setSpacing(6);
  layer_label_ = new QLabel(tr("Layer"), content);
  layer_combo_ = new QComboBox(content);
  layer_combo_->setObjectName(QStringLiteral("layerCombo"));
  layer_combo_->setToolTip(tr("Which MoE layer to show. Every MoE layer has its own router and experts."));
  layer_combo_->setSizeAdjustPolicy(QComboBox::AdjustToContents);
  layer_label_->setBuddy(layer_combo_);
  step_label_ = new QLabel(content);
  step_label_->setToolTip(tr("The training step of the snapshot shown."));
  controls->addWidget(layer_label_);
  controls->addWidget(layer_combo_);
  controls->addWidget(step_label_);
  controls->addSpacing(12);

  what_if_row_ = new QWidget(content);
  auto* wl = new QHBoxLayout(what_if_row_);
  wl->setContentsMargins(0, 0, 0, 0);
  wl->setSpacing(6);
  probe_edit_ = new QLineEdit(what_if_row_);
  probe_edit_->setObjectName(QStringLiteral("probeEdit"));
  probe_edit_->setPlaceholderText(tr("the run's probe sentence"));
  probe_edit_->setClearButtonEnabled(true);
  probe_edit_->setToolTip(tr("Text to route through the model. Leave it empty to use the run's fixed probe sentence."));
  capacity_spin_ = new QDoubleSpinBox(what_if_row_);
  capacity_spin_->setObjectName(QStringLiteral("capacitySpin"));
  capacity_spin_->setRange(0.0, 8.0);  // 0 is shown as "model's"
  capacity_spin_->setSingleStep(0.25);
  capacity_spin_->setDecimals(2);
  capacity_spin_->setSpecialValueText(tr("model's"));
  capacity_spin_->setValue(0.0);
  capacity_spin_->setToolTip(tr("How many tokens each expert may take, as a multiple of an even share. "
                                "\"model's\" keeps the run's own setting."));
  router_combo_ = new QComboBox(what_if_row_);
  router_combo_->setObjectName(QStringLiteral("routerCombo"));
  router_combo_->addItem(tr("model's router"), QString());
  router_combo_->addItem(tr("Tokens Choose"), QStringLiteral("tokens-choose"));
  router_combo_->addItem(tr("Experts Choose"), QStringLiteral("experts-choose"));
  router_combo_->setToolTip(tr("Tokens Choose: each token picks its best experts, and full experts drop tokens. "
                               "Experts Choose: each expert picks the tokens it likes best."));
  reroute_button_ = new QPushButton(tr("Re-route"), what_if_row_);
  reroute_button_->setObjectName(QStringLiteral("rerouteButton"));
  reroute_button_->setToolTip(tr("Route the text again with these settings. The training run is not changed."));
  auto* what_if_label = new QLabel(tr("What if:"), what_if_row_);
  what_if_label->setToolTip(tr("Try another capacity factor or router on the probe and compare."));
  wl->addWidget(what_if_label);
  wl->addWidget(probe_edit_, 1);
  wl->addWidget(new QLabel(tr("capacity"), what_if_row_));
  wl->addWidget(capacity_spin_);
  wl->addWidget(router_combo_);
  wl->addWidget(reroute_button_);
  controls->addWidget(what_if_row_, 1);
  controls->addStretch(0);

  export_button_ = new QToolButton(content);
  export_button_->setText(tr("Export…"));
  export_button_->setToolTip(tr("Save the routing map as a PNG, SVG or PDF picture, or its numbers as CSV."));
  controls->addWidget(export_button_);
  cl->addLayout(controls);

  // --- body: map on the left, side panel on the right, coloured text below ---
  buildMapPlot();
  buildSidePlot();

  table_ = new QTableWidget(0, 2, content);
  table_->setObjectName(QStringLiteral("topTokensTable"));
  table_->setHorizontalHeaderLabels({tr("expert"), tr("tokens it chose most (recent steps)")});
  table_->verticalHeader()->setVisible(false);
  table_->horizontalHeader()->setSectionResizeMode(0, QHeaderView::ResizeToContents);
  table_->horizontalHeader()->setStretchLastSection(true);
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->setSelectionMode(QAbstractItemView::NoSelection);
  table_->setFocusPolicy(Qt::NoFocus);
  table_->setWordWrap(false);
  table_->setToolTip(tr("For each expert, the tokens it took most often over the recent snapshots, with counts."));

  stats_label_ = new QLabel(content);
  stats_label_->setWordWrap(true);
  stats_label_->setTextFormat(Qt::RichText);
  stats_label_->setAlignment(Qt::AlignTop | Qt::AlignLeft);

  auto* side_panel = new QWidget(content);
  auto* sl = new QVBoxLayout(side_panel);
  sl->setContentsMargins(0, 0, 0, 0);
  sl->setSpacing(4);
  sl->addWidget(side_, 5);
  sl->addWidget(table_, 4);
  sl->addWidget(stats_label_, 0);

  auto* hsplit = new QSplitter(Qt::Horizontal, content);
  hsplit->addWidget(map_);
  hsplit->addWidget(side_panel);
  hsplit->setStretchFactor(0, 3);
  hsplit->setStretchFactor(1, 2);
  hsplit->setSizes({640, 440});
  hsplit->setChildrenCollapsible(false);

  text_ = new QTextBrowser(content);
  text_->setObjectName(QStringLiteral("colouredText"));
  text_->setOpenLinks(false);
  text_->setToolTip(tr("The probe sentence, each token on the colour of the expert that took it."));
  text_->setMinimumHeight(60);

  vsplit_ = new QSplitter(Qt::Vertical, content);
  vsplit_->addWidget(hsplit);
  vsplit_->addWidget(text_);
  vsplit_->setStretchFactor(0, 5);
  vsplit_->setStretchFactor(1, 1);
  vsplit_->setSizes({560, 110});
  vsplit_->setChildrenCollapsible(false);
  cl->addWidget(vsplit_, 1);

  stack_->addWidget(content);
  outer->addWidget(error_label_);
  outer->addWidget(stack_, 1);
  stack_->setCurrentWidget(hint_);

  connect(layer_combo_, QOverload<int>::of(&QComboBox::currentIndexChanged), this, [this](int index) {
    if (index < 0 || index >= blocks_.size() || blocks_[index] == block_) return;
    block_ = blocks_[index];
    refresh();
  });
  connect(reroute_button_, &QPushButton::clicked, this, [this] {
    Q_EMIT whatIfRequested(probe_edit_->text().trimmed(), capacity_spin_->value(),
                           router_combo_->currentData().toString());
  });
  connect(probe_edit_, &QLineEdit::returnPressed, reroute_button_, &QPushButton::click);
  connect(export_button_, &QToolButton::clicked, this, &RoutingView::exportClicked);

  applyFonts();
}

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

void RoutingView::setSnapshots(const QVector<SnapshotPtr>& recent) {
  snapshots_.clear();
  snapshots_.reserve(recent.size());
  for (const auto& s : recent)
    if (s) snapshots_.append(s);
  rebuildLayerList();
  refresh();
}

void RoutingView::rebuildLayerList() {
  QVector<int> blocks;
  QStringList labels;
  if (!snapshots_.isEmpty()) {
    const Snapshot& last = *snapshots_.back();
    for (const auto& p : last.probe) blocks.append(p.layer);
    for (const auto& m : last.moe) blocks.append(m.layer);
    std::sort(blocks.begin(), blocks.end());
    blocks.erase(std::unique(blocks.begin(), blocks.end()), blocks.end());
    for (int b : blocks) {
      const QString router = router_of(find_probe(last, b), find_moe(last, b));
      labels << (router.isEmpty() ? tr("Layer %1").arg(b) : tr("Layer %1 (%2)").arg(b).arg(router));
    }
  }
  QStringList current;
  for (int i = 0; i < layer_combo_->count(); ++i) current << layer_combo_->itemText(i);
  if (!blocks.contains(block_)) block_ = blocks.isEmpty() ? -1 : blocks.front();
  blocks_ = blocks;
  if (current != labels) {
    // Rebuilt only when the layers change: live updates must not reset the user's choice.
    QSignalBlocker block(layer_combo_);
    layer_combo_->clear();
    layer_combo_->addItems(labels);
  }
  QSignalBlocker block(layer_combo_);
  layer_combo_->setCurrentIndex(blocks_.indexOf(block_));
}

void RoutingView::showHint(const QString& text) {
  hint_->setText(text);
  stack_->setCurrentWidget(hint_);
}

void RoutingView::refresh() {
  if (snapshots_.isEmpty() || blocks_.isEmpty()) {
    showHint(snapshots_.isEmpty() ? tr("Start a run to see routing")
                                  : tr("This model has no MoE layer, so there is no routing to show"));
    heat_->setData(0, 0, {});
    assigned_graph_->data()->clear();
    wanted_graph_->data()->clear();
    wanted_marks_ = 0;
    changed_ = -1;
    top_.clear();
    table_->setRowCount(0);
    coloured_tokens_ = unrouted_tokens_ = 0;
    coloured_html_.clear();
    text_->clear();
    if (what_if_rect_) removeWhatIfRect();
    what_if_changed_ = -1;
    what_if_marks_ = 0;
    map_->replot(QCustomPlot::rpQueuedReplot);
    return;
  }
  stack_->setCurrentIndex(1);
  const Snapshot& last = *snapshots_.back();
  const ProbeRouting* probe = find_probe(last, block_);
  const MoeLayerStats* stats = find_moe(last, block_);
  step_label_->setText(tr("step %1").arg(last.step));
  updateMap(probe);
  updateWhatIf(probe);
  updateSide(probe, stats);
  updateTopTokens(probe, stats);
  updateStability(probe);
  updateColouredText(probe);

  // Side-panel numbers: the batch's routing statistics for this layer.
  QStringList lines;
  if (stats) {
    QStringList parts;
    parts << tr("<b>%1</b>").arg(router_of(probe, stats).toHtmlEscaped());
    auto number = [](double v, int decimals) {
      return std::isfinite(v) ? QString::number(v, 'f', decimals) : QStringLiteral("–");
    };
    if (stats->capacity > 0)
      parts << tr("capacity %1 tokens per expert in each of %2 groups").arg(stats->capacity).arg(std::max(stats->groups, 1));
    if (router_of(probe, stats) == QLatin1String("tokens-choose"))
      parts << tr("dropped %1%").arg(number(100.0 * stats->dropped_fraction, 1));
    parts << tr("unrouted %1%").arg(number(100.0 * stats->unrouted_fraction, 1));
    parts << tr("entropy %1 nats").arg(number(stats->router_entropy, 2));
    lines << parts.join(QStringLiteral(" · "));
  }
  lines << stability_text_.toHtmlEscaped();
  stats_label_->setText(lines.join(QStringLiteral("<br>")));

  map_->replot(QCustomPlot::rpQueuedReplot);
  side_->replot(QCustomPlot::rpQueuedReplot);
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

void RoutingView::updateSide(const ProbeRouting* probe, const MoeLayerStats* stats) {
  const Shape s = shape_of(probe);
  const QString router = router_of(probe, stats);
  QVector<double> ka, va, kb, vb;
  QVector<double> pos;
  QVector<QString> labels;
  auto ticker = side_->xAxis->ticker().dynamicCast<QCPAxisTickerText>();
  if (router == QLatin1String("tokens-choose")) {
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

void RoutingView::setWhatIf(const std::vector<ProbeRouting>& routing, const QString& caption) {
  what_if_ = routing;
  what_if_caption_ = caption;
  error_label_->clear();
  error_label_->setVisible(false);
  refresh();
}

void RoutingView::setWhatIfError(const QString& message) {
  error_label_->setText(message.isEmpty() ? QString() : tr("What-if failed: %1").arg(message));
  error_label_->setVisible(!message.isEmpty());
}

void RoutingView::setClassroomMode(bool on) {
  classroom_ = on;
  what_if_row_->setVisible(!on);
  // The coloured sentence is what a class reads: give it more room at the larger font.
  const int total = std::max(300, vsplit_->height());
  const int text = on ? total * 30 / 100 : total * 16 / 100;
  vsplit_->setSizes({total - text, text});
  applyFonts();
  refresh();
}

void RoutingView::applyFonts() {
  const double f = classroom_ ? 1.5 : 1.0;
  const double base = font().pointSizeF() > 0 ? font().pointSizeF() : 9.0;
  auto sized = [&](double scale, bool bold = false) {
    QFont q = font();
    q.setPointSizeF(base * scale * f);
    q.setBold(bold);
    return q;
  };
  auto style_axes = [&](QCPAxisRect* rect) {
    for (auto* axis : rect->axes()) {
      axis->setTickLabelFont(sized(0.95));
      axis->setLabelFont(sized(1.0));
    }
  };
  style_axes(map_rect_);
  if (what_if_rect_) style_axes(what_if_rect_);
  map_rect_->axis(QCPAxis::atLeft)->setTickLabelFont(sized(0.9));
  scale_->scaleAxis()->setTickLabelFont(sized(0.9));
  scale_->scaleAxis()->setLabelFont(sized(1.0));
  map_title_->setFont(sized(1.1, true));
  if (what_if_title_) what_if_title_->setFont(sized(1.1, true));
  map_->legend->setFont(sized(0.95));
  map_note_->setFont(sized(1.1));
  if (what_if_note_) what_if_note_->setFont(sized(1.1));
  style_axes(side_->axisRect());
  side_title_->setFont(sized(1.05, true));
  side_->legend->setFont(sized(0.9));
  table_->setFont(sized(1.0));
  stats_label_->setFont(sized(1.0));
  step_label_->setFont(sized(1.0));
  layer_combo_->setFont(sized(1.0));
  layer_label_->setFont(sized(1.0));
  hint_->setFont(sized(1.4));
}

bool RoutingView::exportView(const QString& path, QString* error) const {
  if (showsHint()) {
    if (error) *error = tr("nothing to export yet: no routing has been recorded");
    return false;
  }
  return exportPlot(map_, path, [this] { return csvTable(); }, error);
}

CsvTable RoutingView::csvTable() const {
  CsvTable table;
  table.header = {"step", "layer", "token_index", "token", "expert", "probability", "assigned", "wanted"};
  const bool has_what_if = !what_if_.empty();
  if (has_what_if) table.header << "whatif_probability" << "whatif_assigned";
  if (snapshots_.isEmpty()) return table;
  const Snapshot& last = *snapshots_.back();
  const ProbeRouting* p = find_probe(last, block_);
  const Shape s = shape_of(p);
  const ProbeRouting* w = has_what_if ? whatIfFor(block_) : nullptr;
  const Shape ws = shape_of(w);
  const bool same = comparable(p, w) || (w && p && ws.ok() && s.ok() && w->tokens == p->tokens && ws.experts == s.experts);
  auto num = [](double v) { return std::isfinite(v) ? QString::number(v, 'g', 6) : QString(); };
  for (int t = 0; t < s.tokens; ++t)
    for (int e = 0; e < s.experts; ++e) {
      QStringList row = {QString::number(last.step), QString::number(block_), QString::number(t),
                         qs(p->tokens[size_t(t)]),   QString::number(e),      num(prob_at(*p, s, t, e)),
                         QString::number(int(assigned_at(*p, s, t, e))),
                         p->wanted.empty() ? QString() : QString::number(int(wanted_at(*p, s, t, e)))};
      if (has_what_if) {
        if (same) row << num(prob_at(*w, ws, t, e)) << QString::number(int(assigned_at(*w, ws, t, e)));
        else row << QString() << QString();
      }
      table.rows.append(row);
    }
  return table;
}

void RoutingView::exportClicked() {
  exportWithDialog(this, tr("Export routing"), QStringLiteral("routing.png"), [this](const QString& path, QString* error) { return exportView(path, error); });
}

void RoutingView::replotNow() {
  map_->replot();
  side_->replot();
}

int RoutingView::mapCount() const { return what_if_rect_ ? 2 : 1; }
int RoutingView::layerCount() const { return blocks_.size(); }
int RoutingView::currentLayer() const { return blocks_.indexOf(block_); }
void RoutingView::setCurrentLayer(int index) {
  if (index < 0 || index >= blocks_.size()) return;
  layer_combo_->setCurrentIndex(index);  // refreshes through currentIndexChanged
  if (blocks_[index] != block_) {
    block_ = blocks_[index];
    refresh();
  }
}
int RoutingView::currentBlock() const { return block_; }
bool RoutingView::showsHint() const { return stack_->currentWidget() == hint_; }
int RoutingView::cellCount() const { return heat_->cellCount(); }
int RoutingView::assignmentMarkCount() const { return assigned_graph_->dataCount(); }
int RoutingView::wantedMarkCount() const { return wanted_marks_; }
int RoutingView::barCount() const { return bars_a_->dataCount() + bars_b_->dataCount(); }
int RoutingView::barSeriesCount() const { return int(bars_a_->dataCount() > 0) + int(bars_b_->dataCount() > 0); }
int RoutingView::changedSincePrevious() const { return changed_; }
QString RoutingView::stabilityText() const { return stability_text_; }
QStringList RoutingView::topTokens(int expert) const {
  QStringList out;
  if (expert < 0 || expert >= top_.size()) return out;
  for (const auto& tc : top_[expert]) out << tc.token;
  return out;
}
int RoutingView::topTokenRowCount() const { return table_->rowCount(); }
int RoutingView::colouredTokenCount() const { return coloured_tokens_; }
int RoutingView::unroutedTokenCount() const { return unrouted_tokens_; }
QString RoutingView::colouredTextHtml() const { return coloured_html_; }
int RoutingView::whatIfCellCount() const { return what_if_heat_ ? what_if_heat_->cellCount() : 0; }
int RoutingView::whatIfAssignmentMarkCount() const { return what_if_marks_; }
int RoutingView::whatIfChangedAssignments() const { return what_if_changed_; }
QString RoutingView::whatIfErrorText() const { return error_label_->isVisibleTo(this) ? error_label_->text() : QString(); }

}  // namespace smx::widgets
