// The playground: type a sentence with [MASK] in it, run it through a
// trained model, and see the model's top guesses for each masked token as
// bars, plus which experts of each MoE layer took every token. For a decoder
// LM it generates instead: a prompt, new tokens, temperature, top-k and seed,
// the continuation, its routing, and the future-token-leak check
// (teacher-forced vs token-by-token perplexity). Fed plain PlaygroundResult,
// GenerationResult and LeakCheckResult structs; knows nothing of the engine.
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
class QDoubleSpinBox;
class QPushButton;
class QSpinBox;
class QStackedWidget;
class QTextBrowser;
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
  /// While busy, Predict / Generate (button and Enter) and Leak check are off.
  void setBusy(bool busy);

  /// Decoder-LM mode: generation controls, the continuation and the leak
  /// check instead of masked prediction. Each mode keeps its own text.
  void setLanguageModel(bool lm);
  bool isLanguageModel() const { return lm_; }
  /// Draws a continuation; one with an error only shows the error.
  void setGeneration(const GenerationResult& result);
  /// Shows the leak check's two perplexities side by side (or its error).
  void setLeakCheck(const LeakCheckResult& result);
  GenerationSettings generationSettings() const;
  void setGenerationSettings(const GenerationSettings& settings);
  /// The prompt and continuation as drawn (plain text); empty before a generation.
  QString generatedText() const;
  /// The leak check's text (numbers and explanation); empty before one.
  QString leakText() const;

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
  /// Enter in the sentence field or the Predict button, with the sentence (masked mode).
  void predictRequested(const QString& text);
  /// Enter or the Generate button (LM mode), with the prompt and settings.
  void generateRequested(const QString& prompt, const smx::widgets::GenerationSettings& settings);
  /// The Leak check button (LM mode).
  void leakCheckRequested();

 private:
  void requestPredict();
  void updateButtons();
  void updateStatus();
  void rebuildPlot();
  void rebuildTable();
  void rebuildGeneration();
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
  QWidget* lm_controls_;          ///< new tokens, temperature, top-k, seed, leak check
  QSpinBox* new_tokens_;
  QDoubleSpinBox* temperature_;
  QSpinBox* top_k_;
  QSpinBox* seed_;
  QPushButton* leak_button_;
  QStackedWidget* top_;    ///< the prediction bars, or the generated text
  QTextBrowser* generated_;
  QLabel* leak_;
  PlaygroundResult result_;
  GenerationResult generation_;
  bool has_result_ = false;
  bool has_generation_ = false;
  bool lm_ = false;
  QString other_text_;  ///< the other mode's text, restored when switching back
  bool busy_ = false;
  bool classroom_ = false;
  int bar_count_ = 0;
  int chart_count_ = 0;
};

}  // namespace smx::widgets
