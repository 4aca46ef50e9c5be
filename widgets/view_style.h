// The text styles the views share, so that an error, a hint over an empty
// plot and a status line look the same in every view and dialog.
#pragma once

class QLabel;

namespace smx::widgets {

/// Red, word-wrapped, selectable and hidden until a message is shown.
void styleAsError(QLabel* label);
/// Grey, centred and word-wrapped: what stands where a plot has nothing yet.
void styleAsHint(QLabel* label);
/// Grey: a status line (timings, which model answered).
void styleAsStatus(QLabel* label);

}  // namespace smx::widgets
