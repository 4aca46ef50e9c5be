// Turns the engine's cost model into the structure view's plain rows.
#pragma once

#include <QString>
#include <QVector>

#include "model/config/model_config.h"
#include "widgets/model_structure_view.h"

namespace smx::app {

QVector<widgets::LayerRow> structure_rows(const ModelConfig& config, int64_t batch_size);
QString structure_summary(const ModelConfig& config, int64_t batch_size);

}  // namespace smx::app
