// smx_data: WordNet parsing, GLUE/SuperGLUE loaders on fixtures in the published formats,
// the wordnet-lexname task and its split, and every metric against hand-computed values.
#pragma once
#include <QObject>

class TestData : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void wordnetFixture();
  void wordnetMissingFile();
  void wordnetMalformedLine();
  void lexicographerFiles();
  void realWordNet();
  void lexnameTaskSplit();
  void taskNamesAndAliases_data();
  void taskNamesAndAliases();
  void unknownTask();
  void loadTask_data();
  void loadTask();
  void regressionTargets();
  void missingFolderOrFile();
  void malformedRows();
  void majorityBaseline();
  void classificationMetrics();
  void correlationMetrics();
  void evaluateTask();
  void badMetricInput();
};
