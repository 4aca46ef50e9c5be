#include "widgets/routing_view.h"

#include <QComboBox>
#include <QDoubleSpinBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSplitter>
#include <QStackedWidget>
#include <QTableWidget>
#include <QTextBrowser>
#include <QToolButton>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <limits>
#include <qcustomplot.h>

#include "widgets/heat_map.h"
#include "widgets/routing_view_detail.h"
#include "widgets/view_style.h"

namespace smx::widgets {

using telemetry::MoeLayerStats;
using telemetry::ProbeRouting;
using telemetry::Snapshot;
using namespace routing_detail;

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
  router_combo_->addItem(tr("Switch (top-1)"), QStringLiteral("switch"));
  router_combo_->addItem(tr("GShard (top-2)"), QStringLiteral("gshard"));
  router_combo_->addItem(tr("BASE (balanced)"), QStringLiteral("base"));
  router_combo_->addItem(tr("Hash (token id)"), QStringLiteral("hash"));
  router_combo_->setToolTip(tr("Tokens Choose: each token picks its best experts, and full experts drop tokens. "
                               "Experts Choose: each expert picks the tokens it likes best. "
                               "Switch and GShard: tokens pick one or two experts, first come first served. "
                               "BASE: the same weights read as expert centroids; at inference each token goes to "
                               "its closest expert. Hash: a fixed table from token id to expert."));
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
    if (router_drops_choices(router_of(probe, stats)))
      parts << tr("dropped %1%").arg(number(100.0 * stats->dropped_fraction, 1));
    parts << tr("unrouted %1%").arg(number(100.0 * stats->unrouted_fraction, 1));
    parts << tr("entropy %1 nats").arg(number(stats->router_entropy, 2));
    if (stats->router_confidence > 0)  // 0 in snapshots written before it was recorded
      parts << tr("confidence %1").arg(number(stats->router_confidence, 2));
    lines << parts.join(QStringLiteral(" · "));
  }
  lines << stability_text_.toHtmlEscaped();
  stats_label_->setText(lines.join(QStringLiteral("<br>")));

  map_->replot(QCustomPlot::rpQueuedReplot);
  side_->replot(QCustomPlot::rpQueuedReplot);
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
