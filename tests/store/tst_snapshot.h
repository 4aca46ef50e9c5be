// Telemetry snapshot files: float16 conversion, round trips, refusal of
// truncated, damaged and crafted files, realistic size.
#pragma once
#include <QObject>

class TestSnapshot : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void halfConversionExhaustive();
  void halfConversionRoundsToNearestEven();
  void snapshotRoundTrip();
  void snapshotRefusesDamage();
  void snapshotRefusesCraftedFiles();
  void snapshotRealisticSize();
};
