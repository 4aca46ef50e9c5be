#include "widgets/mixing_view.h"

#include <QCheckBox>
#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QSlider>
#include <QStackedWidget>
#include <QToolButton>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <limits>
#include <qcustomplot.h>

#include "widgets/heat_map.h"
#include "widgets/linalg.h"
#include "widgets/plot_export.h"
#include "widgets/view_style.h"

namespace smx::widgets {

namespace {

using telemetry::Matrix;
using telemetry::MixingSnapshot;
using telemetry::Snapshot;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr size_t kMaxSpectra = 512;  // cached spectra before the cache starts over
constexpr double kZeroSingularValue = 1e-10;  // relative to the largest: zero up to double rounding

bool is_attention(const MixingSnapshot& m) { return m.kind == "attention"; }
// Fourier and Hartley mix with a fixed transform: nothing there is trained.
bool is_fixed_basis(const std::string& kind) { return kind == "fourier" || kind == "hartley"; }

// One block can hold several entries (a partial sMoE's weights and its probe routing), so entries are
// found by block and kind; the layer combo's data is "block|kind".
const MixingSnapshot* find_layer(const Snapshot* s, int block, const std::string& kind = {}) {
  if (!s) return nullptr;
  for (const auto& m : s->mixing)
    if (m.layer == block && (kind.empty() || m.kind == kind)) return &m;
  return nullptr;
}

QString layer_key(const MixingSnapshot& m) { return QStringLiteral("%1|%2").arg(m.layer).arg(QString::fromStdString(m.kind)); }
int key_block(const QVariant& key) { return key.toString().section('|', 0, 0).toInt(); }
std::string key_kind(const QVariant& key) { return key.toString().section('|', 1).toStdString(); }

bool is_sequence_matrix(const std::string& name) { return name == "sequence" || name.rfind("expert ", 0) == 0; }
bool is_channel_map(const std::string& name) { return name.find("channels to experts") != std::string::npos; }

/// A sentence under the matrix for the decoder-LM kinds (sMLP paper): what the picture means.
QString explain(const MixingSnapshot* layer, const std::string& matrix) {
  if (!layer) return {};
  const std::string& kind = layer->kind;
  int n = 0;  // sequence length, from an expert's n x n matrix
  for (const auto& m : layer->matrices)
    if (is_sequence_matrix(m.name)) n = m.rows;
  if (kind == "sgu")
    return QObject::tr("Causal spatial gating unit (gMLP): output position t (row) mixes input positions ≤ t (columns) "
                       "only. The upper triangle stays zero, so no token sees the future.");
  if (kind == "smoe-probe")
    return QObject::tr("The probe text's own routing: for each gate channel (row), the router's probability of each "
                       "expert (column) for this one text%1.")
        .arg(QObject::tr(", read from its first p tokens under partial prediction"));
  if (kind.rfind("smoe-", 0) != 0) return {};
  if (is_sequence_matrix(matrix))
    return QObject::tr("sMoE %1: this expert's own causal n × n spatial matrix (row t mixes positions ≤ t), applied "
                       "only to the gate channels routed to it.")
        .arg(QString::fromStdString(matrix));
  if (!is_channel_map(matrix)) return {};
  if (kind == "smoe-deterministic")
    return QObject::tr("Deterministic routing: gate channel c (row) goes to expert ⌊c·E/C⌋ (column): fixed contiguous "
                       "bands, the same for every input; nothing is learned.");
  if (kind == "smoe-partial") {
    const QString p = n > 0 ? QObject::tr(" (p = %1 at n = %2)").arg(int(std::floor(0.2 * n))).arg(n) : QString();
    return QObject::tr("Partial prediction: a router picks each gate channel's expert from the first p = ⌊0.2·n⌋ tokens "
                       "only%1, and the loss counts only the targets after them (the prefix/target split), so no "
                       "scored token's routing saw it. Colour: mean router probability over the batch.")
        .arg(p);
  }
  if (kind == "smoe-learned")
    return QObject::tr("Learned routing: the router reads whole channels, future tokens included (colour: mean router "
                       "probability). It leaks the future: teaching only; the Playground's leak check shows the effect.");
  return {};
}

const Matrix* find_matrix(const MixingSnapshot* layer, const std::string& name) {
  if (!layer) return nullptr;
  for (const auto& m : layer->matrices)
    if (m.name == name) return &m;
  return nullptr;
}

bool consistent(const Matrix& m) {
  return m.rows > 0 && m.cols > 0 && m.values.size() == static_cast<size_t>(m.rows) * static_cast<size_t>(m.cols);
}

void set_combo_items(QComboBox* combo, const QStringList& labels, const QList<QVariant>& data, const QVariant& keep) {
  QStringList current;
  for (int i = 0; i < combo->count(); ++i) current << combo->itemText(i);
  if (current == labels) return;
  const QSignalBlocker block(combo);
  combo->clear();
  for (int i = 0; i < labels.size(); ++i) combo->addItem(labels[i], data[i]);
  const int index = combo->findData(keep);
  combo->setCurrentIndex(index >= 0 ? index : 0);
}

QCPItemText* add_note(QCustomPlot* plot, QCPAxisRect* rect, double x = 0.5, double y = 0.5,
                      Qt::Alignment align = Qt::AlignCenter) {
  auto* note = new QCPItemText(plot);
  note->setClipAxisRect(rect);
  note->setClipToAxisRect(true);
  note->position->setAxisRect(rect);
  note->position->setType(QCPItemPosition::ptAxisRectRatio);
  note->position->setCoords(x, y);
  note->setPositionAlignment(align);
  note->setColor(QColor(80, 80, 80));
  note->setBrush(QColor(255, 255, 255, 220));
  note->setPadding(QMargins(4, 2, 4, 2));
  note->setVisible(false);
  return note;
}

void show_note(QCPItemText* note, const QString& text) {
  note->setText(text);
  note->setVisible(!text.isEmpty());
}

// Integer ticks for cell indices, spaced out on big matrices.
QSharedPointer<QCPAxisTicker> index_ticker() {
  auto ticker = QSharedPointer<QCPAxisTickerFixed>::create();
  ticker->setTickStep(1);
  ticker->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
  return ticker;
}

// Token strings as tick labels; every k-th when there are many.
QSharedPointer<QCPAxisTicker> token_ticker(const std::vector<std::string>& tokens) {
  auto ticker = QSharedPointer<QCPAxisTickerText>::create();
  const int n = static_cast<int>(tokens.size()), every = std::max(1, (n + 31) / 32);
  for (int i = 0; i < n; i += every) ticker->addTick(i, QString::fromStdString(tokens[i]));
  return ticker;
}

void add_cells(CsvTable& t, const QString& panel, const QString& name, const HeatMap* map) {
  for (int r = 0; r < map->rows(); ++r)
    for (int c = 0; c < map->cols(); ++c)
      t.rows.append({panel, name, QString::number(r), QString::number(c), QString::number(map->value(r, c))});
}

}  // namespace

MixingView::MixingView(QWidget* parent)
    : QWidget(parent),
      stack_(new QStackedWidget(this)),
      hint_(new QLabel(this)),
      layer_combo_(new QComboBox(this)),
      matrix_combo_(new QComboBox(this)),
      diff_box_(new QCheckBox(tr("difference from initialisation"), this)),
      attention_controls_(new QWidget(this)),
      att_layer_combo_(new QComboBox(attention_controls_)),
      head_combo_(new QComboBox(attention_controls_)),
      export_(new QToolButton(this)),
      slider_(new QSlider(Qt::Horizontal, this)),
      step_label_(new QLabel(this)),
      plot_(new QCustomPlot(this)),
      explain_(new QLabel(this)),
      base_font_(font()) {
  explain_->setObjectName("explanation");
  explain_->setWordWrap(true);
  explain_->hide();
  layer_combo_->setObjectName("layerCombo");
  layer_combo_->setToolTip(tr("The mixing layer to show: the part of a block that mixes information across tokens."));
  layer_combo_->setSizeAdjustPolicy(QComboBox::AdjustToContents);
  matrix_combo_->setObjectName("matrixCombo");
  matrix_combo_->setToolTip(tr("Which matrix of the layer: 'sequence' mixes positions, 'hidden' mixes features."));
  matrix_combo_->setSizeAdjustPolicy(QComboBox::AdjustToContents);
  diff_box_->setObjectName("differenceToggle");
  diff_box_->setToolTip(tr("Show how far each weight has moved since the first snapshot (now minus then). "
                           "Fixed bases like Fourier never change, so this is off for them."));
  att_layer_combo_->setObjectName("attentionLayerCombo");
  att_layer_combo_->setToolTip(tr("The attention layer whose maps are shown beside: how much each token of the probe text "
                                  "looks at every other token."));
  head_combo_->setObjectName("headCombo");
  head_combo_->setToolTip(tr("Each attention head learns its own pattern of which tokens to look at."));
  export_->setObjectName("exportButton");
  export_->setText(tr("Export…"));
  export_->setToolTip(tr("Save the plot as a PNG, SVG or PDF picture, or its numbers as a CSV table."));
  slider_->setObjectName("snapshotSlider");
  slider_->setToolTip(tr("Scrub through the run's snapshots. At the right end the view follows new snapshots."));
  slider_->setRange(0, 0);
  slider_->setEnabled(false);
  step_label_->setObjectName("stepLabel");
  step_label_->setMinimumWidth(140);

  auto* att_layout = new QHBoxLayout(attention_controls_);
  att_layout->setContentsMargins(0, 0, 0, 0);
  att_layout->addWidget(new QLabel(tr("Attention:"), attention_controls_));
  att_layout->addWidget(att_layer_combo_);
  att_layout->addWidget(new QLabel(tr("Head:"), attention_controls_));
  att_layout->addWidget(head_combo_);

  auto* controls = new QHBoxLayout;
  controls->addWidget(new QLabel(tr("Layer:"), this));
  controls->addWidget(layer_combo_);
  controls->addWidget(new QLabel(tr("Matrix:"), this));
  controls->addWidget(matrix_combo_);
  controls->addWidget(diff_box_);
  controls->addSpacing(16);
  controls->addWidget(attention_controls_);
  controls->addStretch(1);
  controls->addWidget(export_);
  auto* scrub = new QHBoxLayout;
  scrub->addWidget(slider_, 1);
  scrub->addWidget(step_label_);

  styleAsHint(hint_);
  stack_->addWidget(hint_);
  stack_->addWidget(plot_);
  plot_->setMinimumSize(480, 360);

  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  layout->addLayout(controls);
  layout->addWidget(explain_);
  layout->addWidget(stack_, 1);
  layout->addLayout(scrub);

  buildPlot();
  updateFonts();
  redraw();

  auto changed = [this] { redraw(); };
  connect(layer_combo_, QOverload<int>::of(&QComboBox::currentIndexChanged), this, changed);
  connect(matrix_combo_, QOverload<int>::of(&QComboBox::currentIndexChanged), this, changed);
  connect(att_layer_combo_, QOverload<int>::of(&QComboBox::currentIndexChanged), this, changed);
  connect(head_combo_, QOverload<int>::of(&QComboBox::currentIndexChanged), this, changed);
  connect(diff_box_, &QCheckBox::toggled, this, [this](bool on) { setShowDifference(on); });
  connect(slider_, &QSlider::valueChanged, this, [this](int v) { setCurrentSnapshot(v); });
  connect(export_, &QToolButton::clicked, this, &MixingView::exportDialog);
}

MixingView::~MixingView() {
  // Put every panel back into the layout so the plot deletes it.
  classroom_ = false;
  arrange(true, true);
}

void MixingView::buildPlot() {
  plot_->plotLayout()->clear();
  plot_->setAutoAddPlottableToLegend(false);

  // Grids join the plot before they get children: elements take their plot from their layout.
  left_ = new QCPLayoutGrid;
  right_ = new QCPLayoutGrid;
  plot_->plotLayout()->addElement(0, 0, left_);
  plot_->plotLayout()->addElement(0, 1, right_);
  plot_->plotLayout()->setColumnStretchFactors({1.15, 1.0});

  // Matrix panel: title, heat map with its colour bar, spectrum under it.
  title_ = new QCPTextElement(plot_, QString());
  left_->addElement(0, 0, title_);
  auto* map_row = new QCPLayoutGrid;
  left_->addElement(1, 0, map_row);
  map_rect_ = new QCPAxisRect(plot_);
  map_row->addElement(0, 0, map_rect_);
  map_ = new HeatMap(map_rect_->axis(QCPAxis::atBottom), map_rect_->axis(QCPAxis::atLeft));
  map_->setGradient(divergingGradient());
  map_bar_ = new ColorBar(map_row, 0, 1, map_);
  for (auto* axis : map_rect_->axes()) axis->grid()->setVisible(false);
  map_rect_->axis(QCPAxis::atLeft)->setRangeReversed(true);  // row 0 on top, as a matrix is written
  map_rect_->axis(QCPAxis::atBottom)->setTicker(index_ticker());
  map_rect_->axis(QCPAxis::atLeft)->setTicker(index_ticker());
  map_note_ = add_note(plot_, map_rect_);

  spec_title_ = new QCPTextElement(plot_, tr("Singular values (log scale)"));
  left_->addElement(2, 0, spec_title_);
  spec_rect_ = new QCPAxisRect(plot_);
  left_->addElement(3, 0, spec_rect_);
  left_->setRowStretchFactor(1, 3);
  left_->setRowStretchFactor(3, 1.2);
  spec_rect_->axis(QCPAxis::atLeft)->setScaleType(QCPAxis::stLogarithmic);
  spec_rect_->axis(QCPAxis::atLeft)->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
  spec_rect_->axis(QCPAxis::atLeft)->setNumberFormat("eb");
  spec_rect_->axis(QCPAxis::atLeft)->setNumberPrecision(0);
  spec_rect_->axis(QCPAxis::atLeft)->setLabel(tr("singular value"));
  spec_rect_->axis(QCPAxis::atBottom)->setLabel(tr("index (largest first)"));
  spec_graph_ = plot_->addGraph(spec_rect_->axis(QCPAxis::atBottom), spec_rect_->axis(QCPAxis::atLeft));
  spec_graph_->setPen(QPen(QColor(31, 119, 180), 1.5));
  spec_note_ = add_note(plot_, spec_rect_, 0.98, 0.04, Qt::AlignRight | Qt::AlignTop);
  // The spectrum sits under the map, aligned to it.
  auto* columns = new QCPMarginGroup(plot_);
  map_rect_->setMarginGroup(QCP::msLeft, columns);
  spec_rect_->setMarginGroup(QCP::msLeft, columns);

  // Attention panel: the probe text's attention probabilities, one head at a time.
  att_title_ = new QCPTextElement(plot_, QString());
  right_->addElement(0, 0, att_title_);
  auto* att_row = new QCPLayoutGrid;
  right_->addElement(1, 0, att_row);
  att_rect_ = new QCPAxisRect(plot_);
  att_row->addElement(0, 0, att_rect_);
  att_map_ = new HeatMap(att_rect_->axis(QCPAxis::atBottom), att_rect_->axis(QCPAxis::atLeft));
  att_map_->setGradient(viridisGradient());
  att_map_->setDataRange(QCPRange(0, 1));
  att_bar_ = new ColorBar(att_row, 0, 1, att_map_, tr("attention probability"));
  for (auto* axis : att_rect_->axes()) axis->grid()->setVisible(false);
  att_rect_->axis(QCPAxis::atLeft)->setRangeReversed(true);
  att_rect_->axis(QCPAxis::atLeft)->setLabel(tr("query token"));
  att_rect_->axis(QCPAxis::atBottom)->setLabel(tr("key token (looked at)"));
  att_note_ = add_note(plot_, att_rect_);
}

// Panels without data leave the layout (and stop drawing), so the rest gets the room.
void MixingView::arrange(bool matrices, bool attention) {
  const bool spectrum = matrices && !classroom_;
  if (matrices == show_matrices_ && attention == show_attention_ && spectrum == show_spectrum_) return;
  auto* main = plot_->plotLayout();
  if (left_->layout()) main->take(left_);
  if (right_->layout()) main->take(right_);
  main->simplify();
  int column = 0;
  if (matrices) main->addElement(0, column++, left_);
  if (attention) main->addElement(0, column++, right_);
  if (column == 2) main->setColumnStretchFactors({1.15, 1.0});
  left_->setVisible(matrices);
  right_->setVisible(attention);
  if (spectrum != show_spectrum_) {
    if (spectrum) {
      left_->addElement(2, 0, spec_title_);
      left_->addElement(3, 0, spec_rect_);
      left_->setRowStretchFactor(1, 3);
      left_->setRowStretchFactor(3, 1.2);
    } else {
      left_->take(spec_title_);
      left_->take(spec_rect_);
      left_->simplify();
    }
  }
  spec_title_->setVisible(spectrum);
  spec_rect_->setVisible(spectrum);
  show_matrices_ = matrices;
  show_attention_ = attention;
  show_spectrum_ = spectrum;
  // Items are not children of their axis rect: hide them by hand.
  if (!matrices) map_note_->setVisible(false);
  if (!spectrum) spec_note_->setVisible(false);
  if (!attention) att_note_->setVisible(false);
}

void MixingView::setSnapshots(const QVector<SnapshotPtr>& all) {
  const bool append = !snapshots_.isEmpty() && all.size() >= snapshots_.size() &&
                      std::equal(snapshots_.begin(), snapshots_.end(), all.begin());
  if (!append) spectra_.clear();  // differences refer to the first snapshot, which may have changed
  snapshots_ = all;
  const int last = snapshots_.size() - 1;
  current_ = follow_ || current_ > last ? last : std::max(current_, 0);
  if (snapshots_.isEmpty()) current_ = -1;
  redraw();
}

void MixingView::setCurrentSnapshot(int index) {
  if (snapshots_.isEmpty()) return;
  const int last = snapshots_.size() - 1;
  current_ = std::clamp(index, 0, last);
  follow_ = current_ == last;
  redraw();
}

const Snapshot* MixingView::current() const {
  return current_ >= 0 && current_ < snapshots_.size() ? snapshots_[current_].get() : nullptr;
}

void MixingView::updateCombos(const Snapshot* s) {
  QStringList labels, att_labels;
  QList<QVariant> blocks, att_blocks;
  if (s)
    for (const auto& m : s->mixing) {
      if (is_attention(m)) {
        att_labels << tr("Block %1").arg(m.layer);
        att_blocks << m.layer;
      } else {
        labels << tr("Block %1: %2").arg(m.layer).arg(QString::fromStdString(m.kind));
        blocks << layer_key(m);
      }
    }
  set_combo_items(layer_combo_, labels, blocks, layer_combo_->currentData());
  set_combo_items(att_layer_combo_, att_labels, att_blocks, att_layer_combo_->currentData());

  QStringList names;
  QList<QVariant> data;
  if (const auto* layer = find_layer(s, key_block(layer_combo_->currentData()), key_kind(layer_combo_->currentData()));
      layer && layer_combo_->count())
    for (const auto& m : layer->matrices) {
      names << QString::fromStdString(m.name);
      data << QString::fromStdString(m.name);
    }
  set_combo_items(matrix_combo_, names, data, matrix_combo_->currentData());
  updateHeadCombo(s);
}

void MixingView::updateHeadCombo(const Snapshot* s) {
  QStringList names;
  QList<QVariant> data;
  if (const auto* layer = find_layer(s, att_layer_combo_->currentData().toInt(), "attention"); layer && att_layer_combo_->count())
    for (const auto& m : layer->matrices) {
      names << QString::fromStdString(m.name);
      data << QString::fromStdString(m.name);
    }
  set_combo_items(head_combo_, names, data, head_combo_->currentData());
}

void MixingView::redraw() {
  const int n = snapshots_.size();
  {
    const QSignalBlocker block(slider_);
    slider_->setRange(0, std::max(0, n - 1));
    slider_->setValue(std::max(0, current_));
    slider_->setEnabled(n > 1);
  }
  const Snapshot* s = current();
  step_label_->setText(n == 0 ? QString()
                              : tr("step %1 (%2 of %3)").arg(s ? QString::number(s->step) : QString("?")).arg(current_ + 1).arg(n));
  updateCombos(s);
  const bool matrices = layer_combo_->count() > 0, attention = att_layer_combo_->count() > 0;
  attention_controls_->setVisible(attention);
  if (!matrices && !attention) {
    hint_->setText(n == 0 ? tr("Start a run to see the mixing matrices.")
                          : tr("This snapshot holds no mixing matrices."));
    stack_->setCurrentWidget(hint_);
    export_->setEnabled(false);
    explain_->hide();
    map_->setData(0, 0, {});
    att_map_->setData(0, 0, {});
    sigma_.clear();
    spec_graph_->data()->clear();
    return;
  }
  stack_->setCurrentWidget(plot_);
  export_->setEnabled(true);
  arrange(matrices, attention);
  if (matrices) drawMatrix(s);
  else {
    explain_->hide();
    map_->setData(0, 0, {});
    sigma_.clear();
  }
  if (attention) drawAttention(s);
  else att_map_->setData(0, 0, {});
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

void MixingView::drawMatrix(const Snapshot* s) {
  const int block = key_block(layer_combo_->currentData());
  const std::string kind = key_kind(layer_combo_->currentData());
  const std::string name = matrix_combo_->currentData().toString().toStdString();
  const auto* layer = find_layer(s, block, kind);
  const auto* m = find_matrix(layer, name);
  const bool fixed = layer && is_fixed_basis(layer->kind);
  diff_box_->setEnabled(!fixed);
  {
    const QSignalBlocker block_signals(diff_box_);
    diff_box_->setChecked(want_diff_ && !fixed);
  }
  const bool diff = want_diff_ && !fixed && !classroom_;  // classroom mode hides the toggle: show the weights
  const QString qname = QString::fromStdString(name);
  const Snapshot* first = snapshots_.isEmpty() ? nullptr : snapshots_.first().get();

  QString title = tr("Block %1: %2").arg(block).arg(layer ? QString::fromStdString(layer->kind) : QString("?"));
  QString problem;
  std::vector<float> values;
  int rows = 0, cols = 0;
  if (!m) {
    problem = tr("this snapshot has no '%1' matrix for block %2").arg(qname).arg(block);
  } else if (!consistent(*m)) {
    problem = tr("'%1' is inconsistent: %2 values for %3 x %4").arg(qname).arg(m->values.size()).arg(m->rows).arg(m->cols);
  } else {
    rows = m->rows;
    cols = m->cols;
    values = m->values;
    title += tr(", %1 matrix %2 x %3").arg(qname).arg(rows).arg(cols);
    if (diff) {
      const auto* m0 = find_matrix(find_layer(first, block, kind), name);
      if (!m0 || !consistent(*m0) || m0->rows != rows || m0->cols != cols) {
        problem = tr("the first snapshot has no %1 x %2 '%3' matrix to compare with").arg(rows).arg(cols).arg(qname);
      } else {
        for (size_t i = 0; i < values.size(); ++i) values[i] -= m0->values[i];
        title += tr(", change since step %1").arg(first->step);
      }
    }
  }
  if (fixed) title += tr(" (fixed basis, not trained)");
  if (s) title += tr(", step %1").arg(s->step);
  title_->setText(title);

  if (!problem.isEmpty()) {
    rows = cols = 0;
    values.clear();
  }
  QVector<double> cells(static_cast<int>(values.size()));
  for (size_t i = 0; i < values.size(); ++i) cells[i] = std::isfinite(values[i]) ? values[i] : kNaN;
  map_->setData(rows, cols, std::move(cells));
  map_->setCellBorders(rows * cols <= 256);
  map_->rescaleDataRange(true);  // signed: white is zero
  map_bar_->setLabel(diff ? tr("change since initialisation") : tr("weight"));
  map_rect_->axis(QCPAxis::atBottom)->setRange(-0.5, std::max(cols, 1) - 0.5);
  map_rect_->axis(QCPAxis::atLeft)->setRange(-0.5, std::max(rows, 1) - 0.5);
  // Y = M_seq · X: a sequence matrix's row is the output position, its column the input position.
  const bool sequence = is_sequence_matrix(name), channels = is_channel_map(name);
  map_rect_->axis(QCPAxis::atLeft)->setLabel(sequence ? tr("output position (row)") : channels ? tr("gate channel") : tr("row"));
  map_rect_->axis(QCPAxis::atBottom)->setLabel(sequence ? tr("input position (column)") : channels ? tr("expert") : tr("column"));
  if (channels) map_bar_->setLabel(diff ? tr("change since initialisation") : tr("share of the channel (router probability)"));
  show_note(map_note_, problem);
  const QString why = explain(layer, name);
  explain_->setText(why);
  explain_->setVisible(!why.isEmpty());

  if (show_spectrum_) drawSpectrum(values, rows, cols, s, qname, diff);
  else sigma_.clear();
}

void MixingView::drawSpectrum(const std::vector<float>& values, int rows, int cols, const Snapshot* s,
                              const QString& matrix, bool difference) {
  const auto key = std::make_tuple(s, key_block(layer_combo_->currentData()), matrix.toStdString(), difference);
  auto it = spectra_.find(key);
  if (it == spectra_.end()) {
    if (spectra_.size() >= kMaxSpectra) spectra_.clear();
    it = spectra_.emplace(key, SpectrumEntry{snapshots_.value(current_), linalg::singular_values(rows, cols, values)}).first;
  }
  sigma_ = it->second.sigma;
  // A log axis has no zero: values below rounding noise of the largest (a
  // rank-deficient matrix, like the real part of a Fourier basis) are left out.
  const double largest = sigma_.empty() ? 0.0 : sigma_.front();
  const double floor = largest * kZeroSingularValue;
  QVector<double> keys, sv;
  double lo = std::numeric_limits<double>::infinity(), hi = 0;
  int zeros = 0;
  for (size_t i = 0; i < sigma_.size(); ++i) {
    if (!(sigma_[i] > floor) || !std::isfinite(sigma_[i])) {
      ++zeros;
      continue;
    }
    keys << double(i + 1);
    sv << sigma_[i];
    lo = std::min(lo, sigma_[i]);
    hi = std::max(hi, sigma_[i]);
  }
  spec_graph_->setData(keys, sv, true);
  spec_graph_->setScatterStyle(sv.size() <= 64 ? QCPScatterStyle(QCPScatterStyle::ssDisc, 4) : QCPScatterStyle());
  const int n = std::max<int>(sigma_.size(), 1);
  spec_rect_->axis(QCPAxis::atBottom)->setRange(0.5, n + 0.5);
  if (hi > 0) {
    spec_rect_->axis(QCPAxis::atLeft)->setRange(lo / 2, hi * 2);
  } else {
    spec_rect_->axis(QCPAxis::atLeft)->setRange(1e-3, 1);
  }
  QString note;
  if (rows * cols > 0 && sigma_.empty()) note = tr("no spectrum: the matrix holds NaN or infinite values");
  else if (!sigma_.empty() && sv.isEmpty()) note = tr("all singular values are zero");
  else if (zeros > 0) note = tr("%1 of %2 are zero (rank %3), not drawn").arg(zeros).arg(sigma_.size()).arg(sv.size());
  show_note(spec_note_, note);
}

void MixingView::drawAttention(const Snapshot* s) {
  const int block = att_layer_combo_->currentData().toInt();
  const std::string name = head_combo_->currentData().toString().toStdString();
  const auto* m = find_matrix(find_layer(s, block, "attention"), name);
  QString title = tr("Block %1: %2 (probe text)").arg(block).arg(QString::fromStdString(name));
  if (s) title += tr(", step %1").arg(s->step);
  att_title_->setText(title);
  if (!m || !consistent(*m)) {
    att_map_->setData(0, 0, {});
    att_bar_->setLabel(tr("attention probability"));
    show_note(att_note_, m ? tr("'%1' is inconsistent: %2 values for %3 x %4")
                                 .arg(QString::fromStdString(name))
                                 .arg(m->values.size())
                                 .arg(m->rows)
                                 .arg(m->cols)
                           : tr("no attention map for this head"));
    return;
  }
  // The maps span the padded sequence; the probe's real tokens are its first T
  // positions, and the rest would only show attention to and from padding.
  const std::vector<std::string>* tokens = nullptr;
  if (s && !s->probe.empty() && !s->probe.front().tokens.empty()) tokens = &s->probe.front().tokens;
  const int T = tokens ? static_cast<int>(tokens->size()) : 0;
  const int rows = T > 0 ? std::min(m->rows, T) : m->rows, cols = T > 0 ? std::min(m->cols, T) : m->cols;
  QVector<double> cells(rows * cols);
  double top = 0;
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) {
      const double v = m->values[static_cast<size_t>(r) * m->cols + c];
      cells[r * cols + c] = std::isfinite(v) ? v : kNaN;
      if (std::isfinite(v)) top = std::max(top, v);
    }
  att_map_->setData(rows, cols, std::move(cells));
  att_map_->setCellBorders(rows * cols <= 256);
  // Each row spreads one unit over all keys, so with many keys every
  // probability is small and a fixed 0..1 scale would be uniformly dark:
  // colour up to this head's largest value instead, and say so on the bar.
  att_map_->setDataRange(QCPRange(0, top > 0 ? top : 1));
  att_bar_->setLabel(top > 0 ? tr("attention probability (max %1)").arg(QString::number(top, 'g', 2))
                             : tr("attention probability"));
  att_rect_->axis(QCPAxis::atBottom)->setRange(-0.5, cols - 0.5);
  att_rect_->axis(QCPAxis::atLeft)->setRange(-0.5, rows - 0.5);
  // Token strings as labels when the probe's tokens match the map.
  auto* x = att_rect_->axis(QCPAxis::atBottom);
  auto* y = att_rect_->axis(QCPAxis::atLeft);
  if (T > 0 && rows == T && cols == T) {
    x->setTicker(token_ticker(*tokens));
    y->setTicker(token_ticker(*tokens));
    x->setTickLabelRotation(-90);
  } else {
    x->setTicker(index_ticker());
    y->setTicker(index_ticker());
    x->setTickLabelRotation(0);
  }
  show_note(att_note_, QString());
}

void MixingView::setClassroomMode(bool on) {
  if (on == classroom_) return;
  classroom_ = on;
  diff_box_->setVisible(!on);
  updateFonts();
  redraw();
  // redraw() arranges only when there is something to show.
  if (stack_->currentWidget() == hint_) arrange(show_matrices_, show_attention_);
}

void MixingView::setShowDifference(bool on) {
  if (want_diff_ == on) return;
  want_diff_ = on;
  redraw();
}

void MixingView::updateFonts() {
  const double k = classroom_ ? 1.5 : 1.0;
  QFont f = base_font_;
  if (base_font_.pointSizeF() > 0) f.setPointSizeF(base_font_.pointSizeF() * k);
  else f.setPixelSize(static_cast<int>(std::lround(base_font_.pixelSize() * k)));
  setFont(f);
  QFont title = f;
  title.setBold(true);
  for (QCPAxisRect* rect : std::initializer_list<QCPAxisRect*>{map_rect_, map_bar_, spec_rect_, att_rect_, att_bar_})
    for (auto* axis : rect->axes()) {
      axis->setTickLabelFont(f);
      axis->setLabelFont(f);
    }
  for (auto* t : {title_, spec_title_, att_title_}) t->setFont(title);
  for (auto* note : {map_note_, spec_note_, att_note_}) note->setFont(f);
}

bool MixingView::exportView(const QString& path, QString* error) const {
  if (map_->cellCount() == 0 && att_map_->cellCount() == 0) {
    if (error) *error = tr("nothing to export yet: no mixing matrix is shown");
    return false;
  }
  auto csv = [this] {
    CsvTable t;
    t.header = QStringList{"panel", "name", "row", "col", "value"};
    const QString matrix = tr("block %1 %2%3")
                               .arg(key_block(layer_combo_->currentData()))
                               .arg(matrix_combo_->currentText())
                               .arg(showingDifference() ? tr(" minus initial") : QString());
    add_cells(t, "matrix", matrix, map_);
    for (size_t i = 0; i < sigma_.size(); ++i)
      t.rows.append({"singular_values", matrix, QString::number(i), QString(), QString::number(sigma_[i], 'g', 10)});
    if (show_attention_)
      add_cells(t, "attention",
                tr("block %1 %2").arg(att_layer_combo_->currentData().toInt()).arg(head_combo_->currentText()), att_map_);
    return t;
  };
  // A queued replot may not have run yet: exports show the current data.
  plot_->replot(QCustomPlot::rpImmediateRefresh);
  const int width = show_attention_ && show_matrices_ ? 1400 : 900;
  return exportPlot(plot_, path, csv, error, std::max(width, plot_->width()), std::max(800, plot_->height()));
}

void MixingView::exportDialog() {
  exportWithDialog(this, tr("Export mixing view"), "mixing.png", [this](const QString& path, QString* error) { return exportView(path, error); });
}

int MixingView::mixingLayerCount() const { return layer_combo_->count(); }
void MixingView::setCurrentMixingLayer(int index) {
  if (index >= 0 && index < layer_combo_->count()) layer_combo_->setCurrentIndex(index);
}
int MixingView::currentMixingLayer() const { return layer_combo_->currentIndex(); }
QStringList MixingView::matrixNames() const {
  QStringList names;
  for (int i = 0; i < matrix_combo_->count(); ++i) names << matrix_combo_->itemText(i);
  return names;
}
void MixingView::setCurrentMatrix(int index) {
  if (index >= 0 && index < matrix_combo_->count()) matrix_combo_->setCurrentIndex(index);
}
int MixingView::cellCount() const { return map_->cellCount(); }
double MixingView::cellValue(int row, int col) const {
  if (row < 0 || row >= map_->rows() || col < 0 || col >= map_->cols()) return kNaN;
  return map_->value(row, col);
}
int MixingView::singularValueCount() const { return static_cast<int>(sigma_.size()); }
std::vector<double> MixingView::singularValues() const { return sigma_; }
int MixingView::currentSnapshot() const { return current_; }
int MixingView::snapshotCount() const { return snapshots_.size(); }
bool MixingView::showingDifference() const {
  return want_diff_ && diff_box_->isEnabled() && show_matrices_ && !classroom_;
}
bool MixingView::differenceAvailable() const { return diff_box_->isEnabled(); }
QString MixingView::caption() const { return title_->text(); }
QString MixingView::explanation() const { return explain_->isHidden() ? QString() : explain_->text(); }
QString MixingView::stepLabel() const { return step_label_->text(); }
int MixingView::attentionLayerCount() const { return att_layer_combo_->count(); }
void MixingView::setCurrentAttentionLayer(int index) {
  if (index >= 0 && index < att_layer_combo_->count()) att_layer_combo_->setCurrentIndex(index);
}
int MixingView::attentionHeadCount() const { return head_combo_->count(); }
void MixingView::setCurrentAttentionHead(int index) {
  if (index >= 0 && index < head_combo_->count()) head_combo_->setCurrentIndex(index);
}
int MixingView::attentionCellCount() const { return att_map_->cellCount(); }
double MixingView::attentionValue(int row, int col) const {
  if (row < 0 || row >= att_map_->rows() || col < 0 || col >= att_map_->cols()) return kNaN;
  return att_map_->value(row, col);
}

}  // namespace smx::widgets
