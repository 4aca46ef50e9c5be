#include "widgets/router_comparison_view.h"

#include <QApplication>
#include <QFileInfo>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QListWidget>
#include <QPushButton>
#include <QSpinBox>
#include <QSplitter>
#include <QTableWidget>
#include <QToolButton>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>

#include "widgets/plot_export.h"
#include "widgets/training_curves_view.h"
#include "widgets/view_style.h"

namespace smx::widgets {

namespace {

enum Column { kModel, kRouter, kStatus, kFlops, kPerplexity, kTokens, kSpread, kDropped, kPaperPpl, kPaperWps, kColumns };
const char* const kColumnNames[kColumns] = {"model",       "router",  "status",  "MFLOP/token", "perplexity",
                                            "tokens/s",    "load spread", "dropped", "paper", "paper words/s"};

bool is_pending(const QString& status) { return status == "queued" || status == "running"; }

QString number(double v, int decimals) { return std::isfinite(v) ? QString::number(v, 'f', decimals) : QString(); }

}  // namespace

std::pair<double, double> RouterComparisonView::paperTable4(const QString& router) {
  // Table 4 (top): 0.8T FLOPs, perplexity after 25k updates, words per second on 32 V100s.
  struct Row {
    const char* name;
    double ppl, wps;
  };
  static const Row rows[] = {{"sMLP", 13.46, 192e3}, {"HASH", 13.57, 176e3}, {"Switch", 15.31, 185e3},
                             {"BASE", 18.16, 178e3}, {"GShard", 19.26, 136e3}};
  const QString first = router.section(' ', 0, 0);  // "sMLP (det. sMoE + BASE)" -> "sMLP"
  for (const auto& r : rows)
    if (first == QLatin1String(r.name)) return {r.ppl, r.wps};
  return {qQNaN(), qQNaN()};
}

RouterComparisonView::RouterComparisonView(QWidget* parent) : QWidget(parent) {
  qRegisterMetaType<RouterComparisonPlan>();
  presets_ = new QListWidget(this);
  presets_->setObjectName("presets");
  presets_->setToolTip(tr("Check the language models to compare. All train on the same data with the same seed."));
  presets_->setMaximumHeight(200);
  steps_ = new QSpinBox(this);
  steps_->setObjectName("steps");
  steps_->setRange(10, 1'000'000);
  steps_->setSingleStep(100);
  steps_->setValue(400);
  steps_->setToolTip(tr("Training steps per model (the paper: 25,000 updates of 524,288 tokens)."));
  seed_ = new QSpinBox(this);
  seed_->setObjectName("seed");
  seed_->setRange(0, 1'000'000);
  seed_->setToolTip(tr("One seed for every model: the same initial randomness and the same training windows."));
  compare_ = new QPushButton(tr("Compare routers"), this);
  compare_->setObjectName("compare");
  compare_->setDefault(true);
  compare_->setToolTip(tr("Train every checked model, one after the other, and compare their perplexity."));
  cancel_ = new QPushButton(tr("Cancel"), this);
  cancel_->setObjectName("cancel");
  cancel_->setEnabled(false);
  cancel_->setToolTip(tr("Stop the running model and drop the queued ones."));

  auto* box = new QGroupBox(tr("Comparison"), this);
  auto* box_layout = new QVBoxLayout(box);
  box_layout->addWidget(new QLabel(tr("Models"), box));
  box_layout->addWidget(presets_);
  auto* form = new QHBoxLayout;
  form->addWidget(new QLabel(tr("Steps"), box));
  form->addWidget(steps_);
  form->addWidget(new QLabel(tr("Seed"), box));
  form->addWidget(seed_);
  box_layout->addLayout(form);
  auto* export_button = new QToolButton(box);
  export_button->setText(tr("Export…"));
  export_button->setToolTip(tr("Save the perplexity curves as an image (PNG, SVG, PDF) or the table as CSV."));
  connect(export_button, &QToolButton::clicked, this, [this] {
    exportWithDialog(this, tr("Export the router comparison"), "router-comparison.png",
                     [this](const QString& path, QString* error) { return exportView(path, error); });
  });
  auto* buttons = new QHBoxLayout;
  buttons->addWidget(compare_);
  buttons->addWidget(cancel_);
  buttons->addWidget(export_button);
  box_layout->addLayout(buttons);
  auto* about = new QLabel(
      tr("The sMLP paper (Table 4) compares its sparse all-MLP with Transformer-MoE models at equal FLOPs: "
         "Switch (top-1), GShard (top-2), BASE layers (balanced assignment) and HASH layers (fixed token "
         "table). Here every model is cut to about the sMLP demo's FLOPs per token (MFLOP/token column)."),
      box);
  about->setWordWrap(true);
  styleAsHint(about);
  box_layout->addWidget(about);
  box_layout->addStretch(1);
  box->setMaximumWidth(340);

  table_ = new QTableWidget(0, kColumns, this);
  table_->setObjectName("results");
  QStringList headers;
  for (const char* c : kColumnNames) headers << tr(c);
  table_->setHorizontalHeaderLabels(headers);
  table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  table_->horizontalHeader()->setStretchLastSection(true);
  table_->verticalHeader()->hide();
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->horizontalHeaderItem(kPerplexity)->setToolTip(tr("Held-out perplexity at the end of training (lower is better)."));
  table_->horizontalHeaderItem(kTokens)->setToolTip(tr("Training tokens per second, median over the run."));
  table_->horizontalHeaderItem(kSpread)
      ->setToolTip(tr("How unevenly tokens spread over the experts: the coefficient of variation of tokens per "
                      "expert, averaged over the run (0 = perfectly even, as BASE layers force in training)."));
  table_->horizontalHeaderItem(kDropped)
      ->setToolTip(tr("Share of expert choices dropped because the expert was full, averaged over the run "
                      "(BASE and HASH never drop)."));
  table_->horizontalHeaderItem(kPaperPpl)
      ->setToolTip(tr("The paper's Table 4 (0.8T FLOPs, perplexity after 25k updates): sMLP 13.46 < HASH 13.57 < "
                      "Switch 15.31 < BASE 18.16 < GShard 19.26."));
  summary_ = new QLabel(this);
  summary_->setObjectName("summary");
  summary_->setWordWrap(true);
  summary_->setTextFormat(Qt::RichText);
  curves_ = new TrainingCurvesView(this);
  curves_->setMetricName("eval/perplexity");
  curves_->setLogY(true);
  curves_->setToolTip(tr("Held-out perplexity of each model against steps or wall time (the x-axis choice)."));

  auto* results = new QWidget(this);
  auto* results_layout = new QVBoxLayout(results);
  results_layout->setContentsMargins(0, 0, 0, 0);
  results_layout->addWidget(table_, 1);
  results_layout->addWidget(summary_);
  auto* split = new QSplitter(Qt::Vertical, this);
  split->addWidget(results);
  split->addWidget(curves_);
  split->setStretchFactor(0, 1);
  split->setStretchFactor(1, 2);

  auto* layout = new QHBoxLayout(this);
  layout->addWidget(box);
  layout->addWidget(split, 1);

  connect(compare_, &QPushButton::clicked, this, [this] {
    const RouterComparisonPlan p = plan();
    if (p.presets.isEmpty()) {
      summary_->setText(tr("<b>Check at least one model.</b>"));
      return;
    }
    Q_EMIT compareRequested(p);
  });
  connect(cancel_, &QPushButton::clicked, this, &RouterComparisonView::cancelRequested);
}

void RouterComparisonView::setAvailablePresets(const QStringList& presets, const QStringList& checked) {
  presets_->clear();
  for (const QString& p : presets) {
    auto* item = new QListWidgetItem(p, presets_);
    item->setFlags(item->flags() | Qt::ItemIsUserCheckable);
    item->setCheckState(checked.contains(p) ? Qt::Checked : Qt::Unchecked);
  }
}

void RouterComparisonView::setPlan(const RouterComparisonPlan& plan) {
  for (int i = 0; i < presets_->count(); ++i) {
    auto* item = presets_->item(i);
    item->setCheckState(plan.presets.contains(item->text()) ? Qt::Checked : Qt::Unchecked);
  }
  steps_->setValue(plan.steps);
  seed_->setValue(plan.seed);
}

RouterComparisonPlan RouterComparisonView::plan() const {
  RouterComparisonPlan p;
  for (int i = 0; i < presets_->count(); ++i)
    if (presets_->item(i)->checkState() == Qt::Checked) p.presets << presets_->item(i)->text();
  p.steps = steps_->value();
  p.seed = seed_->value();
  return p;
}

void RouterComparisonView::setRows(const QVector<RouterComparisonRow>& rows) {
  rows_ = rows;
  table_->setRowCount(rows.size());
  bool pending = false;
  for (int r = 0; r < rows.size(); ++r) {
    const auto& row = rows[r];
    pending = pending || is_pending(row.status);
    const auto [paper_ppl, paper_wps] = paperTable4(row.router);
    const QString text[kColumns] = {row.preset,
                                    row.router,
                                    row.status,
                                    number(row.forward_mflops, 2),
                                    number(row.perplexity, 1),
                                    number(row.tokens_per_s, 0),
                                    number(row.load_spread, 3),
                                    std::isfinite(row.dropped) ? QString("%1%").arg(100 * row.dropped, 0, 'f', 1) : "",
                                    number(paper_ppl, 2),
                                    std::isfinite(paper_wps) ? QString("%1k").arg(paper_wps / 1e3, 0, 'f', 0) : ""};
    for (int c = 0; c < kColumns; ++c) {
      auto* item = table_->item(r, c);
      if (!item) {
        item = new QTableWidgetItem;
        item->setFlags(Qt::ItemIsEnabled | Qt::ItemIsSelectable);
        if (c >= kFlops) item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
        table_->setItem(r, c, item);
      }
      item->setText(text[c]);
    }
  }
  compare_->setEnabled(!pending);
  cancel_->setEnabled(pending);

  // The measured order beside the paper's, once two or more models have a perplexity.
  QVector<const RouterComparisonRow*> done;
  for (const auto& row : rows_)
    if (std::isfinite(row.perplexity)) done.push_back(&row);
  std::sort(done.begin(), done.end(), [](auto* a, auto* b) { return a->perplexity < b->perplexity; });
  if (done.size() < 2) {
    summary_->setText(pending ? tr("Training %1 models one after the other…").arg(rows_.size()) : QString());
    return;
  }
  QStringList measured, paper;
  QVector<std::pair<double, QString>> paper_rows;
  for (auto* row : done) {
    measured << QString("%1 %2").arg(row->router.section(' ', 0, 0).toHtmlEscaped()).arg(row->perplexity, 0, 'f', 1);
    const double p = paperTable4(row->router).first;
    if (std::isfinite(p)) paper_rows.push_back({p, row->router.section(' ', 0, 0)});
  }
  std::sort(paper_rows.begin(), paper_rows.end());
  for (const auto& [p, name] : paper_rows) paper << QString("%1 %2").arg(name.toHtmlEscaped()).arg(p, 0, 'f', 2);
  summary_->setText(tr("Measured perplexity: %1<br>The paper (Table 4, same models): %2")
                        .arg(measured.join(" &lt; "), paper.join(" &lt; ")));
}

TrainingCurvesView* RouterComparisonView::curves() const { return curves_; }

void RouterComparisonView::setClassroomMode(bool on) {
  QFont f = font();
  f.setPointSizeF(on ? QApplication::font().pointSizeF() * 1.5 : QApplication::font().pointSizeF());
  table_->setFont(f);
  summary_->setFont(f);
  curves_->setClassroomMode(on);
}

int RouterComparisonView::tableRowCount() const { return table_->rowCount(); }

QString RouterComparisonView::tableText(int row, const QString& column) const {
  for (int c = 0; c < kColumns; ++c)
    if (column == QLatin1String(kColumnNames[c])) {
      auto* item = table_->item(row, c);
      return item ? item->text() : QString();
    }
  return {};
}

bool RouterComparisonView::exportView(const QString& path, QString* error) const {
  if (QFileInfo(path).suffix().compare("csv", Qt::CaseInsensitive) != 0) return curves_->exportView(path, error);
  CsvTable t;
  for (const char* c : kColumnNames) t.header << QString::fromLatin1(c);
  for (int r = 0; r < table_->rowCount(); ++r) {
    QStringList line;
    for (int c = 0; c < kColumns; ++c) line << (table_->item(r, c) ? table_->item(r, c)->text() : QString());
    t.rows << line;
  }
  return writeCsv(t, path, error);
}

}  // namespace smx::widgets
