#include "app/main_window.h"

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QDir>
#include <QDockWidget>
#include <QFileDialog>
#include <QHeaderView>
#include <QItemSelectionModel>
#include <QLabel>
#include <QMenu>
#include <QMenuBar>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QProcess>
#include <QProgressBar>
#include <QPushButton>
#include <QSettings>
#include <QSplitter>
#include <QStatusBar>
#include <QTabWidget>
#include <QTableView>
#include <QTableWidget>
#include <QToolBar>
#include <QVBoxLayout>

#include "app/launcher_dialog.h"
#include "app/model_page.h"
#include "app/run_list_model.h"
#include "model/config/cost.h"
#include "model/inspect/inspector.h"
#include "model/store/run_store.h"
#include "widgets/capacity_view.h"
#include "widgets/mixing_view.h"
#include "widgets/model_structure_view.h"
#include "widgets/playground_view.h"
#include "widgets/routing_view.h"
#include "widgets/speed_view.h"
#include "widgets/router_comparison_view.h"
#include "widgets/stability_lab_view.h"
#include "widgets/training_curves_view.h"

namespace smx::app {

namespace {

/// Heavy views (routing, capacity, mixing) refresh at most this often.
constexpr int kHeavyRefreshMs = 250;

/// The presets the Speed view benchmarks: the paper's Table 8.
const QStringList kSpeedPresets = {"bert-base", "sparse-mixer", "fast-sparse-mixer"};

/// Forward FLOPs per example of each preset from the cost model, at a benchmark's batch and length
/// (eval capacity, as the benchmark's own count): the arithmetic beside the measured speed-ups.
QVector<widgets::SpeedEstimate> speed_estimates(const QStringList& presets, int batch, int seq_len) {
  QVector<widgets::SpeedEstimate> out;
  for (const QString& name : presets) {
    try {
      const ModelConfig m = preset(name.toStdString());
      CostShape shape;
      shape.batch_size = batch;
      shape.seq_len = std::min<int64_t>(seq_len, m.max_seq_len);
      shape.training = false;
      out.push_back({name, model_cost(m, shape).forward_flops / 1e9});
    } catch (const std::exception&) {
      // an unknown preset: no estimate, its ratio shows a dash
    }
  }
  return out;
}

}  // namespace

MainWindow::MainWindow(const QString& dataDir, QWidget* parent)
    : QMainWindow(parent),
      data_dir_(dataDir),
      store_path_(dataDir + "/runs.sqlite"),
      controller_(new RunController(this)),
      inspector_(new InspectorWorker),
      runs_(new RunListModel(this)) {
  setWindowTitle(tr("Sparse Mixer Studio"));
  setDockOptions(QMainWindow::AnimatedDocks | QMainWindow::AllowTabbedDocks);
  inspector_->setParent(this);
  QString error;
  if (!runs_->open(store_path_, &error)) {
    // A foreign or damaged store is left untouched; runs cannot be listed, and
    // the trainer will refuse it with the same message.
    QTimer::singleShot(0, this, [this, error] {
      QMessageBox::warning(this, tr("Run store"), tr("The run store cannot be opened:\n%1").arg(error));
    });
  }
  buildViews();
  buildRunDock();
  buildActions();
  connectEngine();

  device_label_ = new QLabel;
  step_label_ = new QLabel;
  speed_label_ = new QLabel;
  memory_label_ = new QLabel;
  eta_label_ = new QLabel;
  progress_ = new QProgressBar;
  progress_->setMaximumWidth(160);
  progress_->setTextVisible(false);
  progress_->hide();
  // The numbers change every step and the status bar does not widen a label
  // whose text grew (11104 tokens/s showed as "11104 tokens/"): give each
  // room for its widest text up front, which also stops the bar jittering.
  auto reserve = [](QLabel* l, const QString& widest) {
    l->setMinimumWidth(l->fontMetrics().horizontalAdvance(widest) + l->fontMetrics().averageCharWidth());
  };
  reserve(step_label_, tr("run %1 · step %2 / %3").arg(8888).arg(8888888).arg(8888888));
  reserve(speed_label_, tr("%1 tokens/s").arg(8888888));
  reserve(eta_label_, tr("ETA %1").arg("88 min 88 s"));
  reserve(memory_label_, tr("GPU %1 GiB · peak %2 GiB").arg("888.8", "888.8"));
  for (QLabel* l : {step_label_, speed_label_}) l->setAlignment(Qt::AlignRight | Qt::AlignVCenter);
  for (QLabel* l : {device_label_, step_label_, speed_label_, memory_label_, eta_label_}) statusBar()->addPermanentWidget(l);
  statusBar()->addPermanentWidget(progress_);
  device_label_->setText(tr("device: %1 · LibTorch %2")
                             .arg(QString::fromStdString(inspect::default_device()),
                                  QString::fromStdString(inspect::libtorch_version())));
  QStringList devices;
  for (const auto& d : inspect::list_devices()) devices << QString::fromStdString(inspect::describe_device(d));
  device_label_->setToolTip(tr("Where new runs with device 'auto' train: the first GPU when LibTorch sees one, else the CPU.\n"
                               "This machine: %1").arg(devices.join("; ")));

  heavy_timer_.setSingleShot(true);
  heavy_timer_.setInterval(kHeavyRefreshMs);
  connect(&heavy_timer_, &QTimer::timeout, this, &MainWindow::refreshHeavyViews);
  list_timer_.setInterval(2000);
  connect(&list_timer_, &QTimer::timeout, this, [this] { runs_->refresh(); });
  list_timer_.start();

  restoreSettings();
  updateActions();
  rebuildCurves();
}

MainWindow::~MainWindow() = default;

void MainWindow::buildViews() {
  tabs_ = new QTabWidget(this);
  tabs_->setDocumentMode(true);

  // Curves, with the best-metrics table of the shown runs under them.
  auto* curves_page = new QSplitter(Qt::Vertical);
  curves_ = new widgets::TrainingCurvesView;
  best_table_ = new QTableWidget;
  best_table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  best_table_->verticalHeader()->hide();
  best_table_->setToolTip(tr("Best (not last) evaluation metrics of the runs shown above."));
  curves_page->addWidget(curves_);
  curves_page->addWidget(best_table_);
  curves_page->setStretchFactor(0, 4);
  curves_page->setStretchFactor(1, 1);
  tabs_->addTab(curves_page, tr("Curves"));

  routing_ = new widgets::RoutingView;
  tabs_->addTab(routing_, tr("Routing"));
  capacity_ = new widgets::CapacityView;
  tabs_->addTab(capacity_, tr("Capacity"));
  mixing_ = new widgets::MixingView;
  tabs_->addTab(mixing_, tr("Mixing"));
  lab_ = new widgets::StabilityLabView;
  QStringList presets;
  for (const auto& p : preset_names()) presets << QString::fromStdString(p);
  for (const auto& p : lm_preset_names()) presets << QString::fromStdString(p);  // decoder LMs (sMLP family)
  lab_->setAvailableConfigs(presets);
  {
    widgets::StabilityPlan plan = defaultLabPlan();
    lab_->setPlan(plan);
    lab_->setPaperReferences(labPaperReferences(plan.configs));
    lab_->setContextNote(
        tr("The paper's counts come from 1M steps at BERT-Base size. At the demo's size and 200 steps (the default "
           "batch: about 11 minutes on 2 cores) no setting tried (learning rates 1e-3 to 3e-2, with and without "
           "warm-up and clipping) made any model diverge: every one is still learning token frequencies. See the "
           "README, \"Stability at classroom scale\", for the measurements and a GPU-size setting."));
  }
  tabs_->addTab(lab_, tr("Stability lab"));
  playground_ = new widgets::PlaygroundView;
  playground_->setText("a domesticated carnivorous [MASK] that barks");
  tabs_->addTab(playground_, tr("Playground"));
  speed_ = new widgets::SpeedView;
  speed_->setEstimates(speed_estimates(kSpeedPresets, speed_->batch(), speed_->seqLen()));
  tabs_->addTab(speed_, tr("Speed"));
  model_page_ = new ModelPage;
  tabs_->addTab(model_page_, tr("Model"));
  compare_ = new widgets::RouterComparisonView;
  {
    QStringList lms;
    for (const auto& p : lm_preset_names())
      if (QString::fromStdString(p).endsWith("-demo")) lms << QString::fromStdString(p);
    widgets::RouterComparisonPlan plan;
    plan.presets = {"smlp-demo", "switch-lm-demo", "gshard-lm-demo", "base-lm-demo", "hash-lm-demo"};
    compare_->setAvailablePresets(lms, plan.presets);
    compare_->setPlan(plan);
  }
  tabs_->addTab(compare_, tr("Routers"));
  connect(model_page_, &ModelPage::message, this, [this](const QString& m) { statusBar()->showMessage(m, 5000); });
  setCentralWidget(tabs_);

  connect(curves_, &widgets::TrainingCurvesView::metricChanged, this, [this](const QString& m) {
    metric_ = m;
    QSettings().setValue("curves/metric", m);
    rebuildCurves();
  });
  connect(curves_, &widgets::TrainingCurvesView::eventClicked, this, &MainWindow::jumpToStep);
  // The playground, what-ifs and capacity probes answer from the focused run's weights as they are
  // now: a live copy while it trains, its newest checkpoint otherwise (withWeights).
  connect(routing_, &widgets::RoutingView::whatIfRequested, this,
          [this](const QString& text, double cf, const QString& router) {
            const qint64 run = focus_run_;
            withWeights(run, [this, run, text, cf, router](const QString& ckpt) {
              if (ckpt.isEmpty()) {
                routing_->setWhatIfError(tr("Run %1 has no checkpoint yet; what-ifs use its newest checkpoint's weights, "
                                            "or a live copy while it trains.").arg(run));
                return;
              }
              inspector_->whatIf(ckpt, text, cf, router);
            });
          });
  connect(capacity_, &widgets::CapacityView::evalCapacityFactorRequested, this, [this](double cf) {
    const qint64 run = focus_run_;
    withWeights(run, [this, run, cf](const QString& ckpt) {
      if (ckpt.isEmpty()) {
        widgets::CapacityProbe p;
        p.capacity_factor = cf;
        p.error = tr("Run %1 has no checkpoint yet.").arg(run);
        capacity_->setEvalProbe(p);
        return;
      }
      inspector_->capacityProbe(ckpt, cf);
    });
  });
  connect(playground_, &widgets::PlaygroundView::predictRequested, this, [this](const QString& text) {
    const qint64 run = focus_run_;
    playground_->setBusy(true);
    withWeights(run, [this, run, text](const QString& ckpt) {
      if (ckpt.isEmpty()) {
        playground_->setBusy(false);
        widgets::PlaygroundResult r;
        r.error = run == 0 ? tr("Select a run with a checkpoint in the run list (or train one with Demo).")
                           : tr("Run %1 has no checkpoint yet.").arg(run);
        playground_->setResult(r);
        return;
      }
      inspector_->predict(ckpt, text);
    });
  });
  connect(playground_, &widgets::PlaygroundView::generateRequested, this,
          [this](const QString& prompt, const widgets::GenerationSettings& settings) {
            const qint64 run = focus_run_;
            playground_->setBusy(true);
            withWeights(run, [this, run, prompt, settings](const QString& ckpt) {
              if (ckpt.isEmpty()) {
                playground_->setBusy(false);
                widgets::GenerationResult r;
                r.error = run == 0 ? tr("Select a language-model run with a checkpoint in the run list.")
                                   : tr("Run %1 has no checkpoint yet.").arg(run);
                playground_->setGeneration(r);
                return;
              }
              inspector_->generate(ckpt, prompt, settings);
            });
          });
  connect(playground_, &widgets::PlaygroundView::leakCheckRequested, this, [this] {
    const qint64 run = focus_run_;
    playground_->setBusy(true);
    withWeights(run, [this, run](const QString& ckpt) {
      if (ckpt.isEmpty()) {
        playground_->setBusy(false);
        widgets::LeakCheckResult r;
        r.error = run == 0 ? tr("Select a language-model run with a checkpoint in the run list.")
                           : tr("Run %1 has no checkpoint yet.").arg(run);
        playground_->setLeakCheck(r);
        return;
      }
      inspector_->leakCheck(ckpt, data_dir_);  // the job thread: one forward pass per target
    });
  });
  connect(speed_, &widgets::SpeedView::runRequested, this, [this](int batch, int seq) {
    speed_->setBusy(true, tr("benchmarking bert-base, sparse-mixer and fast-sparse-mixer…"));
    speed_->setEstimates(speed_estimates(kSpeedPresets, batch, seq));
    inspector_->bench(kSpeedPresets, batch, seq, {});
  });
  connect(lab_, &widgets::StabilityLabView::runRequested, this, &MainWindow::runLab);
  connect(lab_, &widgets::StabilityLabView::routingAtStepRequested, this, &MainWindow::showLabRouting);
  connect(lab_, &widgets::StabilityLabView::curvesRequested, this, &MainWindow::showLabCurves);
  connect(compare_, &widgets::RouterComparisonView::compareRequested, this, &MainWindow::runComparison);
  connect(compare_, &widgets::RouterComparisonView::cancelRequested, this, &MainWindow::cancelComparison);
  connect(lab_, &widgets::StabilityLabView::cancelRequested, this, [this] {
    if (lab_group_.isEmpty()) return;
    controller_->cancelGroup(lab_group_);
    for (auto& c : lab_cells_)
      if (c.status == "queued") c.status = "cancelled";
    lab_->setCells(lab_cells_);
  });
}

void MainWindow::buildRunDock() {
  auto* dock = new QDockWidget(tr("Runs"), this);
  dock->setObjectName("runs-dock");
  run_table_ = new QTableView(dock);
  run_table_->setModel(runs_);
  run_table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  run_table_->setSelectionMode(QAbstractItemView::ExtendedSelection);
  run_table_->verticalHeader()->hide();
  run_table_->horizontalHeader()->setStretchLastSection(true);
  run_table_->setColumnHidden(RunListModel::Created, true);
  run_table_->setContextMenuPolicy(Qt::CustomContextMenu);
  run_table_->setToolTip(tr("Every run in the data folder, from the studio or the smx CLI. Select several to overlay "
                            "their curves; the first selected one is shown in the routing, capacity and mixing views."));
  dock->setWidget(run_table_);
  addDockWidget(Qt::LeftDockWidgetArea, dock);
  run_table_->setColumnWidth(RunListModel::Id, 40);
  run_table_->setColumnWidth(RunListModel::Name, 150);
  run_table_->setColumnWidth(RunListModel::Task, 70);
  run_table_->setColumnWidth(RunListModel::Status, 70);
  run_table_->setColumnWidth(RunListModel::Steps, 50);
  connect(run_table_->selectionModel(), &QItemSelectionModel::selectionChanged, this, [this] {
    const auto rows = run_table_->selectionModel()->selectedRows();
    if (rows.isEmpty()) return;
    const qint64 id = runs_->data(rows.front().siblingAtColumn(0), Qt::UserRole).toLongLong();
    focus_follows_live_ = id == live_run_;
    focusRun(id);
  });
  connect(run_table_, &QTableView::customContextMenuRequested, this, [this](const QPoint& pos) {
    const QModelIndex index = run_table_->indexAt(pos);
    const auto* run = runs_->runAt(index.row());
    if (!run) return;
    const qint64 id = run->id;
    const std::string status = run->status;
    QMenu menu;
    menu.addAction(tr("Resume run %1 from its checkpoint").arg(id), this, [this, id] {
      const QString error = resumeRun(id);
      if (!error.isEmpty()) QMessageBox::warning(this, tr("Resume"), error);
    })->setEnabled(status != "running" && status != "finished");
    const bool lm = runIsLm(*run);
    menu.addAction(tr("Fine-tune from run %1…").arg(id), this, [this, id, lm] {
      if (lm) {
        QMessageBox::information(this, tr("Fine-tune"),
                                 tr("Run %1 is a decoder language model (sMLP family). Fine-tuning on a classification "
                                    "task needs an encoder run (BERT, Sparse Mixer); a language model is used in the "
                                    "Playground to generate text.")
                                     .arg(id));
        return;
      }
      LauncherDialog dialog(runs_->store(), data_dir_, classroom_, this);
      dialog.setStartFromRun(id);
      if (dialog.exec() == QDialog::Accepted) launch(dialog.requests());
    });
    menu.addSeparator();
    menu.addAction(tr("Delete run %1…").arg(id), this, [this, id] {
      if (id == live_run_) {
        QMessageBox::information(this, tr("Delete"), tr("Run %1 is training; stop it first.").arg(id));
        return;
      }
      QString folder;
      try {
        folder = QString::fromStdString(runs_->store()->run_folder(id).string());  // a damaged row is refused here
      } catch (const std::exception& e) {
        QMessageBox::warning(this, tr("Delete"), tr("Run %1 was not deleted:\n\n%2").arg(id).arg(QString::fromUtf8(e.what())));
        return;
      }
      if (QMessageBox::question(this, tr("Delete run"),
                                tr("Delete run %1 with its metrics, checkpoints and snapshots?\n%2\nThis cannot be undone.")
                                    .arg(id)
                                    .arg(folder)) != QMessageBox::Yes)
        return;
      const QString error = deleteRun(id);
      if (!error.isEmpty()) QMessageBox::warning(this, tr("Delete"), error);
    });
    menu.exec(run_table_->viewport()->mapToGlobal(pos));
  });

  auto* log_dock = new QDockWidget(tr("Log"), this);
  log_dock->setObjectName("log-dock");
  log_ = new QPlainTextEdit(log_dock);
  log_->setReadOnly(true);
  log_->setMaximumBlockCount(5000);
  log_dock->setWidget(log_);
  addDockWidget(Qt::BottomDockWidgetArea, log_dock);
  // First-start sizes; a saved window state replaces them.
  resizeDocks({dock}, {420}, Qt::Horizontal);
  resizeDocks({log_dock}, {110}, Qt::Vertical);
}

void MainWindow::buildActions() {
  auto* bar = addToolBar(tr("Run"));
  bar->setObjectName("run-toolbar");
  bar->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
  demo_action_ = bar->addAction(QIcon::fromTheme("media-playback-start"), tr("Demo"), this, [this] { startDemo(); });
  demo_action_->setShortcut(QKeySequence(tr("Ctrl+D")));
  demo_action_->setToolTip(tr("Train the small demo model on WordNet and watch it live (Ctrl+D)."));
  new_action_ = bar->addAction(QIcon::fromTheme("document-new"), tr("New run…"), this, &MainWindow::openLauncher);
  new_action_->setShortcut(QKeySequence::New);
  new_action_->setToolTip(tr("Configure and start (or queue) a pre-training or fine-tuning run (Ctrl+N)."));
  pause_action_ = bar->addAction(QIcon::fromTheme("media-playback-pause"), tr("Pause"), this, [this] {
    if (controller_->paused()) controller_->resume();
    else controller_->pause();
  });
  pause_action_->setShortcut(QKeySequence(tr("Ctrl+P")));
  pause_action_->setToolTip(tr("Pause or continue the running job after its current step (Ctrl+P)."));
  stop_action_ = bar->addAction(QIcon::fromTheme("media-playback-stop"), tr("Stop"), this, [this] { controller_->stop(); });
  stop_action_->setShortcut(QKeySequence(tr("Ctrl+.")));
  stop_action_->setToolTip(tr("Stop the running job after its current step; it evaluates, checkpoints and can be resumed (Ctrl+.)."));
  bar->addSeparator();
  classroom_action_ = bar->addAction(QIcon::fromTheme("view-fullscreen"), tr("Classroom"));
  classroom_action_->setCheckable(true);
  classroom_action_->setShortcut(QKeySequence(tr("F11")));
  classroom_action_->setToolTip(tr("Larger fonts and fewer controls, for teaching (F11)."));
  connect(classroom_action_, &QAction::toggled, this, &MainWindow::setClassroomMode);
  export_action_ = bar->addAction(QIcon::fromTheme("document-save-as"), tr("Export view…"), this, [this] {
    const QString path = QFileDialog::getSaveFileName(this, tr("Export %1").arg(currentTabName()),
                                                      currentTabName().toLower().replace(' ', '-') + ".pdf",
                                                      tr("PDF (*.pdf);;SVG (*.svg);;PNG (*.png);;CSV (*.csv)"));
    if (path.isEmpty()) return;
    QString error;
    if (!exportCurrentView(path, &error)) QMessageBox::warning(this, tr("Export failed"), error);
  });
  export_action_->setShortcut(QKeySequence(tr("Ctrl+E")));

  auto* file = menuBar()->addMenu(tr("&File"));
  file->addAction(new_action_);
  file->addAction(demo_action_);
  file->addAction(export_action_);
  file->addSeparator();
  file->addAction(tr("&Data folder…"), this, &MainWindow::chooseDataFolder)
      ->setToolTip(tr("Where runs, checkpoints, tokenizers and caches are kept (shared with the smx command)."));
  file->addSeparator();
  file->addAction(tr("&Quit"), QKeySequence::Quit, this, &QWidget::close);
  auto* run = menuBar()->addMenu(tr("&Run"));
  run->addAction(pause_action_);
  run->addAction(stop_action_);
  run->addAction(tr("Clear the queue"), this, [this] { controller_->clearQueue(); });
  auto* view = menuBar()->addMenu(tr("&View"));
  view->addAction(classroom_action_);
  view->addAction(tr("Follow the newest snapshot"), this, [this] {
    pinned_snapshot_ = -1;
    refreshHeavyViews();
  });
  const QStringList names = {"Curves", "Routing", "Capacity", "Mixing", "Stability lab", "Playground", "Speed", "Model", "Routers"};
  for (int i = 0; i < names.size(); ++i)
    view->addAction(names[i], QKeySequence(QString("Alt+%1").arg(i + 1)), this, [this, i] { tabs_->setCurrentIndex(i); });
  auto* help = menuBar()->addMenu(tr("&Help"));
  help->addAction(tr("&About"), this, [this] {
    QMessageBox::about(this, tr("About Sparse Mixer Studio"),
                       tr("<h3>Sparse Mixer Studio %1</h3><p>Train, inspect and teach Mixture-of-Experts encoders.</p>"
                          "<p>%2<br>Data folder: %3</p>")
                           .arg(QApplication::applicationVersion(),
                                QString::fromStdString(inspect::runtime_description()), data_dir_.toHtmlEscaped()));
  });
}

void MainWindow::connectEngine() {
  connect(controller_, &RunController::runStarting, this, [this](const QString& label) { onRunStarting(label); });
  connect(controller_, &RunController::runStarted, this, &MainWindow::onRunStarted);
  connect(controller_, &RunController::liveBatch, this, &MainWindow::onLiveBatch);
  connect(controller_, &RunController::runEnded, this, &MainWindow::onRunEnded);
  connect(controller_, &RunController::liveWeightsReady, this,
          [this](qint64 runId, qint64, const QString& file, const QString& error) {
            if (runId != live_jobs_run_) return;
            if (!error.isEmpty()) log(tr("run %1: no live copy of its weights (%2); using its newest checkpoint").arg(runId).arg(error));
            runLiveJobs(file.isEmpty() ? checkpointOf(runId) : file);
          });
  connect(controller_, &RunController::queueChanged, this, &MainWindow::updateActions);
  connect(controller_, &RunController::pausedChanged, this, [this](bool paused) {
    log(paused ? tr("pausing after the current step") : tr("continuing"));
    updateActions();
  });
  connect(inspector_, &InspectorWorker::predicted, this,
          [this](const widgets::PlaygroundResult& r, const QString& description) {
            playground_->setBusy(false);
            if (!description.isEmpty()) playground_->setModelDescription(description);
            playground_->setResult(r);
          });
  connect(inspector_, &InspectorWorker::generated, this,
          [this](const widgets::GenerationResult& r, const QString& description) {
            playground_->setBusy(false);
            if (!description.isEmpty()) playground_->setModelDescription(description);
            playground_->setGeneration(r);
          });
  connect(inspector_, &InspectorWorker::leakChecked, this, [this](const widgets::LeakCheckResult& r) {
    playground_->setBusy(false);
    playground_->setLeakCheck(r);
  });
  connect(inspector_, &InspectorWorker::whatIfReady, this, [this](const WhatIfResult& r) {
    if (!r.error.isEmpty()) routing_->setWhatIfError(r.error);
    else routing_->setWhatIf(r.routing, r.caption);
  });
  connect(inspector_, &InspectorWorker::capacityReady, this,
          [this](const widgets::CapacityProbe& p) { capacity_->setEvalProbe(p); });
  connect(inspector_, &InspectorWorker::benchProgress, this, [this](const QString& line) {
    speed_->setBusy(true, line);
    log(line);
  });
  connect(inspector_, &InspectorWorker::benchReady, this, [this](const widgets::SpeedResult& r) {
    speed_->setBusy(false);
    speed_->setResult(r);
    if (!r.error.isEmpty()) log(tr("benchmark failed: %1").arg(r.error));
  });
}

void MainWindow::restoreSettings() {
  QSettings s;
  restoreGeometry(s.value("window/geometry").toByteArray());
  restoreState(s.value("window/state").toByteArray());
  metric_ = s.value("curves/metric", metric_).toString();
  const int tab = s.value("window/tab", 0).toInt();
  if (tab >= 0 && tab < tabs_->count()) tabs_->setCurrentIndex(tab);
  if (s.value("window/classroom", false).toBool()) classroom_action_->setChecked(true);
}

void MainWindow::closeEvent(QCloseEvent* event) {
  if (controller_->busy()) {
    const auto answer = QMessageBox::question(
        this, tr("Quit"), tr("A run is training. Stop it (it checkpoints and can be resumed) and quit?"));
    if (answer != QMessageBox::Yes) {
      event->ignore();
      return;
    }
    controller_->clearQueue();
    controller_->stop();
  }
  QSettings s;
  s.setValue("window/geometry", saveGeometry());
  s.setValue("window/state", saveState());
  s.setValue("window/tab", tabs_->currentIndex());
  s.setValue("window/classroom", classroom_);
  event->accept();
  if (restart_on_close_ && !QProcess::startDetached(QApplication::applicationFilePath(),
                                                    restartArguments(QApplication::arguments()).mid(1)))
    qWarning("smx-studio: could not restart; start it again to use the new data folder");
}

QStringList MainWindow::restartArguments(const QStringList& arguments) {
  QStringList out;
  for (int i = 0; i < arguments.size(); ++i) {
    const QString& a = arguments[i];
    const QString name = a.section('=', 0, 0);
    if (name == "--data-dir" || name == "--demo-steps" || name == "--demo-preset" || name == "--tour") {
      if (!a.contains('=')) ++i;  // its value is the next argument
      continue;
    }
    if (a == "--demo" || a == "--quit-when-idle") continue;
    out << a;
  }
  return out;
}

void MainWindow::chooseDataFolder() {
  const QString dir = QFileDialog::getExistingDirectory(
      this, tr("Data folder for runs, checkpoints, tokenizers and caches"), data_dir_);
  if (dir.isEmpty() || QDir(dir) == QDir(data_dir_)) return;
  try {
    store::save_data_dir_setting(dir.toStdString());
  } catch (const std::exception& e) {
    QMessageBox::warning(this, tr("Data folder"), QString::fromStdString(e.what()));
    return;
  }
  log(tr("data folder set to %1 (in %2)").arg(dir, QString::fromStdString(store::settings_file().string())));
  QString note = tr("<p>The studio and the <tt>smx</tt> command now keep their data in<br><b>%1</b>.</p>"
                    "<p>Runs already in %2 stay there.</p>")
                     .arg(dir.toHtmlEscaped(), data_dir_.toHtmlEscaped());
  if (qEnvironmentVariableIsSet("SMX_DATA_DIR"))
    note += tr("<p>SMX_DATA_DIR is set in this environment and still wins over this choice.</p>");
  QMessageBox box(QMessageBox::Information, tr("Data folder"), note, QMessageBox::NoButton, this);
  auto* restart = box.addButton(tr("Restart now"), QMessageBox::AcceptRole);
  box.addButton(tr("Later"), QMessageBox::RejectRole);
  if (controller_->busy()) {
    restart->setEnabled(false);
    box.setInformativeText(tr("A run is training: restart when it has finished."));
  }
  box.exec();
  if (box.clickedButton() != restart) return;
  restart_on_close_ = true;
  if (!close()) restart_on_close_ = false;
}

// ---- tabs, classroom, export ----------------------------------------------------

void MainWindow::showTab(const QString& name) {
  for (int i = 0; i < tabs_->count(); ++i)
    if (tabs_->tabText(i).remove('&') == name) tabs_->setCurrentIndex(i);
}

QString MainWindow::currentTabName() const { return tabs_->tabText(tabs_->currentIndex()).remove('&'); }

bool MainWindow::exportCurrentView(const QString& path, QString* error) {
  QWidget* w = tabs_->currentWidget();
  if (w == curves_->parentWidget() || w == curves_) return curves_->exportView(path, error);
  if (w == routing_) return routing_->exportView(path, error);
  if (w == capacity_) return capacity_->exportView(path, error);
  if (w == mixing_) return mixing_->exportView(path, error);
  if (w == lab_) return lab_->exportView(path, error);
  if (w == compare_) return compare_->exportView(path, error);
  if (w == playground_) return playground_->exportView(path, error);
  if (w == speed_) return speed_->exportView(path, error);
  if (w == model_page_) return model_page_->structureView()->exportChart(path);
  if (error) *error = tr("this view cannot be exported");
  return false;
}

void MainWindow::setClassroomMode(bool on) {
  classroom_ = on;
  if (classroom_action_->isChecked() != on) classroom_action_->setChecked(on);
  curves_->setClassroomMode(on);
  routing_->setClassroomMode(on);
  capacity_->setClassroomMode(on);
  mixing_->setClassroomMode(on);
  lab_->setClassroomMode(on);
  compare_->setClassroomMode(on);
  playground_->setClassroomMode(on);
  speed_->setClassroomMode(on);
  QFont f = QApplication::font();
  f.setPointSizeF(QApplication::font().pointSizeF() * (on ? 1.25 : 1.0));
  tabs_->tabBar()->setFont(f);
}

}  // namespace smx::app
