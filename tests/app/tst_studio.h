#pragma once

#include <QObject>

class TestStudio : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void initTestCase();
  void controllerTrainsThroughTheWorkerThread();
  void pauseResumeStop();
  void setupErrorIsReportedNotThrown();
  void launcherRefusesBadConfigs();
  void launcherBuildsSeedRuns();
  void multiProcessRunFromTheStudio();
  void launcherListsTheDevices();
  void outOfMemoryRunFailsAndTheStudioGoesOn();
  void runListShowsHeadlessRuns();
  void runListKeepsToTheDataFolder();
  void windowShowsLiveRun();
  void inspectorAnswersFromCheckpoint();
  void playgroundAnswersFromARunningRun();
  void launcherKnowsLanguageModels();
  void languageModelRunInTheWindow();
  void stabilityLabRunsABatch();
  void stabilityLabDefaultsToTable10();
  void routerComparisonTrainsOnTheSameData();
  void restartKeepsOnlyLastingArguments();
};
