// smx-studio: the desktop application.
#include <QApplication>
#include <QCommandLineParser>
#include <QIcon>
#include <QSettings>

#include "app/main_window.h"

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  QApplication::setOrganizationName("SparseMixerStudio");
  QApplication::setApplicationName("smx-studio");
  QApplication::setApplicationVersion(SMX_VERSION);
  QApplication::setWindowIcon(QIcon(":/icons/smx-studio.svg"));

  QCommandLineParser parser;
  parser.setApplicationDescription("Sparse Mixer Studio: train, inspect and teach Mixture-of-Experts encoders");
  parser.addHelpOption();
  parser.addVersionOption();
  QCommandLineOption preset({"p", "preset"}, "Model preset to show.", "name");
  QCommandLineOption config({"c", "config"}, "Model config JSON file to open.", "file");
  parser.addOption(preset);
  parser.addOption(config);
  parser.process(app);

  smx::app::MainWindow window;
  if (parser.isSet(preset) && !window.showPreset(parser.value(preset))) {
    qCritical("smx-studio: unknown preset '%s'", qPrintable(parser.value(preset)));
    return 2;
  }
  if (parser.isSet(config) && !window.openConfig(parser.value(config), true)) {
    qCritical("smx-studio: cannot use config '%s'", qPrintable(parser.value(config)));
    return 2;
  }
  window.resize(1100, 780);
  window.show();
  const int rc = QApplication::exec();
  QSettings().setValue("window/geometry", window.saveGeometry());
  return rc;
}
