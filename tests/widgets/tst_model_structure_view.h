// The model structure view fed plain rows, and the main window around it.
#pragma once
#include <QObject>

class TestModelStructureView : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void rendersOneRowAndBarPerLayer();
  void exportsFiles_data();
  void exportsFiles();
  void modelPageRejectsBadConfig();
};
