#pragma once
#include <QObject>

// Tokenizer (SentencePiece in the same process as LibTorch), corpora, the
// token cache and BERT pre-training examples.
class TestText : public QObject {
  Q_OBJECT
 private Q_SLOTS:
  void initTestCase();
  void tokenizerRoundTripWithTorch();
  void tokenizerRefusesBadModels();
  void textCorpusDocuments();
  void textCorpusRefusesBadInput();
  void tokenCacheIsReusedAndValidated();
  void maskingStatistics();
  void nspPairing();
  void examplesAreDeterministic();
};
