// qcustomplot.h is written with Qt's keywords (signals, slots, emit,
// foreach), which test targets turn off with QT_NO_KEYWORDS. Include this
// instead of <qcustomplot.h>, before any header that includes it.
#pragma once

#ifdef QT_NO_KEYWORDS
#define signals Q_SIGNALS
#define slots Q_SLOTS
#define emit Q_EMIT
#define foreach Q_FOREACH
#include <qcustomplot.h>
#undef signals
#undef slots
#undef emit
#undef foreach
#else
#include <qcustomplot.h>
#endif
