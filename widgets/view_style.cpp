#include "widgets/view_style.h"

#include <QLabel>

namespace smx::widgets {

void styleAsError(QLabel* label) {
  label->setStyleSheet(QStringLiteral("color: #c62828;"));
  label->setWordWrap(true);
  label->setTextInteractionFlags(Qt::TextSelectableByMouse);
  label->hide();
}

void styleAsHint(QLabel* label) {
  label->setStyleSheet(QStringLiteral("color: #666;"));
  label->setAlignment(Qt::AlignCenter);
  label->setWordWrap(true);
}

void styleAsStatus(QLabel* label) { label->setStyleSheet(QStringLiteral("color: #555;")); }

}  // namespace smx::widgets
