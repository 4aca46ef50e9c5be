#include "app/structure_rows.h"

#include "model/config/cost.h"

namespace smx::app {

QVector<widgets::LayerRow> structure_rows(const ModelConfig& c, int64_t batch_size) {
  const ModelCost cost = model_cost(c, CostShape{batch_size, 0, -1, true});
  QVector<widgets::LayerRow> rows;
  rows.push_back({"embeddings", "", "", double(cost.embedding_params), double(cost.embedding_params),
                  cost.embedding_flops / 1e9, ""});
  for (const auto& L : cost.layers)
    rows.push_back({QString::number(L.index), QString::fromStdString(L.mixing), L.moe ? "MoE" : "dense",
                    double(L.params), L.active_params, L.forward_flops / 1e9,
                    L.moe ? QString("%1 x %2 groups").arg(L.capacity).arg(L.groups) : QString()});
  rows.push_back({"heads", "", "", double(cost.head_params), double(cost.head_params), cost.head_flops / 1e9, ""});
  return rows;
}

QString structure_summary(const ModelConfig& c, int64_t batch_size) {
  const ModelCost cost = model_cost(c, CostShape{batch_size, 0, -1, true});
  if (c.is_decoder()) {
    QString s = QString("<b>%1</b>: decoder language model (sMLP family), %2 blocks, d_model %3, d_ff %4, dense token "
                        "mixing %5")
                    .arg(QString::fromStdString(c.name))
                    .arg(c.num_layers)
                    .arg(c.d_model)
                    .arg(c.d_ff)
                    .arg(c.lm_mixing == LmMixing::Sgu ? QString("causal SGU (gMLP)") : QString("causal attention"));
    if (c.moe_layers > 0) {
      s += QString("<br>%1 sparse blocks (%2)").arg(c.moe_layers).arg(QString::fromStdString(to_string(c.moe_layout)));
      if (c.smoe_routing != SmoeRouting::None)
        s += QString(": sMoE token mixing, %1 experts, %2 routing").arg(c.num_experts).arg(QString::fromStdString(to_string(c.smoe_routing)));
      if (c.smoe_routing == SmoeRouting::Partial)
        s += QString(" (routing prefix p = %1 of %2 tokens)").arg(c.routing_prefix()).arg(c.max_seq_len);
      if (c.smoe_routing == SmoeRouting::Learned) s += QString(" <i>(reads future tokens: teaching only)</i>");
      s += QString("; feature MoE %1 experts, %2").arg(c.num_experts).arg(QString::fromStdString(to_string(c.router.kind)));
    }
    s += QString("<br>%1 M parameters, %2 M active per token; %3 GFLOP forward per sequence of %4 tokens (batch %5)")
             .arg(double(cost.total_params) / 1e6, 0, 'f', 2)
             .arg(cost.active_params / 1e6, 0, 'f', 2)
             .arg(cost.forward_flops / 1e9, 0, 'f', 2)
             .arg(c.max_seq_len)
             .arg(batch_size);
    return s;
  }
  QString s = QString("<b>%1</b>: %2 layers, d_model %3, d_ff %4, %5 attention layers (%6), mixing %7")
                  .arg(QString::fromStdString(c.name))
                  .arg(c.num_layers)
                  .arg(c.d_model)
                  .arg(c.d_ff)
                  .arg(c.attention_layer_count())
                  .arg(QString::fromStdString(to_string(c.attention_layout)))
                  .arg(QString::fromStdString(to_string(c.mixing)));
  // Real counts: the MIXED layout can place more layers than asked for (the reference rule).
  if (c.moe_layer_count() > 0)
    s += QString("<br>MoE: %1 layers (%2), %3 experts, %4, capacity factor %5 train / %6 eval")
             .arg(c.moe_layer_count())
             .arg(QString::fromStdString(to_string(c.moe_layout)))
             .arg(c.num_experts)
             .arg(QString::fromStdString(to_string(c.router.kind)))
             .arg(c.router.train_capacity_factor)
             .arg(c.router.eval_capacity_factor);
  if (c.moe_layer_count() != c.moe_layers || c.attention_layer_count() != c.attention_layers)
    s += QString("<br>The mixed layout places layers by the reference rule (l mod (L div k) = 0): %1 attention "
                 "and %2 MoE layers for %3 and %4 asked for.")
             .arg(c.attention_layer_count())
             .arg(c.moe_layer_count())
             .arg(c.attention_layers)
             .arg(c.moe_layers);
  s += QString("<br>%1 M parameters, %2 M active per token; %3 GFLOP forward and %4 GFLOP per training step per "
               "example (sequence %5, batch %6)")
           .arg(double(cost.total_params) / 1e6, 0, 'f', 2)
           .arg(cost.active_params / 1e6, 0, 'f', 2)
           .arg(cost.forward_flops / 1e9, 0, 'f', 2)
           .arg(cost.train_flops / 1e9, 0, 'f', 2)
           .arg(c.max_seq_len)
           .arg(batch_size);
  return s;
}

}  // namespace smx::app
