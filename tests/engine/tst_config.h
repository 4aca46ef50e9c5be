// Model configs: preset shapes, layouts, JSON, validation, and parameter
// counts of the cost model against the real modules.
#pragma once
#include <QObject>

class TestConfig : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void presetsHaveDesignShapes_data();
  void presetsHaveDesignShapes();
  void table10PresetsAtDemoSize();
  void layoutsFollowReferenceRules_data();
  void layoutsFollowReferenceRules();
  void jsonRoundTrip();
  void badConfigsAreRejected_data();
  void badConfigsAreRejected();
  void parameterCountsMatchModules_data();
  void parameterCountsMatchModules();
  void flopsMatchHandCount();
  void devicesOfThisMachine();
};
