// Routing: which tokens each expert chooses. For one MoE layer of the latest
// snapshot it draws the probe's token x expert map of router probabilities
// with the chosen (and, for Tokens Choose, the wanted) assignments marked,
// how many experts took each token or how many tokens each expert kept, the
// tokens each expert chose most over recent steps, how stable the routing
// is between snapshots, the probe sentence coloured by expert, and a
// what-if re-routing (another capacity factor or router) beside it.
// Fed plain snapshots; knows nothing of the engine.
#pragma once

#include <QColor>
#include <QPair>
#include <QString>
#include <QStringList>
#include <QVector>
#include <QWidget>
#include <vector>

#include "widgets/plot_export.h"
#include "widgets/view_data.h"

class QComboBox;
class QCustomPlot;
class QCPAxisRect;
class QCPBars;
class QCPGraph;
class QCPItemText;
class QCPLayoutGrid;
class QCPTextElement;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QMouseEvent;
class QPushButton;
class QSplitter;
class QStackedWidget;
class QTableWidget;
class QTextBrowser;
class QToolButton;

namespace smx::widgets {

class ColorBar;
class HeatMap;

/// The colour of expert `e`: a fixed colour-blind-friendly qualitative
/// palette (Okabe-Ito without black, then Tableau 10), 16 colours before it
/// repeats lighter. Shared by every view that colours experts.
QColor expertColor(int e);
/// A SentencePiece piece as the views show it: the word-start mark U+2581
/// becomes the visible-space sign U+2423 ("▁the" -> "␣the").
QString displayPiece(const QString& piece);

class RoutingView : public QWidget {
  Q_OBJECT
 public:
  explicit RoutingView(QWidget* parent = nullptr);

  /// Recent snapshots of the selected run, oldest first; the last is the one shown.
  /// (History feeds "tokens each expert chose most over recent steps" and "changed since previous".)
  void setSnapshots(const QVector<SnapshotPtr>& recent);
  /// The result of a what-if re-routing of the probe (another capacity factor / router), drawn beside
  /// the snapshot's routing with the number of changed assignments. Empty vector clears it.
  void setWhatIf(const std::vector<telemetry::ProbeRouting>& routing, const QString& caption);
  /// Error from the engine for a what-if/probe request: shown in the view, nothing else changes.
  void setWhatIfError(const QString& message);
  /// Larger fonts, what-if controls hidden: for projecting in a lecture.
  void setClassroomMode(bool on);
  bool classroomMode() const { return classroom_; }
  /// PNG/SVG/PDF of the routing map (with the what-if beside it, if any), or
  /// the current layer's cells as CSV, by the suffix. False and *error when
  /// there is nothing to export or the file cannot be written.
  bool exportView(const QString& path, QString* error = nullptr) const;

  /// Redraws both plots now (live updates queue their redraw instead); for grabs and timing.
  void replotNow();

  // Read-only accessors (tests count what is drawn).
  int layerCount() const;
  int currentLayer() const;  ///< index into the layer selector, -1 when empty
  void setCurrentLayer(int index);
  int currentBlock() const;  ///< encoder block index of the current layer, -1 when empty
  bool showsHint() const;    ///< the empty-state hint is shown instead of the view
  int cellCount() const;            ///< cells in the token x expert map of the current layer
  int assignmentMarkCount() const;  ///< chosen (assigned) marks drawn on the snapshot's map
  int wantedMarkCount() const;      ///< Tokens Choose: "wanted" marks drawn on the snapshot's map
  int barCount() const;             ///< bars drawn in the side chart, over all series
  int barSeriesCount() const;       ///< series with data in the side chart (1 or 2)
  /// Probe tokens whose expert set changed vs the previous snapshot (-1: no previous or not comparable).
  int changedSincePrevious() const;
  QString stabilityText() const;
  /// Tokens expert `expert` chose most over the recent snapshots, most often first (raw pieces).
  QStringList topTokens(int expert) const;
  int topTokenRowCount() const;  ///< rows of the expert | top tokens table
  /// Probe tokens drawn in the coloured text, and how many of them no expert took.
  int colouredTokenCount() const;
  int unroutedTokenCount() const;
  QString colouredTextHtml() const;
  int mapCount() const;         ///< token x expert maps drawn: 1, or 2 with a what-if beside
  int whatIfCellCount() const;  ///< cells of the what-if map (0: none shown)
  int whatIfAssignmentMarkCount() const;
  /// Assignments (token, expert) that differ between snapshot and what-if; -1 when not comparable.
  int whatIfChangedAssignments() const;
  QString whatIfErrorText() const;  ///< empty when no error is shown

 Q_SIGNALS:
  /// The user asked to route text (probe override typed in the box; empty = the run's fixed probe) with a
  /// capacity factor (<=0: the model's own) and a router ("tokens-choose", "experts-choose", or empty: the model's).
  void whatIfRequested(const QString& text, double capacityFactor, const QString& router);

 private:
  struct TokenCount {
    QString token;
    int count = 0;
  };
  void buildMapPlot();
  void buildSidePlot();
  void rebuildLayerList();
  void refresh();
  void updateMap(const telemetry::ProbeRouting* probe);
  void updateWhatIf(const telemetry::ProbeRouting* probe);
  void updateSide(const telemetry::ProbeRouting* probe, const telemetry::MoeLayerStats* stats);
  void updateTopTokens(const telemetry::ProbeRouting* probe, const telemetry::MoeLayerStats* stats);
  void updateStability(const telemetry::ProbeRouting* probe);
  void updateColouredText(const telemetry::ProbeRouting* probe);
  void updateMarkSizes();
  void ensureWhatIfRect();
  void removeWhatIfRect();
  void applyFonts();
  void showHint(const QString& text);
  void onMapHover(QMouseEvent* event);
  void exportClicked();
  const telemetry::ProbeRouting* whatIfFor(int block) const;
  CsvTable csvTable() const;

  // state
  QVector<SnapshotPtr> snapshots_;
  QVector<int> blocks_;  ///< encoder block index of each MoE layer in the selector
  int block_ = -1;       ///< the layer shown, kept across live updates
  std::vector<telemetry::ProbeRouting> what_if_;
  QString what_if_caption_;
  int changed_ = -1, what_if_changed_ = -1, wanted_marks_ = 0, what_if_marks_ = 0;
  int coloured_tokens_ = 0, unrouted_tokens_ = 0;
  QString coloured_html_, stability_text_;
  bool what_if_same_tokens_ = false;
  int map_rows_ = -1, map_cols_ = -1;  ///< axis ranges reset only when the map's shape changes
  QStringList map_tokens_;             ///< raw pieces of the map's rows
  QVector<QVector<TokenCount>> top_;
  bool classroom_ = false;

  // widgets
  QStackedWidget* stack_;
  QLabel* hint_;
  QLabel* layer_label_;
  QComboBox* layer_combo_;
  QLabel* step_label_;
  QToolButton* export_button_;
  QWidget* what_if_row_;
  QLineEdit* probe_edit_;
  QDoubleSpinBox* capacity_spin_;
  QComboBox* router_combo_;
  QPushButton* reroute_button_;
  QLabel* error_label_;
  QCustomPlot* map_;
  QCPLayoutGrid* maps_;  ///< row 0 titles; row 1 [snapshot map, (what-if map), colour scale]
  QCPAxisRect* map_rect_;
  QCPTextElement* map_title_;
  QCPTextElement* what_if_title_ = nullptr;
  ColorBar* scale_;  ///< of heat_ (the what-if map shares its fixed 0..1 range)
  HeatMap* heat_;
  QCPGraph* assigned_graph_;
  QCPGraph* wanted_graph_;
  // Empty graphs that only carry legend entries, so the legend's marks keep one size
  // while the map's marks scale with the cells.
  QCPGraph* legend_chosen_;
  QCPGraph* legend_wanted_;
  QCPGraph* legend_changed_;
  QCPItemText* map_note_;
  QCPAxisRect* what_if_rect_ = nullptr;
  HeatMap* what_if_heat_ = nullptr;
  QCPGraph* what_if_assigned_ = nullptr;
  QCPGraph* what_if_changed_graph_ = nullptr;
  QCPItemText* what_if_note_ = nullptr;
  QCustomPlot* side_;
  QCPTextElement* side_title_;
  QCPBars* bars_a_;
  QCPBars* bars_b_;
  QTableWidget* table_;
  QLabel* stats_label_;
  QTextBrowser* text_;
  QSplitter* vsplit_;  ///< [map and side panel, coloured text]
};

}  // namespace smx::widgets
