#include "app/config_fields.h"

#include <QComboBox>
#include <QFont>
#include <QStandardItemModel>

#include "model/config/model_config.h"

namespace smx::app {

namespace {

const QString kEncoderHeader = QStringLiteral("— Encoders (masked LM: BERT, Sparse Mixer) —");
const QString kDecoderHeader = QStringLiteral("— Decoder language models (sMLP paper) —");

ConfigField only(ConfigField c, ConfigField::Family family) {
  c.family = family;
  return c;
}

ConfigField f(QString section, QString key, QString group, QString label, ConfigField::Kind kind, double min, double max,
              QString tooltip, bool expert = false, QStringList choices = {}) {
  ConfigField c;
  c.section = std::move(section);
  c.key = std::move(key);
  c.group = std::move(group);
  c.label = std::move(label);
  c.kind = kind;
  c.min = min;
  c.max = max;
  c.tooltip = std::move(tooltip);
  c.expert = expert;
  c.choices = std::move(choices);
  return c;
}

}  // namespace

const QVector<ConfigField>& configFields() {
  using K = ConfigField;
  static const QVector<ConfigField> fields = {
      // --- model: size ---
      f("model", "name", "Model size", "Name", K::Text, 0, 0, "A label for this model; presets use their own name."),
      f("model", "num_layers", "Model size", "Layers", K::Int, 1, 64,
        "How many blocks are stacked. Each block mixes tokens, then transforms each token with an MLP or MoE."),
      f("model", "d_model", "Model size", "Hidden width (d_model)", K::Int, 8, 8192,
        "The size of every token's vector inside the model. Wider models learn more but cost more."),
      f("model", "d_ff", "Model size", "MLP width (d_ff)", K::Int, 8, 32768,
        "The inner width of each dense MLP; usually 4x the hidden width."),
      f("model", "num_heads", "Model size", "Attention heads", K::Int, 1, 128,
        "Self-attention splits the hidden vector into this many heads that each attend separately. Must divide d_model."),
      f("model", "vocab_size", "Model size", "Vocabulary", K::Int, 16, 1000000,
        "How many different tokens (word pieces) the tokenizer knows. A new tokenizer of this size is trained if needed.", true),
      f("model", "max_seq_len", "Model size", "Max sequence length", K::Int, 4, 8192,
        "The longest input in tokens. Linear mixing matrices are this many rows and columns."),
      only(f("model", "d_embedding", "Model size", "Embedding width", K::Int, 0, 8192,
        "Width of the token embedding table, projected up to d_model; 0 uses d_model.", true), ConfigField::EncoderOnly),
      only(f("model", "type_vocab_size", "Model size", "Segment types", K::Int, 1, 16,
        "How many segment ids (sentence A / B) the embeddings know.", true), ConfigField::EncoderOnly),
      // --- model: mixing ---
      only(f("model", "mixing", "Token mixing", "Mixing", K::Choice, 0, 0,
        "How layers without attention mix information between tokens: a learned matrix (linear), fixed Fourier or "
        "Hartley transforms, or structured circulant/Toeplitz matrices.",
        false, {"linear", "fourier", "hartley", "circulant", "toeplitz"}), ConfigField::EncoderOnly),
      only(f("model", "attention_layers", "Token mixing", "Attention layers", K::Int, 0, 64,
        "How many layers keep full self-attention. Sparse Mixer keeps a few; BERT uses attention everywhere."), ConfigField::EncoderOnly),
      only(f("model", "attention_layout", "Token mixing", "Attention placement", K::Choice, 0, 0,
        "Where the attention layers sit in the stack: top (last layers), bottom, middle or mixed (spread out).", false,
        {"top", "bottom", "middle", "mixed"}), ConfigField::EncoderOnly),
      // --- model: experts ---
      f("model", "moe_layers", "Mixture of Experts", "MoE layers", K::Int, 0, 64,
        "How many blocks replace their MLP with a Mixture of Experts: several MLPs, each token processed by few of them."),
      f("model", "moe_layout", "Mixture of Experts", "MoE placement", K::Choice, 0, 0,
        "Where the MoE blocks sit in the stack. fairseq-insert (decoder LMs, as fairseq's BASE layers) spreads the "
        "sparse blocks evenly between the dense ones.",
        false, {"top", "bottom", "middle", "mixed", "fairseq-insert"}),
      f("model", "num_experts", "Mixture of Experts", "Experts", K::Int, 1, 1024,
        "How many expert MLPs each MoE layer has. More experts add parameters without adding compute per token."),
      f("model", "expert_d_ff", "Mixture of Experts", "Expert width", K::Int, 0, 32768,
        "Inner width of each expert; 0 uses the MLP width.", true),
      f("model", "expert_dropout", "Mixture of Experts", "Expert dropout", K::Real, 0, 0.9,
        "Dropout inside the experts; the paper fine-tunes with 0.2 to fight over-fitting.", true),
      // --- decoder language models (sMLP family) ---
      only(f("model", "lm_mixing", "Language model (sMLP)", "Dense token mixing", K::Choice, 0, 0,
             "How the dense blocks of the language model mix tokens: causal self-attention (Transformer-LM) or a gMLP "
             "block whose spatial gating unit (SGU) has a causal n x n matrix: position t reads positions <= t only.",
             false, {"attention", "sgu"}),
           ConfigField::DecoderOnly),
      only(f("model", "smoe_routing", "Language model (sMLP)", "sMoE routing", K::Choice, 0, 0,
             "Token mixing of the sparse blocks: none (as the dense blocks), or an sMoE whose experts each own part of "
             "the hidden channels with their own causal spatial matrix. Deterministic: fixed contiguous channel bands "
             "per expert. Partial: a router picks each channel's expert from the first tokens only (the prefix), and "
             "the loss counts only the targets after it. Learned: the router reads whole channels, future tokens "
             "included: it leaks (for teaching; see the Playground's leak check).",
             false, {"none", "deterministic", "partial", "learned"}),
           ConfigField::DecoderOnly),
      only(f("model", "smoe_prefix_fraction", "Language model (sMLP)", "Routing prefix (fraction)", K::Real, 0.01, 0.99,
             "Partial prediction: the router reads the first p = floor(fraction x max sequence length) tokens (0.2 in "
             "the paper: p = 12 of 64); the loss counts only targets after them."),
           ConfigField::DecoderOnly),
      only(f("model", "smoe_balancing_weight", "Language model (sMLP)", "sMoE balancing weight", K::Real, 0, 10,
             "Partial and learned sMoE: weight of the load-balancing loss that spreads channels over the experts.", true),
           ConfigField::DecoderOnly),
      // --- router ---
      f("model", "router/kind", "Router", "Router", K::Choice, 0, 0,
        "Who chooses: in Tokens Choose each token asks for its top experts (some are dropped when an expert is full); "
        "in Experts Choose each expert picks the tokens it wants (some tokens get no expert). Switch (top-1) and "
        "GShard (top-2) are Tokens Choose as fairseq's gates; BASE gives every expert exactly its share of tokens "
        "while training (a balanced assignment) and each token its closest expert at inference; Hash sends each "
        "token id to a fixed expert.",
        false, {"experts-choose", "tokens-choose", "switch", "gshard", "base", "hash"}),
      f("model", "router/top_k", "Router", "Experts per token (top-k)", K::Int, 1, 16,
        "Tokens Choose: how many experts each token asks for."),
      f("model", "router/train_capacity_factor", "Router", "Capacity factor (train)", K::Real, 0.01, 64,
        "How many tokens an expert can take, relative to a fair share: 1.0 means tokens / experts slots per expert. "
        "More capacity drops fewer tokens but costs more compute."),
      f("model", "router/eval_capacity_factor", "Router", "Capacity factor (eval)", K::Real, 0.01, 64,
        "The same at inference and evaluation; the paper raises it to 2.0 for Experts Choose."),
      f("model", "router/batch_prioritized", "Router", "Batch prioritized routing", K::Bool, 0, 0,
        "Tokens Choose: the most confident tokens claim expert slots first, instead of the first tokens in the text.", true),
      f("model", "router/min_capacity", "Router", "Minimum capacity", K::Int, 0, 1000000,
        "Each expert always has at least this many slots per group.", true),
      f("model", "router/max_group_size", "Router", "Group size", K::Int, 1, 1000000,
        "Tokens are routed in groups of at most this many; capacity is per group.", true),
      f("model", "router/jitter", "Router", "Router jitter", K::Real, 0, 1,
        "Multiplies router inputs by random noise in [1-j, 1+j] while training, to explore other experts.", true),
      f("model", "router/load_balancing_weight", "Router", "Load-balancing loss weight", K::Real, 0, 10,
        "Tokens Choose: an auxiliary loss that pushes the router to spread tokens evenly over the experts.", true),
      f("model", "router/z_loss_weight", "Router", "Router z-loss weight", K::Real, 0, 10,
        "Keeps router logits small, which the paper finds important for stable training.", true),
      f("model", "router/hash_table", "Router", "Hash table", K::Choice, 0, 0,
        "Hash router: a random expert per token id, or one that balances the corpus's token frequencies over the "
        "experts (built when training starts, kept in the checkpoints).",
        true, {"random", "balanced"}),
      f("model", "router/precision", "Router", "Router precision", K::Choice, 0, 0,
        "float32 (the default, more accurate) or bfloat16, the reference code's router arithmetic, for exact "
        "comparisons with it: coarser probabilities make ties, which go to the lower expert or the earlier token.",
        true, {"float32", "bfloat16"}),
      // --- regularisation ---
      f("model", "dropout", "Regularisation", "Dropout", K::Real, 0, 0.9,
        "Randomly zeroes this share of activations while training, so the model does not memorise.", true),
      f("model", "init_std", "Regularisation", "Init std", K::Real, 1e-6, 1,
        "Standard deviation of the random initial weights.", true),
      f("model", "layer_norm_eps", "Regularisation", "LayerNorm epsilon", K::Real, 1e-15, 1e-2,
        "Added to the variance in layer normalisation, to avoid dividing by zero.", true),
      // --- training: data ---
      f("training", "task", "Data", "Task", K::Choice, 0, 0,
        "pretrain: masked-language modelling + next-sentence prediction on a corpus; otherwise fine-tune on a classification task.",
        false, {}),
      f("training", "corpus", "Data", "Corpus", K::Text, 0, 0,
        "Pre-training text: 'wordnet' (the default, installed with the wordnet-base package) or a UTF-8 file or folder "
        "with one sentence per line and blank lines between documents."),
      only(f("training", "task_dir", "Data", "Task folder", K::Text, 0, 0,
        "Fine-tuning on GLUE/SuperGLUE: the folder with the task's train and dev files (not needed for wordnet-lexname).", true), ConfigField::EncoderOnly),
      f("training", "tokenizer", "Data", "Tokenizer file", K::Text, 0, 0,
        "A SentencePiece .model file; empty trains (once) and reuses one for the corpus.", true),
      f("training", "seq_len", "Data", "Sequence length", K::Int, 0, 8192,
        "Tokens per example; 0 uses the model's maximum.", true),
      only(f("training", "max_predictions", "Data", "Masked tokens per example", K::Int, 0, 8192,
        "How many tokens per example are hidden for the model to predict; 0: 15% of the length, at most 80.", true), ConfigField::EncoderOnly),
      // --- training: optimisation ---
      f("training", "steps", "Optimisation", "Steps", K::Int, 1, 100000000, "How many optimizer updates the run makes."),
      f("training", "batch_size", "Optimisation", "Batch size", K::Int, 1, 65536, "Examples per update."),
      f("training", "learning_rate", "Optimisation", "Learning rate", K::Real, 1e-8, 1,
        "The peak step size of AdamW. Too large and training diverges; too small and it barely moves."),
      f("training", "warmup_steps", "Optimisation", "Warm-up steps", K::Int, -1, 100000000,
        "Steps over which the learning rate rises linearly from zero; -1 uses 10% of the steps."),
      f("training", "accumulation", "Optimisation", "Gradient accumulation", K::Int, 1, 4096,
        "Micro-batches summed into one update: a larger effective batch with the same memory.", true),
      f("training", "weight_decay", "Optimisation", "Weight decay", K::Real, 0, 1,
        "AdamW's decay of weights towards zero (not applied to biases and norms).", true),
      f("training", "adam_beta1", "Optimisation", "Adam beta1", K::Real, 0, 0.999999, "Momentum of the gradient average.", true),
      f("training", "adam_beta2", "Optimisation", "Adam beta2", K::Real, 0, 0.999999999, "Momentum of the squared-gradient average.", true),
      f("training", "adam_epsilon", "Optimisation", "Adam epsilon", K::Real, 1e-12, 1, "Added to the denominator for numerical safety.", true),
      f("training", "clip_norm", "Optimisation", "Gradient clipping", K::Real, 0, 1000,
        "Gradients are scaled down when their total norm exceeds this; 0 turns clipping off.", true),
      only(f("training", "expert_dropout", "Optimisation", "Fine-tuning expert dropout", K::Real, -1, 0.9,
        "Fine-tuning: overrides the model's expert dropout (the paper uses 0.2); -1 keeps it.", true), ConfigField::EncoderOnly),
      f("training", "seed", "Optimisation", "Seed", K::Int, 0, 2147483647,
        "Fixes initialisation and data order: the same seed gives the same run."),
      // --- training: hardware ---
      f("training", "device", "Hardware", "Device", K::Choice, 0, 0,
        "Where the run trains: the CPU or one GPU (each listed with its name and memory); auto takes the first GPU "
        "when LibTorch sees one, else the CPU.", false, {"auto", "cpu", "cuda"}),
      f("training", "bf16", "Hardware", "bf16 on GPU", K::Bool, 0, 0,
        "On a GPU, compute in bfloat16 (routers and losses stay float32): about twice as fast.", true),
      f("training", "threads", "Hardware", "CPU threads", K::Int, 0, 1024, "Threads LibTorch uses on the CPU; 0: its default.", true),
      // --- training: monitoring ---
      f("training", "eval_every", "Monitoring", "Evaluate every", K::Int, 0, 100000000,
        "Steps between evaluations on held-out data; 0: only at the end."),
      f("training", "snapshot_every", "Monitoring", "Snapshot every", K::Int, 0, 100000000,
        "Steps between telemetry snapshots (routing, capacity, mixing matrices) for the views; 0: none."),
      f("training", "checkpoint_every", "Monitoring", "Checkpoint every", K::Int, 0, 100000000,
        "Steps between checkpoints (resume and the playground use them); one is always written at the end.", true),
      f("training", "keep_checkpoints", "Monitoring", "Checkpoints kept", K::Int, 1, 1000, "Older checkpoints are deleted.", true),
      f("training", "eval_batches", "Monitoring", "Eval batches", K::Int, 1, 100000, "Batches per periodic evaluation.", true),
      f("training", "probe_text", "Monitoring", "Probe sentence", K::Text, 0, 0,
        "The sentence routed at every snapshot, to watch which experts take its tokens."),
      // --- training: stability ---
      f("training", "spike_factor", "Stability", "Spike factor", K::Real, 1, 1000,
        "A loss above this multiple of the recent median counts as a spike.", true),
      f("training", "spike_window", "Stability", "Spike window", K::Int, 1, 100000, "Steps in that recent median.", true),
      f("training", "on_nonfinite", "Stability", "On NaN/Inf", K::Choice, 0, 0,
        "What to do when the loss or gradient is not a number: stop the run (diverged), skip the update, or continue.", true,
        {"stop", "skip", "continue"}),
      f("training", "on_spike", "Stability", "On loss spike", K::Choice, 0, 0, "What to do on a loss spike.", true,
        {"continue", "skip", "stop"}),
  };
  return fields;
}

void addPresetItems(QComboBox* combo) {
  auto* model = qobject_cast<QStandardItemModel*>(combo->model());
  auto header = [&](const QString& text) {
    combo->addItem(text);
    if (model) {
      auto* item = model->item(combo->count() - 1);
      item->setFlags(item->flags() & ~(Qt::ItemIsEnabled | Qt::ItemIsSelectable));
      QFont f = item->font();
      f.setBold(true);
      item->setFont(f);
    }
  };
  header(kEncoderHeader);
  for (const auto& n : preset_names()) {
    combo->addItem(QString::fromStdString(n));
    combo->setItemData(combo->count() - 1, QObject::tr("Encoder (masked-language model)"), Qt::ToolTipRole);
  }
  combo->insertSeparator(combo->count());
  header(kDecoderHeader);
  for (const auto& n : lm_preset_names()) {
    const QString name = QString::fromStdString(n);
    combo->addItem(name);
    combo->setItemData(combo->count() - 1,
                       name == "smlp-learned-demo"
                           ? QObject::tr("Decoder language model whose learned sMoE reads future tokens (teaching only)")
                           : QObject::tr("Decoder language model (next-token prediction)"),
                       Qt::ToolTipRole);
  }
}

bool isPresetHeader(const QString& text) { return text == kEncoderHeader || text == kDecoderHeader; }


}  // namespace smx::app
