// The studio's main window: the run list on the left, one tab per view, the
// toolbar (Demo, New run, Pause, Stop, Classroom) and a status bar with device,
// step, tokens/s and ETA. It wires the training controller and the inspector
// thread to the views; the views themselves only draw plain structs.
#pragma once

#include <QElapsedTimer>
#include <QHash>
#include <QMainWindow>
#include <QSet>
#include <QTimer>

#include <functional>
#include <vector>

#include "app/inspector_worker.h"
#include "app/run_controller.h"
#include "widgets/router_comparison_view.h"

class QAction;
class QLabel;
class QPlainTextEdit;
class QTabWidget;
class QTableView;
class QTableWidget;
class QProgressBar;

namespace smx::widgets {
struct CurveRun;
class TrainingCurvesView;
class RoutingView;
class CapacityView;
class MixingView;
class StabilityLabView;
class PlaygroundView;
class SpeedView;
}  // namespace smx::widgets

namespace smx::store {
class RunStore;
}

namespace smx::app {

/// One run's series of `metric` and its events from the run store, for the curves views.
widgets::CurveRun curveRunFromStore(const store::RunStore& store, qint64 runId, const QString& metric,
                                    const QString& label, const QString& group);

class ModelPage;
class RunListModel;

class MainWindow : public QMainWindow {
  Q_OBJECT
 public:
  /// dataDir: where the run store, runs, tokenizers and caches live.
  explicit MainWindow(const QString& dataDir, QWidget* parent = nullptr);
  ~MainWindow() override;

  /// The Demo button: the demo preset (or another, e.g. the smlp-demo language
  /// model) on the default corpus, views brought up.
  void startDemo(int steps = 0, const QString& preset = QStringLiteral("demo"));
  /// Queues runs (from the launcher, the lab or a test).
  void launch(const QVector<RunRequest>& requests);
  void openLauncher();
  void setClassroomMode(bool on);
  bool classroomMode() const { return classroom_; }
  /// The run list's "Resume": queues run `runId` from its newest checkpoint in
  /// its folder of this data folder. Returns why not (nothing queued), or "".
  QString resumeRun(qint64 runId);
  /// The run list's "Delete" after its confirmation: the run's records and its
  /// folder <data folder>/runs/ID, checked first (a damaged store row or a
  /// folder linking out of runs/ deletes nothing). Returns why not, or "".
  QString deleteRun(qint64 runId);
  /// Shows this run's curves and snapshots (the live run is always overlaid).
  void focusRun(qint64 runId);
  qint64 focusedRun() const { return focus_run_; }
  int snapshotCount() const { return focus_snapshots_.size(); }
  void showTab(const QString& name);
  QString currentTabName() const;
  /// The paper's Table 10 row (BERT, Sparse Mixer, sparse BERT-4 or -12) each lab config stands for.
  static QHash<QString, widgets::StabilityReference> labPaperReferences(const QStringList& configs);
  /// The lab's default batch: the Table 10 set at demo size with the setting that reproduces its ordering.
  static widgets::StabilityPlan defaultLabPlan();
  /// A diverged lab run's links: its routing snapshot nearest `step`, or its router curves.
  void showLabRouting(qint64 runId, qint64 step);
  void showLabCurves(qint64 runId, qint64 step);
  /// Writes the current tab's view (by the suffix: png, svg, pdf, csv); false with *error.
  bool exportCurrentView(const QString& path, QString* error = nullptr);

  const QString& dataDir() const { return data_dir_; }
  /// The command line for a restart that picks up a newly chosen data folder:
  /// `arguments` (as QCoreApplication::arguments()) without --data-dir and the
  /// one-off --demo, --demo-steps, --demo-preset, --tour and --quit-when-idle.
  static QStringList restartArguments(const QStringList& arguments);
  RunController* controller() const { return controller_; }
  InspectorWorker* inspector() const { return inspector_; }
  RunListModel* runList() const { return runs_; }
  ModelPage* modelPage() const { return model_page_; }
  widgets::TrainingCurvesView* curvesView() const { return curves_; }
  widgets::RoutingView* routingView() const { return routing_; }
  widgets::CapacityView* capacityView() const { return capacity_; }
  widgets::MixingView* mixingView() const { return mixing_; }
  widgets::StabilityLabView* labView() const { return lab_; }
  widgets::RouterComparisonView* comparisonView() const { return compare_; }
  widgets::PlaygroundView* playgroundView() const { return playground_; }
  widgets::SpeedView* speedView() const { return speed_; }
  /// Milliseconds the last refresh of the heavy views (routing, capacity, mixing) took.
  double lastHeavyUpdateMs() const { return last_heavy_ms_; }

 protected:
  void closeEvent(QCloseEvent* event) override;

 private:
  void buildActions();
  void buildRunDock();
  void buildViews();
  void connectEngine();
  void restoreSettings();
  /// File > Data folder…: records another data folder for smx and smx-studio
  /// (the engine's settings file) and offers to restart into it.
  void chooseDataFolder();

  void onRunStarting(const QString& label);
  void onRunStarted(qint64 runId, const QString& label, const QString& group);
  void onLiveBatch(const LiveBatch& batch);
  void onRunEnded(qint64 runId, const QString& label, const QString& group, const QString& status,
                  const QString& message, const RunOutcome& outcome);
  void updateActions();
  void updateStatusBar(const StepMetrics* last = nullptr);
  void log(const QString& line);

  QVector<qint64> overlayRuns() const;
  void rebuildCurves();
  void loadFocusSnapshots();
  void refreshHeavyViews();
  void jumpToStep(double step);
  QString checkpointOf(qint64 runId) const;
  /// Runs `job` with the weights the playground, what-ifs and capacity probes
  /// use for run `runId`: while it trains, a fresh live copy of its weights
  /// (asked of the trainer; the job waits for the next step boundary, or for
  /// the run's end and then takes its final checkpoint); otherwise its newest
  /// checkpoint. An empty file: the run has none.
  void withWeights(qint64 runId, std::function<void(const QString& file)> job);
  void runLiveJobs(const QString& file);
  void refreshBestTable();
  void describePlaygroundModel();

  // stability lab
  void runLab(const widgets::StabilityPlan& plan);
  void updateLabCell(qint64 runId, const QString& group, const QString& label, const QString& status,
                     const RunOutcome* outcome);
  void refreshLabCurves();
  void selectRunInList(qint64 runId);

  // router comparison (main_window_compare.cpp)
  void runComparison(const widgets::RouterComparisonPlan& plan);
  void updateComparisonRow(qint64 runId, const QString& group, const QString& label, const QString& status,
                           const RunOutcome* outcome);
  void cancelComparison();
  void refreshComparisonCurves();

  QString data_dir_, store_path_;
  bool restart_on_close_ = false;
  RunController* controller_;
  InspectorWorker* inspector_;
  RunListModel* runs_;
  QTableView* run_table_ = nullptr;
  QTabWidget* tabs_ = nullptr;
  QPlainTextEdit* log_ = nullptr;
  QTableWidget* best_table_ = nullptr;
  ModelPage* model_page_ = nullptr;
  widgets::TrainingCurvesView* curves_ = nullptr;
  widgets::RoutingView* routing_ = nullptr;
  widgets::CapacityView* capacity_ = nullptr;
  widgets::MixingView* mixing_ = nullptr;
  widgets::StabilityLabView* lab_ = nullptr;
  widgets::RouterComparisonView* compare_ = nullptr;
  widgets::PlaygroundView* playground_ = nullptr;
  widgets::SpeedView* speed_ = nullptr;

  QAction *demo_action_, *new_action_, *pause_action_, *stop_action_, *classroom_action_, *export_action_;
  QLabel *device_label_, *step_label_, *speed_label_, *memory_label_, *eta_label_;
  QProgressBar* progress_;

  bool classroom_ = false;
  QString metric_ = "loss/total";
  qint64 live_run_ = 0;
  qint64 live_jobs_run_ = 0;  // the run live_jobs_ wait on
  std::vector<std::function<void(const QString&)>> live_jobs_;
  qint64 focus_run_ = 0;
  bool focus_follows_live_ = true;
  QVector<widgets::SnapshotPtr> focus_snapshots_;
  int pinned_snapshot_ = -1;  // -1: views follow the newest snapshot
  QVector<qint64> curve_runs_;  // run ids in the curves view, in order
  QTimer heavy_timer_;          // coalesces heavy view refreshes
  bool heavy_dirty_ = false;
  QTimer list_timer_;           // refreshes the run list from the store
  double last_heavy_ms_ = 0;
  qint64 steps_total_ = 0, steps_seen_ = 0;

  QString lab_group_;
  int lab_counter_ = 0;
  QVector<widgets::StabilityCell> lab_cells_;
  QHash<QString, int> lab_cell_index_;  // label -> cell

  QString compare_group_;
  int compare_counter_ = 0;
  QVector<widgets::RouterComparisonRow> compare_rows_;
  QHash<QString, int> compare_row_index_;  // label -> row
};

}  // namespace smx::app
