// The collectives a distributed run uses, on PyTorch's c10d: a TCPStore for
// the rendezvous (hosted by rank 0) and a Gloo process group for the tensors.
// Every collective names what it was doing; when one fails (a rank died, or
// stayed silent past the timeout) the error says which ranks stopped answering.
// c10d and Gloo headers stay in process_group.cpp.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "model/dist/dist_options.h"

namespace smx::dist {

/// A collective failed or the rendezvous did not complete: the run cannot go on.
struct DistError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class ProcessGroup {
 public:
  /// Joins the run's other ranks; waits up to options.timeout_seconds for all of them.
  static std::unique_ptr<ProcessGroup> connect(const DistOptions& options);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const;
  int size() const;
  const DistOptions& options() const;

  /// In place, on every rank: the elementwise sum (or maximum) over the ranks.
  void all_reduce_sum(torch::Tensor& t, const std::string& what);
  void all_reduce_max(torch::Tensor& t, const std::string& what);
  /// In place: every rank ends with root's values (same shape and dtype on every rank).
  void broadcast(torch::Tensor& t, int root, const std::string& what);
  /// Sends rows of `input` to each rank and receives rows from each: input_splits[r]
  /// rows go to rank r, output_splits[r] rows come from it (dim 0).
  torch::Tensor all_to_all(const torch::Tensor& input, const std::vector<int64_t>& input_splits,
                           const std::vector<int64_t>& output_splits, const std::string& what);
  void barrier(const std::string& what);
  /// A process group of some of the ranks, `ranks` in this group's numbering (every listed rank must
  /// call this with the same list and name, and only they). Its messages name ranks of the whole run.
  std::unique_ptr<ProcessGroup> subgroup(const std::vector<int>& ranks, const std::string& name);

  /// Bytes shared through the rendezvous store: small things (a run's config, a tokenizer).
  void publish(const std::string& key, const std::string& bytes);
  /// Waits (up to the timeout) for a key another rank publishes.
  std::string fetch(const std::string& key);
  /// A file's bytes from `root` to every rank, as a collective (any size).
  std::string broadcast_bytes(const std::string& bytes, int root, const std::string& what);

 private:
  struct Impl;
  explicit ProcessGroup(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  [[noreturn]] void fail(const std::string& what, const std::exception& e);
  /// op: a c10d::ReduceOp (kept out of this header with the rest of c10d).
  void all_reduce(torch::Tensor& t, int op, const std::string& what);
};

/// Averages gradients over the ranks once per optimizer step through one
/// persistent flat buffer (allocating it each step costs more than the reduce).
class GradientAverager {
 public:
  /// divisor: what the sum over the group's ranks is divided by (default: their number). Expert
  /// shards sum over their replicas and divide by all the ranks (each rank saw 1/N of the batch).
  GradientAverager(std::vector<torch::Tensor> parameters, ProcessGroup& group, double divisor = 0);
  /// Every parameter's grad becomes the sum over the ranks / divisor (a missing grad counts as zeros).
  void average(const std::string& what = "gradient all-reduce");

 private:
  std::vector<torch::Tensor> parameters_;
  ProcessGroup& group_;
  double divisor_;
  torch::Tensor flat_;
};

/// Rank 0's parameters and buffers to every rank (same module layout everywhere).
void broadcast_module(torch::nn::Module& module, ProcessGroup& group);

}  // namespace smx::dist
