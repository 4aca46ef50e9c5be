// Run store (SQLite): round trips, live readers, refusal of foreign or
// damaged files, a writer killed mid-step; the data folder and its setting.
#pragma once
#include <QObject>

class TestStore : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void createListFindRuns();
  void parentRuns();
  void statusAndLastStep();
  void metricsRoundTrip();
  void eventsAndSnapshots();
  void exportCsvWithMissingCell();
  void deleteRun();
  void runFolderIsDerived();
  void migratesAbsoluteFolders();
  void damagedRowsDeleteNothing();
  void symlinksAreNotFollowed();
  void copiedDataFolderIsIndependent();
  void twoConnectionsSeeEachOther();
  void concurrentCreation();
  void refusesForeignOrDamagedFiles_data();
  void refusesForeignOrDamagedFiles();
  void defaultPaths();
  void dataDirSetting();
  void survivesKilledWriter();
  void readsMillionPoints();
  void readsNewPointsOfMillion();
  void benchmarkLogStep();
};
