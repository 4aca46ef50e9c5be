// Mixing: the token-mixing matrices of a run (linear, Fourier, Hartley,
// circulant, Toeplitz; for decoder LMs the causal SGU, the sMoE experts'
// causal matrices and their channels-to-experts maps, with a sentence saying
// what each means) as signed heat maps with their singular-value
// spectrum, optionally as the change since initialisation, and beside them
// the attention maps of the probe text. A slider scrubs through the
// snapshots; it follows the newest unless the user moved it back.
#pragma once

#include <QFont>
#include <QVector>
#include <QWidget>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "widgets/view_data.h"

class QCheckBox;
class QComboBox;
class QCustomPlot;
class QCPAxisRect;
class QCPGraph;
class QCPItemText;
class QCPLayoutGrid;
class QCPTextElement;
class QLabel;
class QSlider;
class QStackedWidget;
class QToolButton;

namespace smx::widgets {

class ColorBar;
class HeatMap;

class MixingView : public QWidget {
  Q_OBJECT
 public:
  explicit MixingView(QWidget* parent = nullptr);
  ~MixingView() override;

  /// All snapshots of the run so far, oldest first.
  void setSnapshots(const QVector<SnapshotPtr>& all);
  /// Shows snapshot `index` (clamped); the slider does the same.
  void setCurrentSnapshot(int index);
  /// Larger fonts; hides the difference toggle and the spectrum.
  void setClassroomMode(bool on);
  /// PNG/SVG/PDF of the plot, or its numbers as CSV, by the suffix of `path`.
  bool exportView(const QString& path, QString* error = nullptr) const;

  // For tests (and the app): what is drawn.
  int mixingLayerCount() const;  ///< non-attention mixing layers (the layer combo)
  void setCurrentMixingLayer(int index);
  int currentMixingLayer() const;
  QStringList matrixNames() const;  ///< matrices of the shown layer
  void setCurrentMatrix(int index);
  int cellCount() const;                   ///< cells of the shown matrix
  double cellValue(int row, int col) const;  ///< the drawn value (a difference when showing one); NaN outside
  int singularValueCount() const;
  std::vector<double> singularValues() const;  ///< of the drawn values, largest first
  int currentSnapshot() const;
  int snapshotCount() const;
  bool showingDifference() const;  ///< asked for and possible (not for fixed bases)
  void setShowDifference(bool on);
  bool differenceAvailable() const;  ///< false for fixed bases
  QString caption() const;           ///< title of the matrix panel
  /// The sentence under the controls saying what a decoder-LM matrix means (SGU, sMoE experts,
  /// channels-to-experts maps); empty for the encoder kinds.
  QString explanation() const;
  QString stepLabel() const;         ///< "step N (k of M)"
  int attentionLayerCount() const;
  void setCurrentAttentionLayer(int index);
  int attentionHeadCount() const;
  void setCurrentAttentionHead(int index);
  int attentionCellCount() const;
  double attentionValue(int row, int col) const;

 private:
  void buildPlot();
  void redraw();
  void updateCombos(const telemetry::Snapshot* s);
  void updateHeadCombo(const telemetry::Snapshot* s);
  void drawMatrix(const telemetry::Snapshot* s);
  void drawSpectrum(const std::vector<float>& values, int rows, int cols, const telemetry::Snapshot* s,
                    const QString& matrix, bool difference);
  void drawAttention(const telemetry::Snapshot* s);
  void arrange(bool matrices, bool attention);
  void updateFonts();
  void exportDialog();
  const telemetry::Snapshot* current() const;

  QStackedWidget* stack_;
  QLabel* hint_;
  QComboBox* layer_combo_;
  QComboBox* matrix_combo_;
  QCheckBox* diff_box_;
  QWidget* attention_controls_;
  QComboBox* att_layer_combo_;
  QComboBox* head_combo_;
  QToolButton* export_;
  QSlider* slider_;
  QLabel* step_label_;
  QCustomPlot* plot_;
  QLabel* explain_;

  QCPLayoutGrid* left_ = nullptr;   ///< matrix panel: title, map + colour bar, spectrum
  QCPLayoutGrid* right_ = nullptr;  ///< attention panel
  QCPTextElement* title_ = nullptr;
  QCPAxisRect* map_rect_ = nullptr;
  HeatMap* map_ = nullptr;
  ColorBar* map_bar_ = nullptr;
  QCPItemText* map_note_ = nullptr;
  QCPTextElement* spec_title_ = nullptr;
  QCPAxisRect* spec_rect_ = nullptr;
  QCPGraph* spec_graph_ = nullptr;
  QCPItemText* spec_note_ = nullptr;
  QCPTextElement* att_title_ = nullptr;
  QCPAxisRect* att_rect_ = nullptr;
  HeatMap* att_map_ = nullptr;
  ColorBar* att_bar_ = nullptr;
  QCPItemText* att_note_ = nullptr;

  QVector<SnapshotPtr> snapshots_;
  int current_ = -1;
  bool follow_ = true;  ///< the slider sits on the newest snapshot
  bool want_diff_ = false;
  bool classroom_ = false;
  bool show_matrices_ = true, show_attention_ = true, show_spectrum_ = true;  ///< what the layout holds now
  std::vector<double> sigma_;
  /// Spectra already computed: (snapshot, block, matrix, difference).
  struct SpectrumEntry {
    SnapshotPtr keep;  ///< keeps the key's address from being reused
    std::vector<double> sigma;
  };
  std::map<std::tuple<const telemetry::Snapshot*, int, std::string, bool>, SpectrumEntry> spectra_;
  QFont base_font_;
};

}  // namespace smx::widgets
