// The playground: type a sentence with [MASK] in it, run it through a
// trained model, and see the model's top guesses for each masked token as
// bars, plus which experts of each MoE layer took every token. Fed a plain
// PlaygroundResult; knows nothing of the engine.
#pragma once

#include <QColor>
#include <QFont>
#include <QString>
#include <QWidget>

#include "widgets/view_data.h"

class QCustomPlot;
class QLabel;
class QLineEdit;
class QAbstractItemDelegate;
class QPushButton;
class QTableWidget;
class QToolButton;

namespace smx::widgets {

class PlaygroundView : public QWidget {
  Q_OBJECT
 public:
  explicit PlaygroundView(QWidget* parent = nullptr);

  /// Draws a result; one with a non-empty error only shows the error and keeps the previous result drawn.
  void setResult(const PlaygroundResult& result);
  /// The model sentences go through, e.g. "run 3 · demo · step 1000 · cpu"; empty: "no model".
  void setModelDescription(const QString& text);
  /// While busy, Predict (button and Enter) is off.
  void setBusy(bool busy);

  /// Larger fonts; hides the latency (a detail for experts).
  void setClassroomMode(bool on);
  /// PNG/SVG/PDF of the predictions plot or CSV of predictions and routing, by the suffix.
  bool exportView(const QString& path, QString* error = nullptr) const;

  QString text() const;
  void setText(const QString& text);

  /// Bars drawn over all masked positions (one per predicted piece).
  int predictionBarCount() const;
  /// Masked positions that have a chart.
  int predictionChartCount() const;
  int tokenRowCount() const;
  /// The line under the sentence: latency, device, and a note when there is no [MASK].
  QString statusText() const;
  /// The error of the last result (empty when it succeeded).
  QString errorText() const;
  /// Chip colour of an expert; the same expert has the same colour in every layer.
  static QColor expertColor(int expert);

 Q_SIGNALS:
  /// Enter in the sentence field or the Predict button, with the sentence.
  void predictRequested(const QString& text);

 private:
  void requestPredict();
  void updateButtons();
  void updateStatus();
  void rebuildPlot();
  void rebuildTable();
  QFont scaledFont(double factor = 1.0, bool bold = false) const;

  QLineEdit* input_;
  QPushButton* predict_;
  QToolButton* export_;
  QLabel* model_;
  QLabel* status_;
  QLabel* error_;
  QCustomPlot* plot_;
  QTableWidget* table_;
  QAbstractItemDelegate* chips_;  ///< draws the routing columns
  PlaygroundResult result_;
  bool has_result_ = false;
  bool busy_ = false;
  bool classroom_ = false;
  int bar_count_ = 0;
  int chart_count_ = 0;
};

}  // namespace smx::widgets
