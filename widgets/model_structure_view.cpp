#include "widgets/model_structure_view.h"

#include <QFile>
#include <QFileInfo>
#include <QHeaderView>
#include <QLabel>
#include <QSplitter>
#include <QTableWidget>
#include <QTextStream>
#include <QVBoxLayout>
#include <qcustomplot.h>

namespace smx::widgets {

namespace {
QString human(double n) {
  if (n >= 1e9) return QString::number(n / 1e9, 'f', 2) + "B";
  if (n >= 1e6) return QString::number(n / 1e6, 'f', 2) + "M";
  if (n >= 1e3) return QString::number(n / 1e3, 'f', 1) + "K";
  return QString::number(n, 'f', 0);
}
}  // namespace

ModelStructureView::ModelStructureView(QWidget* parent) : QWidget(parent) {
  summary_ = new QLabel(this);
  summary_->setWordWrap(true);
  summary_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  table_ = new QTableWidget(0, 7, this);
  table_->setHorizontalHeaderLabels({"layer", "mixing", "MLP", "params", "active/token", "GFLOP/example", "capacity"});
  table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  table_->horizontalHeader()->setStretchLastSection(true);
  table_->verticalHeader()->hide();
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->setToolTip(tr("Each encoder layer: its token-mixing sublayer, whether its MLP is dense or a "
                        "Mixture-of-Experts, and what it costs."));
  plot_ = new QCustomPlot(this);
  plot_->setMinimumHeight(180);
  plot_->yAxis->setLabel(tr("forward GFLOP per example"));
  plot_->setToolTip(tr("Where the compute goes: attention layers cost more than linear mixing; MoE layers "
                       "cost what their capacity factor lets through."));
  auto* split = new QSplitter(Qt::Vertical, this);
  split->addWidget(table_);
  split->addWidget(plot_);
  auto* layout = new QVBoxLayout(this);
  layout->addWidget(summary_);
  layout->addWidget(split, 1);
}

void ModelStructureView::setModel(const QString& summary, const QVector<LayerRow>& rows) {
  rows_ = rows;
  summary_->setText(summary);
  table_->setRowCount(rows.size());
  for (int r = 0; r < rows.size(); ++r) {
    const auto& row = rows[r];
    const QStringList cells = {row.name,          row.mixing,        row.mlp, human(row.params),
                               human(row.active_params), QString::number(row.gflops, 'f', 3), row.capacity};
    for (int c = 0; c < cells.size(); ++c) {
      auto* item = new QTableWidgetItem(cells[c]);
      if (c >= 3 && c <= 5) item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
      table_->setItem(r, c, item);
    }
  }

  plot_->clearPlottables();
  auto* dense = new QCPBars(plot_->xAxis, plot_->yAxis);
  auto* moe = new QCPBars(plot_->xAxis, plot_->yAxis);
  auto* other = new QCPBars(plot_->xAxis, plot_->yAxis);
  dense->setName(tr("layer with dense MLP"));
  moe->setName(tr("layer with MoE"));
  other->setName(tr("embeddings / heads"));
  dense->setBrush(QColor(90, 140, 200));
  moe->setBrush(QColor(230, 140, 60));
  other->setBrush(QColor(170, 170, 170));
  QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
  for (int r = 0; r < rows.size(); ++r) {
    ticker->addTick(r, rows[r].name);
    QCPBars* series = rows[r].mlp.isEmpty() ? other : rows[r].mlp == "MoE" ? moe : dense;
    series->addData(r, rows[r].gflops);
  }
  plot_->xAxis->setTicker(ticker);
  plot_->xAxis->setTickLabelRotation(rows.size() > 16 ? 60 : 0);
  plot_->xAxis->setRange(-0.7, rows.size() - 0.3);
  plot_->yAxis->rescale();
  plot_->yAxis->setRangeLower(0);
  plot_->yAxis->setRangeUpper(plot_->yAxis->range().upper * 1.45);  // headroom for the legend
  plot_->legend->setVisible(true);
  plot_->legend->setFillOrder(QCPLegend::foColumnsFirst);
  plot_->legend->setWrap(3);
  plot_->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignHCenter);
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

int ModelStructureView::rowCount() const { return table_->rowCount(); }

int ModelStructureView::barCount() const {
  int n = 0;
  for (int i = 0; i < plot_->plottableCount(); ++i)
    if (auto* bars = qobject_cast<QCPBars*>(plot_->plottable(i))) n += bars->data()->size();
  return n;
}

bool ModelStructureView::exportChart(const QString& path) const {
  const QString suffix = QFileInfo(path).suffix().toLower();
  if (suffix == "png") return plot_->savePng(path, 900, 400, 2.0);
  if (suffix == "pdf") return plot_->savePdf(path, 900, 400);
  if (suffix == "csv") {
    QFile f(path);
    if (!f.open(QIODevice::WriteOnly | QIODevice::Text)) return false;
    QTextStream out(&f);
    out << "layer,mixing,mlp,params,active_params,gflops_per_example,capacity\n";
    for (const auto& r : rows_)
      out << r.name << ',' << r.mixing << ',' << r.mlp << ',' << r.params << ',' << r.active_params << ','
          << r.gflops << ",\"" << r.capacity << "\"\n";
    return out.status() == QTextStream::Ok;
  }
  return false;
}

}  // namespace smx::widgets
