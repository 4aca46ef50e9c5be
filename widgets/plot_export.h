// Exporting a plot: PNG (raster, 2x), SVG and PDF (vector: every item is
// drawn as shapes, nothing rasterised) and its numbers as CSV. Every view
// exports through here so the formats behave the same everywhere.
#pragma once

#include <QString>
#include <QStringList>
#include <QVector>
#include <functional>

class QCustomPlot;
class QWidget;

namespace smx::widgets {

/// A table of numbers for CSV export; cells are quoted as needed.
struct CsvTable {
  QStringList header;
  QVector<QStringList> rows;
};

/// File-dialog filter listing the formats exportPlot understands.
QString exportFilter();

/// Writes `plot` by the suffix of `path` (.png, .svg, .pdf) or, for .csv, the
/// table `csv` returns. The size is the widget's (at least 640x400) unless
/// given. On failure returns false and sets *error (unknown suffix, no data,
/// unwritable file).
bool exportPlot(QCustomPlot* plot, const QString& path, const std::function<CsvTable()>& csv, QString* error = nullptr,
                int width = 0, int height = 0);

/// The views' "Export…" button: asks for a file (PNG, SVG, PDF or CSV), calls
/// `exporter` with it, and shows its error in a message box.
void exportWithDialog(QWidget* parent, const QString& title, const QString& suggestedName,
                      const std::function<bool(const QString& path, QString* error)>& exporter);

/// Writes a CSV table; false (and *error) if the file cannot be written.
bool writeCsv(const CsvTable& table, const QString& path, QString* error = nullptr);

}  // namespace smx::widgets
