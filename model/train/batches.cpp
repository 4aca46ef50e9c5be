#include "model/train/batches.h"

#include <algorithm>
#include <numeric>
#include <random>

namespace smx {

LmBatch make_lm_batch(const text::LmData& data, text::Split split, uint64_t index, int64_t batch_size) {
  const int64_t S = data.options().seq_len;
  auto ids = torch::empty({batch_size, S}, torch::kLong);  // [B, S]
  auto* pi = ids.data_ptr<int64_t>();
  for (int64_t b = 0; b < batch_size; ++b) {
    const auto w = data.window(split, index * uint64_t(batch_size) + uint64_t(b));
    for (int64_t s = 0; s < S; ++s) pi[b * S + s] = w[size_t(s)];
  }
  return {ids, {}};
}

PretrainBatch make_pretrain_batch(const text::PretrainingData& data, text::Split split, uint64_t index,
                                  int64_t batch_size) {
  const int64_t S = data.options().seq_len, P = data.options().max_predictions;
  auto ids = torch::empty({batch_size, S}, torch::kLong);
  auto types = torch::empty({batch_size, S}, torch::kLong);
  auto mask = torch::empty({batch_size, S}, torch::kLong);
  auto positions = torch::empty({batch_size, P}, torch::kLong);
  auto labels = torch::empty({batch_size, P}, torch::kLong);
  auto nsp = torch::empty({batch_size}, torch::kLong);
  auto* pi = ids.data_ptr<int64_t>();
  auto* pt = types.data_ptr<int64_t>();
  auto* pm = mask.data_ptr<int64_t>();
  auto* pp = positions.data_ptr<int64_t>();
  auto* pl = labels.data_ptr<int64_t>();
  for (int64_t b = 0; b < batch_size; ++b) {
    const auto ex = data.example(split, index * batch_size + b);
    for (int64_t s = 0; s < S; ++s) {
      pi[b * S + s] = ex.ids[s];
      pt[b * S + s] = ex.segments[s];
      pm[b * S + s] = s < ex.length ? 1 : 0;
    }
    for (int64_t p = 0; p < P; ++p) {
      pp[b * P + p] = ex.mlm_positions[p];
      pl[b * P + p] = ex.mlm_labels[p];
    }
    nsp[b] = ex.nsp_label;
  }
  return PretrainBatch{ids, types, mask, positions, labels, nsp};
}

std::vector<EncodedExample> encode_task_examples(const std::vector<data::TaskExample>& examples,
                                                 const text::Tokenizer& tokenizer, int64_t seq_len) {
  std::vector<EncodedExample> out;
  out.reserve(examples.size());
  for (const auto& ex : examples) {
    const size_t budget = static_cast<size_t>(seq_len) - (ex.text_b.empty() ? 2 : 3);  // [CLS] a [SEP] (b [SEP])
    auto a = tokenizer.encode(ex.text_a);
    auto b = ex.text_b.empty() ? std::vector<int32_t>{} : tokenizer.encode(ex.text_b);
    while (a.size() + b.size() > budget) (a.size() >= b.size() ? a : b).pop_back();  // longest first
    EncodedExample e;
    e.ids.push_back(text::Tokenizer::kCls);
    e.ids.insert(e.ids.end(), a.begin(), a.end());
    e.ids.push_back(text::Tokenizer::kSep);
    e.segments.assign(e.ids.size(), 0);
    if (!ex.text_b.empty()) {
      e.ids.insert(e.ids.end(), b.begin(), b.end());
      e.ids.push_back(text::Tokenizer::kSep);
      e.segments.resize(e.ids.size(), 1);
    }
    e.label = ex.label;
    e.target = static_cast<float>(ex.target);
    out.push_back(std::move(e));
  }
  return out;
}

TaskBatch TaskBatch::to(const torch::Device& device) const {
  return TaskBatch{ids.to(device), types.to(device), mask.to(device), labels.to(device), targets.to(device)};
}

TaskBatch make_task_batch(const std::vector<EncodedExample>& examples, const std::vector<size_t>& rows,
                          int64_t seq_len) {
  const int64_t B = static_cast<int64_t>(rows.size());
  auto ids = torch::zeros({B, seq_len}, torch::kLong);
  auto types = torch::zeros({B, seq_len}, torch::kLong);
  auto mask = torch::zeros({B, seq_len}, torch::kLong);
  auto labels = torch::zeros({B}, torch::kLong);
  auto targets = torch::zeros({B}, torch::kFloat);
  auto* pi = ids.data_ptr<int64_t>();
  auto* pt = types.data_ptr<int64_t>();
  auto* pm = mask.data_ptr<int64_t>();
  for (int64_t b = 0; b < B; ++b) {
    const auto& ex = examples[rows[b]];
    const int64_t n = std::min<int64_t>(seq_len, static_cast<int64_t>(ex.ids.size()));
    for (int64_t s = 0; s < n; ++s) {
      pi[b * seq_len + s] = ex.ids[s];
      pt[b * seq_len + s] = ex.segments[s];
      pm[b * seq_len + s] = 1;
    }
    labels[b] = std::max(ex.label, 0);
    targets[b] = ex.target;
  }
  return TaskBatch{ids, types, mask, labels, targets};
}

std::vector<size_t> EpochShuffle::rows(uint64_t batch_index, int64_t batch_size) {
  std::lock_guard lock(mutex_);
  std::vector<size_t> rows;
  rows.reserve(batch_size);
  for (int64_t b = 0; b < batch_size; ++b) {
    const uint64_t position = batch_index * batch_size + b;
    const uint64_t epoch = position / n_;
    if (epoch != epoch_) {
      order_.resize(n_);
      std::iota(order_.begin(), order_.end(), size_t{0});
      std::mt19937_64 rng(seed_ * 0x9E3779B97F4A7C15ULL + epoch + 1);
      std::shuffle(order_.begin(), order_.end(), rng);
      epoch_ = epoch;
    }
    rows.push_back(order_[position % n_]);
  }
  return rows;
}

namespace {
torch::Tensor rows_or_none(const torch::Tensor& t, int64_t begin, int64_t n) {
  return t.defined() ? t.narrow(0, begin, n) : t;
}
}  // namespace

PretrainBatch rows_of(const PretrainBatch& b, int64_t begin, int64_t n) {
  PretrainBatch r;
  r.ids = rows_or_none(b.ids, begin, n);
  r.types = rows_or_none(b.types, begin, n);
  r.mask = rows_or_none(b.mask, begin, n);
  r.mlm_positions = rows_or_none(b.mlm_positions, begin, n);
  r.mlm_labels = rows_or_none(b.mlm_labels, begin, n);
  r.nsp_labels = rows_or_none(b.nsp_labels, begin, n);
  return r;
}

LmBatch rows_of(const LmBatch& b, int64_t begin, int64_t n) {
  LmBatch r;
  r.ids = rows_or_none(b.ids, begin, n);
  r.loss_mask = rows_or_none(b.loss_mask, begin, n);
  return r;
}

TaskBatch rows_of(const TaskBatch& b, int64_t begin, int64_t n) {
  TaskBatch r;
  r.ids = rows_or_none(b.ids, begin, n);
  r.types = rows_or_none(b.types, begin, n);
  r.mask = rows_or_none(b.mask, begin, n);
  r.labels = rows_or_none(b.labels, begin, n);
  r.targets = rows_or_none(b.targets, begin, n);
  return r;
}

}  // namespace smx
