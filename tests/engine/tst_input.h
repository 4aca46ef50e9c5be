#pragma once
#include <QObject>

// Wrong input to the engine is refused (or warned about) with a message that
// names the problem: JSON numbers out of range, sizes that cannot fit, a
// sequence longer than the model, resuming a run of the other kind, a
// checkpoint that does not fit its model or tokenizer, forged checkpoint
// header fields, a corpus folder with a symbolic link loop, a tokenizer
// smaller than asked for.
class TestInput : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void initTestCase();
  void jsonNumbersOutOfRange_data();
  void jsonNumbersOutOfRange();
  void sizesThatCannotFit_data();
  void sizesThatCannotFit();
  void trainingValuesAgainstTheModel();
  void memoryEstimateRefusesHugeRuns();
  void resumeOfTheOtherKindIsRefused();
  void checkpointMisfitsAreNamed();
  void finetuneWithAnotherVocabularyIsRefused();
  void forgedCheckpointHeaders_data();
  void forgedCheckpointHeaders();
  void corpusSymlinkLoopIsSkipped();
  void smallCorpusTokenizerWarns();
  void cleanupTestCase();
};
