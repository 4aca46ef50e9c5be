// smx-studio: the desktop application.
#include <QApplication>
#include <QCommandLineParser>
#include <QDir>
#include <QIcon>
#include <QMessageBox>
#include <QThread>
#include <QTimer>

#include <memory>

#include "app/launcher_dialog.h"
#include "model/core/allocator.h"
#include "model/core/omp_wait.h"
#include "app/main_window.h"
#include "app/run_list_model.h"
#include "app/model_page.h"
#include "app/run_controller.h"
#include "widgets/training_curves_view.h"
#include "model/inspect/inspector.h"
#include "model/store/run_store.h"

namespace {

// The command line, described once for the information-only parse (no
// display needed) and the real one.
struct StudioOptions {
  QCommandLineOption preset{{"p", "preset"}, "Model preset to show on the Model page.", "name"};
  QCommandLineOption config{{"c", "config"}, "Model config JSON file to show on the Model page.", "file"};
  QCommandLineOption data_dir{"data-dir",
                              "Folder for the run store, runs, tokenizers and caches, for this session "
                              "(default: $SMX_DATA_DIR, else the folder chosen in File > Data folder "
                              "or with `smx data-dir --set`, else the XDG data folder).",
                              "dir"};
  QCommandLineOption demo{"demo", "Start the demo run at once."};
  QCommandLineOption demo_steps{"demo-steps", "Steps of the demo run (default: 1000).", "n"};
  QCommandLineOption demo_preset{"demo-preset",
                                 "Preset of the demo run (default: demo; e.g. smlp-demo, a decoder language model).",
                                 "name"};
  QCommandLineOption classroom{"classroom", "Start in classroom mode (large fonts, fewer controls)."};
  QCommandLineOption tab{"tab", "Open this view: Curves, Routing, Capacity, Mixing, Stability lab, Playground, Speed, Model, Routers.",
                         "name"};
  QCommandLineOption tour{"tour",
                          "Once the focused run has 3 snapshots, save a screenshot of every view into this "
                          "folder (for documentation and checks).",
                          "dir"};
  QCommandLineOption quit_idle{"quit-when-idle",
                               "Quit when the run queue is empty, printing a line per run; exit status 1 if a run "
                               "failed or diverged (after --demo; for scripted use)."};

  void addTo(QCommandLineParser& parser) const {
    parser.setApplicationDescription("Sparse Mixer Studio: train, inspect and teach Mixture-of-Experts encoders");
    parser.addHelpOption();
    parser.addVersionOption();
    parser.addOptions({preset, config, data_dir, demo, demo_steps, demo_preset, classroom, tab, tour, quit_idle});
  }
};

void setApplicationNames() {
  QCoreApplication::setOrganizationName("SparseMixerStudio");
  QCoreApplication::setApplicationName("smx-studio");
  QCoreApplication::setApplicationVersion(SMX_VERSION);
}

// --help and --version print and exit without a QApplication, so they work
// without a display (over ssh, in scripts, in package tests).
bool wantsInformationOnly(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const QByteArray a(argv[i]);
    if (a == "-h" || a == "--help" || a == "--help-all" || a == "-v" || a == "--version" || a == "-?") return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  smx::shorten_omp_spinning(argv);  // may start this program again, with GOMP_SPINCOUNT=30000
  smx::tune_allocator();
  const StudioOptions o;
  if (wantsInformationOnly(argc, argv)) {
    QCoreApplication core(argc, argv);
    setApplicationNames();
    QCoreApplication::setApplicationVersion(
        QString("%1 (%2)").arg(SMX_VERSION, QString::fromStdString(smx::inspect::runtime_description())));
    QCommandLineParser parser;
    o.addTo(parser);
    parser.process(core);  // prints and exits
    return 0;
  }
  QApplication::setHighDpiScaleFactorRoundingPolicy(Qt::HighDpiScaleFactorRoundingPolicy::PassThrough);
  QApplication app(argc, argv);
  setApplicationNames();
  QApplication::setWindowIcon(QIcon(":/icons/smx-studio.svg"));
  // Matches the installed org.sparsemixerstudio.Studio.desktop (Wayland app id, task bars).
  QGuiApplication::setDesktopFileName("org.sparsemixerstudio.Studio");

  QCommandLineParser parser;
  o.addTo(parser);
  parser.process(app);
  const QCommandLineOption &preset = o.preset, &config = o.config, &data_dir = o.data_dir, &demo = o.demo,
                           &demo_steps = o.demo_steps, &demo_preset = o.demo_preset, &classroom = o.classroom, &tab = o.tab, &tour = o.tour,
                           &quit_idle = o.quit_idle;

  // Started from a menu, nobody reads stderr: a reason not to start is also shown.
  const auto cannot_start = [](const QString& why) {
    qCritical("smx-studio: %s", qPrintable(why));
    if (QGuiApplication::platformName() != "offscreen")
      QMessageBox::critical(nullptr, "Sparse Mixer Studio", "Sparse Mixer Studio cannot start:\n\n" + why);
    return 2;
  };
  QString dir;
  try {
    dir = parser.isSet(data_dir) ? QDir(parser.value(data_dir)).absolutePath()
                                 : QString::fromStdString(smx::store::default_data_dir().string());
  } catch (const std::exception& e) {  // a damaged settings file: say which, change nothing
    return cannot_start(QString::fromStdString(e.what()));
  }
  if (!QDir().mkpath(dir)) return cannot_start(QString("cannot create the data folder '%1'").arg(dir));
  smx::app::MainWindow window(dir);
  if (parser.isSet(preset) && !window.modelPage()->showPreset(parser.value(preset))) {
    qCritical("smx-studio: unknown preset '%s'", qPrintable(parser.value(preset)));
    return 2;
  }
  if (parser.isSet(config) && !window.modelPage()->openConfig(parser.value(config), true)) {
    qCritical("smx-studio: cannot use config '%s'", qPrintable(parser.value(config)));
    return 2;
  }
  int steps = 0;
  if (parser.isSet(demo_steps)) {
    bool ok = false;
    steps = parser.value(demo_steps).toInt(&ok);
    if (!ok || steps < 1) {
      qCritical("smx-studio: --demo-steps needs a positive number, not '%s'", qPrintable(parser.value(demo_steps)));
      return 2;
    }
  }
  if (parser.isSet(classroom)) window.setClassroomMode(true);
  window.resize(1400, 900);
  window.show();
  if (parser.isSet(tab)) window.showTab(parser.value(tab));
  if (parser.isSet(demo_preset)) {
    try {
      smx::preset(parser.value(demo_preset).toStdString());
    } catch (const std::exception& e) {
      qCritical("smx-studio: %s", e.what());
      return 2;
    }
  }
  if (parser.isSet(demo) || parser.isSet(demo_steps) || parser.isSet(demo_preset))
    window.startDemo(steps, parser.isSet(demo_preset) ? parser.value(demo_preset) : QStringLiteral("demo"));
  if (parser.isSet(tour)) {
    const QString out = parser.value(tour);
    QDir().mkpath(out);
    auto* timer = new QTimer(&window);
    QObject::connect(timer, &QTimer::timeout, &window, [&window, timer, out] {
      if (window.snapshotCount() < 3) return;
      timer->stop();
      const QString back = window.currentTabName();
      for (const QString& name : {"Curves", "Routing", "Capacity", "Mixing", "Stability lab", "Playground", "Speed", "Model"}) {
        window.showTab(name);
        QApplication::processEvents();
        QThread::msleep(300);  // let coalesced replots land
        QApplication::processEvents();
        const QString file = out + "/" + name.toLower().replace(' ', '-') + ".png";
        if (!window.grab().save(file)) qWarning("smx-studio: cannot write %s", qPrintable(file));
      }
      {
        smx::app::LauncherDialog launcher(window.runList()->store(), window.dataDir(), window.classroomMode(), &window);
        launcher.show();
        QApplication::processEvents();
        launcher.grab().save(out + "/launcher.png");
      }
      window.showTab(back);
      std::printf("tour: screenshots in %s (curves replot %.2f ms on average, heavy views update %.2f ms)\n",
                  qPrintable(out), window.curvesView()->replotMs(), window.lastHeavyUpdateMs());
      std::fflush(stdout);
    });
    timer->start(1000);
  }
  if (parser.isSet(quit_idle)) {
    // For scripts: one line per run on stdout; the exit status is 1 when a run
    // failed or diverged, so `smx-studio --demo --quit-when-idle` can be checked.
    auto any_failed = std::make_shared<bool>(false);
    QObject::connect(window.controller(), &smx::app::RunController::runEnded, &app,
                     [&window, any_failed](qint64 id, const QString&, const QString&, const QString& status,
                                           const QString& message, const smx::RunOutcome& outcome) {
                       if (status == "failed" || status == "diverged") *any_failed = true;
                       if (id == 0)  // set-up failed before the run was recorded
                         std::printf("run failed before its first step: %s\n", qPrintable(message));
                       else
                         std::printf("run %lld %s: %lld steps, %.1f examples/s, %.0f tokens/s, %.1f s training%s%s\n",
                                     static_cast<long long>(id), qPrintable(status),
                                     static_cast<long long>(outcome.steps_done), outcome.examples_per_second,
                                     outcome.tokens_per_second, outcome.train_seconds, message.isEmpty() ? "" : ": ",
                                     qPrintable(message));
                       std::fflush(stdout);
                       if (!window.controller()->busy())
                         QTimer::singleShot(0, qApp, [any_failed] { QApplication::exit(*any_failed ? 1 : 0); });
                     });
  }
  return QApplication::exec();
}
