// Batches for the trainer: pre-training batches from PretrainingData,
// fine-tuning batches from encoded task examples, and a prefetcher that
// builds the next batches on worker threads while the model trains.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include <torch/torch.h>

#include "model/nn/decoder.h"
#include "model/nn/encoder.h"
#include "model/data/tasks.h"
#include "model/text/lm_data.h"
#include "model/text/pretraining_data.h"
#include "model/text/tokenizer.h"

namespace smx {

/// Batch `index` of the split: examples index*B .. index*B+B-1.
PretrainBatch make_pretrain_batch(const text::PretrainingData& data, text::Split split, uint64_t index,
                                  int64_t batch_size);

/// LM batch `index` of the split: windows index*B .. index*B+B-1, [B, seq_len], no padding.
LmBatch make_lm_batch(const text::LmData& data, text::Split split, uint64_t index, int64_t batch_size);

/// A fine-tuning example, tokenized: [CLS] a [SEP] (b [SEP]) truncated longest-first.
struct EncodedExample {
  std::vector<int32_t> ids, segments;
  int label = -1;
  float target = 0;
};

/// Tokenizes task examples, truncating the longer text first to fit seq_len.
std::vector<EncodedExample> encode_task_examples(const std::vector<data::TaskExample>& examples,
                                                 const text::Tokenizer& tokenizer, int64_t seq_len);

struct TaskBatch {
  torch::Tensor ids, types, mask;  ///< [B, S]
  torch::Tensor labels;            ///< [B] int64 (classification)
  torch::Tensor targets;           ///< [B] float (regression)
  TaskBatch to(const torch::Device& device) const;
};

/// Examples `rows` of `examples`, padded to seq_len.
TaskBatch make_task_batch(const std::vector<EncodedExample>& examples, const std::vector<size_t>& rows,
                          int64_t seq_len);

/// Rows [begin, begin + n) of a batch: a distributed rank's share.
PretrainBatch rows_of(const PretrainBatch& b, int64_t begin, int64_t n);
LmBatch rows_of(const LmBatch& b, int64_t begin, int64_t n);
TaskBatch rows_of(const TaskBatch& b, int64_t begin, int64_t n);

/// Rows of fine-tuning batches: epochs of a seeded shuffle, so batch `index`
/// is a pure function of (seed, index) and a resumed run sees the same
/// batches. The current epoch's permutation is kept, so a batch costs its size,
/// not a reshuffle of the whole task. Thread-safe.
class EpochShuffle {
 public:
  EpochShuffle(size_t num_examples, uint64_t seed) : n_(num_examples), seed_(seed) {}
  std::vector<size_t> rows(uint64_t batch_index, int64_t batch_size);

 private:
  size_t n_;
  uint64_t seed_;
  uint64_t epoch_ = UINT64_MAX;
  std::vector<size_t> order_;
  std::mutex mutex_;
};

/// Builds batches `next, next+1, ...` ahead on `workers` threads, at most
/// `depth` waiting. get(i) must be called with consecutive indices.
template <typename Batch>
class Prefetcher {
 public:
  Prefetcher(std::function<Batch(uint64_t)> make, uint64_t first, int workers = 1, int depth = 4)
      : make_(std::move(make)), next_to_make_(first), next_to_take_(first), depth_(depth) {
    for (int w = 0; w < workers; ++w) threads_.emplace_back([this] { work(); });
  }
  ~Prefetcher() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  Batch get(uint64_t index) {
    std::unique_lock lock(mutex_);
    if (index != next_to_take_) throw std::logic_error("Prefetcher::get out of order");
    cv_.wait(lock, [&] { return ready_.count(index) || error_; });
    if (error_) std::rethrow_exception(error_);
    Batch b = std::move(ready_[index]);
    ready_.erase(index);
    ++next_to_take_;
    cv_.notify_all();
    return b;
  }

 private:
  void work() {
    for (;;) {
      uint64_t index;
      {
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [&] { return stopping_ || next_to_make_ < next_to_take_ + depth_; });
        if (stopping_) return;
        index = next_to_make_++;
      }
      try {
        Batch b = make_(index);
        std::lock_guard lock(mutex_);
        ready_.emplace(index, std::move(b));
      } catch (...) {
        std::lock_guard lock(mutex_);
        error_ = std::current_exception();
      }
      cv_.notify_all();
    }
  }
  std::function<Batch(uint64_t)> make_;
  uint64_t next_to_make_, next_to_take_;
  uint64_t depth_;
  std::map<uint64_t, Batch> ready_;
  std::exception_ptr error_;
  bool stopping_ = false;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::thread> threads_;
};

}  // namespace smx
