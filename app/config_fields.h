// Every model, router and training option the run launcher shows: where it
// lives in the run config JSON, its group, its range, and a tooltip a student
// understands. The launcher builds its form from this table, so a new option
// is one line here.
#pragma once

#include <QString>
#include <QStringList>
#include <QVector>

class QComboBox;

namespace smx::app {

struct ConfigField {
  enum Kind { Int, Real, Bool, Choice, Text };
  QString section;  ///< "model" or "training": the top-level object of the run config
  QString key;      ///< path inside the section, "/"-separated ("router/kind")
  QString group;    ///< form group
  QString label;
  Kind kind = Int;
  double min = 0, max = 0;  ///< numbers
  QStringList choices;      ///< Choice
  QString tooltip;
  bool expert = false;  ///< hidden in classroom mode
  /// The model family the field means something for; the launcher hides it for the other.
  enum Family { Both, EncoderOnly, DecoderOnly };
  Family family = Both;
};

const QVector<ConfigField>& configFields();

/// Fills a preset chooser: the encoder presets, then the decoder-LM (sMLP)
/// presets, each family under a header line that cannot be chosen.
void addPresetItems(QComboBox* combo);
/// The header lines of addPresetItems (not presets).
bool isPresetHeader(const QString& text);

}  // namespace smx::app
