#include "widgets/plot_export.h"

#include <QFile>
#include <QFileDialog>
#include <QMessageBox>
#include <QFileInfo>
#include <QSvgGenerator>
#include <QTextStream>
#include <qcustomplot.h>

namespace smx::widgets {

namespace {

QString csv_cell(const QString& s) {
  if (!s.contains(',') && !s.contains('"') && !s.contains('\n')) return s;
  QString q = s;
  q.replace("\"", "\"\"");
  return "\"" + q + "\"";
}

void set_error(QString* error, const QString& message) {
  if (error) *error = message;
}

}  // namespace

QString exportFilter() {
  return QStringLiteral("PNG image (*.png);;SVG vector image (*.svg);;PDF document (*.pdf);;CSV data (*.csv)");
}

void exportWithDialog(QWidget* parent, const QString& title, const QString& suggestedName,
                      const std::function<bool(const QString&, QString*)>& exporter) {
  const QString path = QFileDialog::getSaveFileName(parent, title, suggestedName, exportFilter());
  if (path.isEmpty()) return;
  QString error;
  if (!exporter(path, &error)) QMessageBox::warning(parent, QObject::tr("Export failed"), error);
}

bool writeCsv(const CsvTable& table, const QString& path, QString* error) {
  QFile f(path);
  if (!f.open(QIODevice::WriteOnly | QIODevice::Text | QIODevice::Truncate)) {
    set_error(error, QStringLiteral("cannot write %1: %2").arg(path, f.errorString()));
    return false;
  }
  QTextStream out(&f);
  auto line = [&](const QStringList& cells) {
    QStringList quoted;
    quoted.reserve(cells.size());
    for (const auto& c : cells) quoted << csv_cell(c);
    out << quoted.join(',') << '\n';
  };
  line(table.header);
  for (const auto& row : table.rows) line(row);
  out.flush();
  if (out.status() != QTextStream::Ok || !f.flush()) {
    set_error(error, QStringLiteral("cannot write %1: %2").arg(path, f.errorString()));
    return false;
  }
  return true;
}

bool exportPlot(QCustomPlot* plot, const QString& path, const std::function<CsvTable()>& csv, QString* error, int width,
                int height) {
  const QString suffix = QFileInfo(path).suffix().toLower();
  if (suffix == "csv") {
    if (!csv) {
      set_error(error, QStringLiteral("this view has no data to export as CSV"));
      return false;
    }
    return writeCsv(csv(), path, error);
  }
  if (!plot) {
    set_error(error, QStringLiteral("nothing to export"));
    return false;
  }
  const int w = width > 0 ? width : std::max(640, plot->width());
  const int h = height > 0 ? height : std::max(400, plot->height());
  bool ok = false;
  if (suffix == "png") {
    ok = plot->savePng(path, w, h, 2.0);
  } else if (suffix == "pdf") {
    // epNoCosmetic: pens get a real width, so lines print as drawn.
    ok = plot->savePdf(path, w, h, QCP::epNoCosmetic, QStringLiteral("Sparse Mixer Studio"));
  } else if (suffix == "svg") {
    QSvgGenerator svg;
    svg.setFileName(path);
    svg.setSize(QSize(w, h));
    svg.setViewBox(QRect(0, 0, w, h));
    svg.setTitle(QFileInfo(path).completeBaseName());
    svg.setDescription(QStringLiteral("Sparse Mixer Studio"));
    QCPPainter painter;
    if (painter.begin(&svg)) {
      painter.setMode(QCPPainter::pmVectorized);
      painter.setMode(QCPPainter::pmNoCaching);
      plot->toPainter(&painter, w, h);
      ok = painter.end();
    }
    // QSvgGenerator reports no errors; check that something was written.
    ok = ok && QFileInfo(path).size() > 0;
  } else {
    set_error(error, QStringLiteral("unknown export format '%1' (use .png, .svg, .pdf or .csv)").arg(suffix));
    return false;
  }
  if (!ok) set_error(error, QStringLiteral("cannot write %1").arg(path));
  return ok;
}

}  // namespace smx::widgets
