#include "widgets/playground_view.h"

#include <QApplication>
#include <QDoubleSpinBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QPainter>
#include <QPushButton>
#include <QSpinBox>
#include <QSplitter>
#include <QStackedWidget>
#include <QStyledItemDelegate>
#include <QTableWidget>
#include <QTextBrowser>
#include <QTextDocument>
#include <QToolButton>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <qcustomplot.h>

#include "widgets/plot_export.h"
#include "widgets/view_style.h"

namespace smx::widgets {

namespace {

// The routing columns keep the experts' ids here; the delegate draws them as chips.
constexpr int kExpertsRole = Qt::UserRole + 1;
constexpr double kClassroomScale = 1.5;
constexpr int kChartsPerRow = 3;
const QColor kBar(31, 119, 180);
const QColor kGenerated(31, 90, 180);        // continuation text
const QColor kGeneratedRow(225, 236, 250);   // its rows in the routing table

QString experts_text(const QVector<int>& experts) {
  if (experts.isEmpty()) return QStringLiteral("—");
  QStringList parts;
  for (int e : experts) parts << QStringLiteral("E%1").arg(e);
  return parts.join(", ");
}

class ExpertChipsDelegate : public QStyledItemDelegate {
 public:
  using QStyledItemDelegate::QStyledItemDelegate;
  void paint(QPainter* painter, const QStyleOptionViewItem& option, const QModelIndex& index) const override {
    const QVariantList experts = index.data(kExpertsRole).toList();
    QStyleOptionViewItem opt = option;
    initStyleOption(&opt, index);
    if (!experts.isEmpty()) opt.text.clear();  // chips instead of "E3, E5"; "—" stays as text
    opt.widget->style()->drawControl(QStyle::CE_ItemViewItem, &opt, painter, opt.widget);
    if (experts.isEmpty()) return;
    painter->save();
    painter->setRenderHint(QPainter::Antialiasing);
    painter->setFont(opt.font);
    const QFontMetrics fm(opt.font);
    const int h = std::min(option.rect.height() - 4, fm.height() + 4);
    int x = option.rect.left() + 4;
    const int y = option.rect.top() + (option.rect.height() - h) / 2;
    for (const auto& v : experts) {
      const int e = v.toInt();
      const QString label = QStringLiteral("E%1").arg(e);
      const QRect chip(x, y, fm.horizontalAdvance(label) + 10, h);
      const QColor fill = PlaygroundView::expertColor(e);
      painter->setPen(Qt::NoPen);
      painter->setBrush(fill);
      painter->drawRoundedRect(chip, h / 2.0, h / 2.0);
      painter->setPen(fill.lightnessF() > 0.6 ? Qt::black : Qt::white);
      painter->drawText(chip, Qt::AlignCenter, label);
      x = chip.right() + 4;
    }
    painter->restore();
  }
  QSize sizeHint(const QStyleOptionViewItem& option, const QModelIndex& index) const override {
    QSize s = QStyledItemDelegate::sizeHint(option, index);
    const QVariantList experts = index.data(kExpertsRole).toList();
    if (experts.isEmpty()) return s;
    const QFontMetrics fm(option.font);
    int w = 8;
    for (const auto& v : experts) w += fm.horizontalAdvance(QStringLiteral("E%1").arg(v.toInt())) + 14;
    return {std::max(s.width(), w), std::max(s.height(), fm.height() + 8)};
  }
};

}  // namespace

QColor PlaygroundView::expertColor(int expert) {
  // Tableau 20: distinct enough for 16 experts; beyond that colours repeat, the label tells them apart.
  static const QColor palette[] = {
      {31, 119, 180},  {255, 127, 14},  {44, 160, 44},   {214, 39, 40},   {148, 103, 189},
      {140, 86, 75},   {227, 119, 194}, {127, 127, 127}, {188, 189, 34},  {23, 190, 207},
      {174, 199, 232}, {255, 187, 120}, {152, 223, 138}, {255, 152, 150}, {197, 176, 213},
      {196, 156, 148}, {247, 182, 210}, {199, 199, 199}, {219, 219, 141}, {158, 218, 229}};
  return palette[((expert % 20) + 20) % 20];
}

PlaygroundView::PlaygroundView(QWidget* parent) : QWidget(parent) {
  input_ = new QLineEdit(this);
  input_->setObjectName("sentence");
  input_->setPlaceholderText(tr("The cat sat on the [MASK]."));
  input_->setClearButtonEnabled(true);
  input_->setToolTip(tr("Type a sentence and write [MASK] where the model should guess the word. "
                        "Without [MASK] you still see which experts take each token."));
  predict_ = new QPushButton(tr("Predict"), this);
  predict_->setObjectName("predict");
  predict_->setToolTip(tr("Run the sentence through the model once (also: Enter)."));
  export_ = new QToolButton(this);
  export_->setText(tr("Export…"));
  export_->setToolTip(tr("Save the prediction bars as an image (PNG, SVG, PDF) or predictions and routing as CSV."));
  model_ = new QLabel(this);
  model_->setObjectName("model");
  model_->setToolTip(tr("The trained model that answers."));
  status_ = new QLabel(this);
  status_->setObjectName("status");
  styleAsStatus(status_);
  error_ = new QLabel(this);
  error_->setObjectName("error");
  styleAsError(error_);

  plot_ = new QCustomPlot(this);
  plot_->setObjectName("predictions");
  plot_->setMinimumHeight(180);
  plot_->setToolTip(tr("For each [MASK]: the words the model finds most likely, with their probability."));
  table_ = new QTableWidget(0, 1, this);
  table_->setObjectName("routing");
  table_->verticalHeader()->hide();
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  chips_ = new ExpertChipsDelegate(table_);
  table_->setToolTip(tr("Each token of the sentence and, per MoE layer, the experts that processed it. "
                        "A dash means no expert took the token: it skipped that layer's experts."));

  // Decoder-LM controls (hidden for encoders).
  lm_controls_ = new QWidget(this);
  lm_controls_->setObjectName("lmControls");
  auto* lm_row = new QHBoxLayout(lm_controls_);
  lm_row->setContentsMargins(0, 0, 0, 0);
  new_tokens_ = new QSpinBox(lm_controls_);
  new_tokens_->setObjectName("newTokens");
  new_tokens_->setRange(1, 512);
  new_tokens_->setToolTip(tr("How many tokens to generate at most; generation also stops at the end of a document."));
  temperature_ = new QDoubleSpinBox(lm_controls_);
  temperature_->setObjectName("temperature");
  temperature_->setRange(0, 5);
  temperature_->setSingleStep(0.1);
  temperature_->setDecimals(2);
  temperature_->setToolTip(tr("0: always the most likely token (greedy). Above 0 the next token is drawn at random "
                              "from the model's probabilities: low values stay close to greedy, high ones wander."));
  top_k_ = new QSpinBox(lm_controls_);
  top_k_->setObjectName("topK");
  top_k_->setRange(0, 100000);
  top_k_->setToolTip(tr("When sampling, draw only among the k most likely tokens (0: all of them)."));
  seed_ = new QSpinBox(lm_controls_);
  seed_->setObjectName("seed");
  seed_->setRange(0, 2147483647);
  seed_->setToolTip(tr("The same seed draws the same continuation again."));
  leak_button_ = new QPushButton(tr("Leak check"), lm_controls_);
  leak_button_->setObjectName("leakCheck");
  leak_button_->setToolTip(tr("Compare teacher-forced perplexity (training's view: one pass over a whole window) with "
                              "token-by-token perplexity (generation's view: each token from the ones before it) on "
                              "held-out text. They differ only if the model reads future tokens."));
  lm_row->addWidget(new QLabel(tr("New tokens"), lm_controls_));
  lm_row->addWidget(new_tokens_);
  lm_row->addSpacing(8);
  lm_row->addWidget(new QLabel(tr("Temperature"), lm_controls_));
  lm_row->addWidget(temperature_);
  lm_row->addSpacing(8);
  lm_row->addWidget(new QLabel(tr("Top-k"), lm_controls_));
  lm_row->addWidget(top_k_);
  lm_row->addSpacing(8);
  lm_row->addWidget(new QLabel(tr("Seed"), lm_controls_));
  lm_row->addWidget(seed_);
  lm_row->addStretch(1);
  lm_row->addWidget(leak_button_);
  lm_controls_->hide();
  setGenerationSettings({});

  generated_ = new QTextBrowser(this);
  generated_->setObjectName("generated");
  generated_->setToolTip(tr("The prompt, then what the model wrote (in blue)."));
  leak_ = new QLabel(this);
  leak_->setObjectName("leak");
  leak_->setWordWrap(true);
  leak_->setTextFormat(Qt::RichText);
  leak_->setFrameShape(QFrame::StyledPanel);
  leak_->setMargin(6);
  leak_->hide();
  auto* lm_page = new QWidget(this);
  auto* lm_layout = new QVBoxLayout(lm_page);
  lm_layout->setContentsMargins(0, 0, 0, 0);
  lm_layout->addWidget(generated_, 1);
  lm_layout->addWidget(leak_);
  top_ = new QStackedWidget(this);
  top_->addWidget(plot_);
  top_->addWidget(lm_page);

  auto* row = new QHBoxLayout;
  row->addWidget(input_, 1);
  row->addWidget(predict_);
  row->addWidget(export_);
  auto* split = new QSplitter(Qt::Vertical, this);
  split->addWidget(top_);
  split->addWidget(table_);
  split->setStretchFactor(0, 3);
  split->setStretchFactor(1, 2);
  split->setSizes({420, 300});  // the bars need the height; a sentence is a short table
  auto* layout = new QVBoxLayout(this);
  layout->addWidget(model_);
  layout->addLayout(row);
  layout->addWidget(lm_controls_);
  layout->addWidget(status_);
  layout->addWidget(error_);
  layout->addWidget(split, 1);

  connect(input_, &QLineEdit::textChanged, this, &PlaygroundView::updateButtons);
  connect(input_, &QLineEdit::returnPressed, this, &PlaygroundView::requestPredict);
  connect(predict_, &QPushButton::clicked, this, &PlaygroundView::requestPredict);
  connect(leak_button_, &QPushButton::clicked, this, [this] {
    if (leak_button_->isEnabled()) Q_EMIT leakCheckRequested();
  });
  connect(export_, &QToolButton::clicked, this, [this] {
    exportWithDialog(this, tr("Export playground"), QString(), [this](const QString& path, QString* error) { return exportView(path, error); });
  });

  setModelDescription({});
  updateButtons();
  updateStatus();
  rebuildPlot();
  rebuildTable();
  rebuildGeneration();
}

void PlaygroundView::requestPredict() {
  if (!predict_->isEnabled()) return;  // Enter while busy or with nothing typed
  if (lm_) Q_EMIT generateRequested(input_->text(), generationSettings());
  else Q_EMIT predictRequested(input_->text());
}

void PlaygroundView::updateButtons() {
  predict_->setEnabled(!busy_ && !input_->text().trimmed().isEmpty());
  leak_button_->setEnabled(!busy_);
}

void PlaygroundView::setLanguageModel(bool lm) {
  if (lm == lm_) return;
  lm_ = lm;
  const QString text = input_->text();
  input_->setText(other_text_.isEmpty() && lm ? QStringLiteral("a dog is a") : other_text_);
  other_text_ = text;
  predict_->setText(lm ? tr("Generate") : tr("Predict"));
  predict_->setToolTip(lm ? tr("Continue the prompt with the model (also: Enter).")
                          : tr("Run the sentence through the model once (also: Enter)."));
  input_->setPlaceholderText(lm ? tr("The beginning of a text for the model to continue") : tr("The cat sat on the [MASK]."));
  input_->setToolTip(lm ? tr("A decoder language model continues this text one token at a time.")
                        : tr("Type a sentence and write [MASK] where the model should guess the word. "
                             "Without [MASK] you still see which experts take each token."));
  lm_controls_->setVisible(lm);
  top_->setCurrentIndex(lm ? 1 : 0);
  error_->clear();
  error_->hide();
  updateButtons();
  updateStatus();
  rebuildTable();
  rebuildGeneration();
}

GenerationSettings PlaygroundView::generationSettings() const {
  GenerationSettings g;
  g.max_new_tokens = new_tokens_->value();
  g.temperature = temperature_->value();
  g.top_k = top_k_->value();
  g.seed = quint64(seed_->value());
  return g;
}

void PlaygroundView::setGenerationSettings(const GenerationSettings& g) {
  new_tokens_->setValue(g.max_new_tokens);
  temperature_->setValue(g.temperature);
  top_k_->setValue(g.top_k);
  seed_->setValue(int(std::min<quint64>(g.seed, 2147483647)));
}

void PlaygroundView::setGeneration(const GenerationResult& result) {
  if (!result.error.isEmpty()) {
    error_->setText(result.error);
    error_->show();
    return;  // the previous continuation stays drawn
  }
  error_->clear();
  error_->hide();
  generation_ = result;
  has_generation_ = true;
  rebuildGeneration();
  rebuildTable();
  updateStatus();
}

void PlaygroundView::setLeakCheck(const LeakCheckResult& r) {
  if (!r.error.isEmpty()) {
    leak_->setText(tr("<b>Leak check failed:</b> %1").arg(r.error.toHtmlEscaped()));
    leak_->show();
    return;
  }
  const double gap = r.token_by_token > 0 ? 1.0 - r.teacher_forced / r.token_by_token : 0.0;
  const bool leaks = std::abs(gap) > 1e-3;
  QString verdict = !leaks ? tr("<b>Equal</b> (within 0.1%): no future token leaks into the predictions.")
                    : gap > 0 ? tr("<b>Not equal:</b> teacher forcing looks %1% better than what generation gets — "
                                   "this model reads tokens it should not see yet.")
                                    .arg(100.0 * gap, 0, 'f', 1)
                              : tr("<b>Not equal</b> (by %1%): the model's predictions depend on tokens it should not "
                                   "see yet.")
                                    .arg(-100.0 * gap, 0, 'f', 1);
  leak_->setText(tr("<table cellspacing='6'><tr><td>Teacher-forced perplexity</td><td><b>%1</b></td>"
                    "<td>&nbsp;&nbsp;Token-by-token perplexity</td><td><b>%2</b></td>"
                    "<td>&nbsp;&nbsp;(%3 held-out windows, %4 targets; sMoE routing: %5)</td></tr></table>"
                    "%6<br>Teacher forcing scores every position of a window from one pass over the whole window, as in "
                    "training; token by token, each next token is predicted from the tokens before it alone, as in "
                    "generation: a causal model gives equal numbers, while the learned sMoE routes with future tokens, "
                    "so its teacher-forced perplexity is optimistic.")
                     .arg(r.teacher_forced, 0, 'f', 2)
                     .arg(r.token_by_token, 0, 'f', 2)
                     .arg(r.windows)
                     .arg(r.targets)
                     .arg(r.smoe_routing.isEmpty() ? tr("none") : r.smoe_routing.toHtmlEscaped())
                     .arg(verdict));
  leak_->show();
}

QString PlaygroundView::generatedText() const { return has_generation_ ? generated_->toPlainText() : QString(); }
QString PlaygroundView::leakText() const {
  if (leak_->isHidden()) return {};
  QTextDocument doc;
  doc.setHtml(leak_->text());
  return doc.toPlainText();
}

void PlaygroundView::rebuildGeneration() {
  if (!has_generation_) {
    generated_->setHtml(tr("<p style='color:#6e6e6e'>Type the beginning of a text and press Generate: the model "
                           "continues it one token at a time. Temperature 0 always takes the most likely token.</p>"));
    return;
  }
  QString continuation = generation_.continuation.toHtmlEscaped();
  if (continuation.isEmpty()) continuation = tr("<i>(nothing: the model ended the document at once)</i>");
  generated_->setHtml(QStringLiteral("<p style='font-size:%1pt'>%2 <span style='color:%3; font-weight:bold'>%4</span>%5</p>")
                          .arg(scaledFont(1.25).pointSizeF() > 0 ? scaledFont(1.25).pointSizeF() : 12.0)
                          .arg(generation_.prompt.toHtmlEscaped())
                          .arg(kGenerated.name())
                          .arg(continuation)
                          .arg(generation_.stopped ? tr(" <span style='color:#6e6e6e'>[end of document]</span>") : QString()));
}

void PlaygroundView::setBusy(bool busy) {
  busy_ = busy;
  updateButtons();
  updateStatus();
}

void PlaygroundView::setModelDescription(const QString& text) {
  model_->setText(text.isEmpty() ? tr("no model") : tr("Model: %1").arg(text));
}

QString PlaygroundView::text() const { return input_->text(); }
void PlaygroundView::setText(const QString& text) { input_->setText(text); }

void PlaygroundView::setResult(const PlaygroundResult& result) {
  if (!result.error.isEmpty()) {
    error_->setText(result.error);
    error_->show();
    return;  // the previous result stays drawn
  }
  error_->clear();
  error_->hide();
  result_ = result;
  has_result_ = true;
  rebuildPlot();
  rebuildTable();
  updateStatus();
}

void PlaygroundView::updateStatus() {
  QStringList parts;
  if (lm_) {
    if (busy_) parts << tr("working…");
    if (has_generation_) {
      const int n = generation_.tokens.size() - generation_.prompt_tokens;
      parts << (n == 1 ? tr("1 new token") : tr("%1 new tokens").arg(n)) + (generation_.stopped ? tr(", stopped at the end of a document") : QString());
      if (!classroom_ && std::isfinite(generation_.latency_ms) && generation_.latency_ms > 0)
        parts << tr("%1 ms%2").arg(generation_.latency_ms, 0, 'f', 0).arg(generation_.device.isEmpty() ? QString() : tr(" on %1").arg(generation_.device));
    }
    status_->setText(parts.join(QStringLiteral("  ·  ")));
    status_->setVisible(!parts.isEmpty());
    return;
  }
  if (busy_) parts << tr("predicting…");
  if (has_result_) {
    if (chart_count_ == 0 && !result_.tokens.isEmpty())
      parts << tr("No [MASK] in the sentence: only the routing is shown.");
    if (!classroom_ && std::isfinite(result_.latency_ms) && result_.latency_ms > 0) {
      parts << (result_.device.isEmpty() ? tr("forward %1 ms").arg(result_.latency_ms, 0, 'f', 1)
                                         : tr("forward %1 ms on %2").arg(result_.latency_ms, 0, 'f', 1).arg(result_.device));
    }
  }
  status_->setText(parts.join(QStringLiteral("  ·  ")));
  status_->setVisible(!parts.isEmpty());
}

QFont PlaygroundView::scaledFont(double factor, bool bold) const {
  QFont f = font();  // the widget font already carries the classroom scale
  if (f.pointSizeF() > 0) f.setPointSizeF(f.pointSizeF() * factor);
  else f.setPixelSize(static_cast<int>(f.pixelSize() * factor));
  f.setBold(bold);
  return f;
}

void PlaygroundView::rebuildPlot() {
  plot_->clearItems();
  plot_->clearPlottables();
  plot_->plotLayout()->clear();  // also deletes the axis rects; built again below
  bar_count_ = 0;
  chart_count_ = 0;

  QVector<const MaskPrediction*> charts;
  for (const auto& p : result_.predictions)
    if (!p.top.isEmpty()) charts << &p;

  if (charts.isEmpty()) {
    const QString hint = !has_result_ || result_.tokens.isEmpty()
                             ? tr("Type a sentence with [MASK] and press Predict\nto see the model's guesses.")
                             : tr("No [MASK] in this sentence:\nthe table below shows which experts took each token.");
    auto* text = new QCPTextElement(plot_, hint, scaledFont(1.15));
    text->setTextColor(QColor(110, 110, 110));
    // Empty elements above and below share the height the text does not need: it sits in the middle.
    plot_->plotLayout()->addElement(0, 0, new QCPLayoutElement(plot_));
    plot_->plotLayout()->addElement(1, 0, text);
    plot_->plotLayout()->addElement(2, 0, new QCPLayoutElement(plot_));
    plot_->replot(QCustomPlot::rpQueuedReplot);
    return;
  }

  const int cols = std::min<int>(static_cast<int>(charts.size()), kChartsPerRow);
  const QFont font = scaledFont(), title_font = scaledFont(1.1, true), small = scaledFont(0.9);
  for (int i = 0; i < charts.size(); ++i) {
    const MaskPrediction& p = *charts[i];
    const int grid_row = 2 * (i / cols), grid_col = i % cols;
    const QString word = p.position >= 0 && p.position < result_.tokens.size() ? result_.tokens[p.position].piece
                                                                                : QStringLiteral("[MASK]");
    auto* title = new QCPTextElement(plot_, tr("%1 at token %2").arg(word).arg(p.position), title_font);
    plot_->plotLayout()->addElement(grid_row, grid_col, title);
    auto* rect = new QCPAxisRect(plot_);
    plot_->plotLayout()->addElement(grid_row + 1, grid_col, rect);
    QCPAxis* key = rect->axis(QCPAxis::atLeft);
    QCPAxis* value = rect->axis(QCPAxis::atBottom);

    // Most likely on top: keys 0..k-1 downwards on a reversed axis, pieces as tick labels.
    const int k = static_cast<int>(p.top.size());
    QVector<double> keys, values;
    QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
    for (int j = 0; j < k; ++j) {
      const double prob = p.top[j].second;
      ticker->addTick(j, p.top[j].first);
      if (!std::isfinite(prob)) continue;  // nothing to draw for NaN
      keys << j;
      values << std::clamp(prob, 0.0, 1.0);
    }
    key->setTicker(ticker);
    key->setRangeReversed(true);
    key->setRange(-0.6, k - 0.4);
    key->setTickLabelFont(font);
    key->grid()->setVisible(false);
    key->setTickLength(0, 0);
    key->setSubTicks(false);
    value->setRange(0, 1.0);
    value->setLabel(tr("probability"));
    value->setLabelFont(small);
    value->setTickLabelFont(small);

    auto* bars = new QCPBars(key, value);
    bars->setWidth(0.7);
    bars->setPen(Qt::NoPen);
    bars->setBrush(kBar);
    bars->setData(keys, values, true);
    bar_count_ += static_cast<int>(keys.size());
    ++chart_count_;

    // The probability as text: inside a long bar, after a short one.
    for (int j = 0; j < keys.size(); ++j) {
      auto* label = new QCPItemText(plot_);
      label->setClipAxisRect(rect);
      label->position->setAxes(value, key);
      label->position->setCoords(values[j], keys[j]);
      const bool inside = values[j] > 0.75;
      label->setPositionAlignment(Qt::AlignVCenter | (inside ? Qt::AlignRight : Qt::AlignLeft));
      label->setPadding(QMargins(4, 0, 4, 0));
      label->setColor(inside ? Qt::white : Qt::black);
      label->setFont(small);
      label->setText(QStringLiteral("%1%").arg(100.0 * values[j], 0, 'f', values[j] < 0.1 ? 1 : 0));
    }
  }
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

void PlaygroundView::rebuildTable() {
  static const PlaygroundResult none;
  const auto& tokens = lm_ ? (has_generation_ ? generation_.tokens : none.tokens) : result_.tokens;
  const auto& moe_layers = lm_ ? generation_.moe_layers : result_.moe_layers;
  int layers = static_cast<int>(moe_layers.size());
  for (const auto& t : tokens) layers = std::max(layers, static_cast<int>(t.experts.size()));
  QStringList header{tr("token")};
  for (int l = 0; l < layers; ++l)
    header << (l < moe_layers.size() ? tr("MoE layer %1").arg(moe_layers[l]) : tr("MoE %1").arg(l));
  table_->clear();
  table_->setColumnCount(1 + layers);
  table_->setHorizontalHeaderLabels(header);
  table_->setRowCount(static_cast<int>(tokens.size()));
  for (int c = 1; c <= layers; ++c) table_->setItemDelegateForColumn(c, chips_);

  // Top guess per masked position, shown next to the mask.
  QHash<int, QString> guess;
  if (!lm_)
    for (const auto& p : result_.predictions)
      if (!p.top.isEmpty()) guess[p.position] = p.top.front().first;

  for (int r = 0; r < tokens.size(); ++r) {
    const auto& t = tokens[r];
    auto* piece = new QTableWidgetItem(guess.contains(r) ? QStringLiteral("%1 → %2").arg(t.piece, guess[r]) : t.piece);
    if (t.masked) {
      QFont bold = table_->font();
      bold.setBold(true);
      piece->setFont(bold);
      piece->setBackground(QColor(255, 243, 196));
      piece->setToolTip(tr("Masked: the model guesses this token."));
    }
    if (lm_ && r >= generation_.prompt_tokens) {
      piece->setBackground(kGeneratedRow);
      piece->setForeground(kGenerated);
      piece->setToolTip(tr("Generated by the model."));
    }
    table_->setItem(r, 0, piece);
    for (int l = 0; l < layers; ++l) {
      const QVector<int> experts = l < t.experts.size() ? t.experts[l] : QVector<int>{};
      auto* item = new QTableWidgetItem(experts_text(experts));
      QVariantList ids;
      for (int e : experts) ids << e;
      item->setData(kExpertsRole, ids);
      if (experts.isEmpty()) {
        item->setForeground(QColor(150, 150, 150));
        item->setTextAlignment(Qt::AlignCenter);
      }
      table_->setItem(r, 1 + l, item);
    }
  }
  table_->verticalHeader()->setDefaultSectionSize(QFontMetrics(table_->font()).height() + 10);
}

void PlaygroundView::setClassroomMode(bool on) {
  classroom_ = on;
  QFont f = QApplication::font();
  if (on) {
    if (f.pointSizeF() > 0) f.setPointSizeF(f.pointSizeF() * kClassroomScale);
    else f.setPixelSize(static_cast<int>(f.pixelSize() * kClassroomScale));
  }
  setFont(f);
  updateStatus();
  rebuildPlot();
  rebuildTable();
  rebuildGeneration();
}

bool PlaygroundView::exportView(const QString& path, QString* error) const {
  if (lm_) {
    if (!has_generation_) {
      if (error) *error = tr("nothing to export yet: generate a continuation first");
      return false;
    }
    if (!path.endsWith(".csv", Qt::CaseInsensitive)) {
      if (error) *error = tr("a generation exports as CSV (its tokens and their routing)");
      return false;
    }
    CsvTable t;
    t.header = {"kind", "position", "token", "layer", "experts"};
    for (int i = 0; i < generation_.tokens.size(); ++i) {
      const auto& tok = generation_.tokens[i];
      const QString kind = i < generation_.prompt_tokens ? "prompt" : "generated";
      if (tok.experts.isEmpty()) t.rows.append({kind, QString::number(i), tok.piece, {}, {}});
      for (int l = 0; l < tok.experts.size(); ++l) {
        QStringList ids;
        for (int e : tok.experts[l]) ids << QString::number(e);
        const QString layer = l < generation_.moe_layers.size() ? QString::number(generation_.moe_layers[l]) : QString::number(l);
        t.rows.append({kind, QString::number(i), tok.piece, layer, ids.join(' ')});
      }
    }
    return writeCsv(t, path, error);
  }
  if (!has_result_) {
    if (error) *error = tr("nothing to export yet: predict a sentence first");
    return false;
  }
  auto csv = [this] {
    CsvTable t;
    t.header = {"kind", "position", "token", "layer", "experts", "rank", "prediction", "probability"};
    for (int i = 0; i < result_.tokens.size(); ++i) {
      const auto& tok = result_.tokens[i];
      for (int l = 0; l < tok.experts.size(); ++l) {
        QStringList ids;
        for (int e : tok.experts[l]) ids << QString::number(e);
        const QString layer = l < result_.moe_layers.size() ? QString::number(result_.moe_layers[l]) : QString::number(l);
        t.rows.append({"routing", QString::number(i), tok.piece, layer, ids.join(' '), {}, {}, {}});
      }
    }
    for (const auto& p : result_.predictions) {
      const QString token = p.position >= 0 && p.position < result_.tokens.size() ? result_.tokens[p.position].piece
                                                                                  : QString();
      for (int r = 0; r < p.top.size(); ++r)
        t.rows.append({"prediction", QString::number(p.position), token, {}, {}, QString::number(r + 1),
                       p.top[r].first, QString::number(p.top[r].second, 'g', 6)});
    }
    return t;
  };
  return exportPlot(plot_, path, csv, error);
}

int PlaygroundView::predictionBarCount() const { return bar_count_; }
int PlaygroundView::predictionChartCount() const { return chart_count_; }
int PlaygroundView::tokenRowCount() const { return table_->rowCount(); }
QString PlaygroundView::statusText() const { return status_->text(); }
QString PlaygroundView::errorText() const { return error_->isHidden() ? QString() : error_->text(); }

}  // namespace smx::widgets
