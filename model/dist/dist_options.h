// How one process of a distributed run finds the others: its rank, how many
// ranks there are, where rank 0's rendezvous store listens, the backend and
// the collective timeout. No LibTorch: the CLI and the trainer's options
// carry it. A run with world_size 1 never touches c10d.
#pragma once

#include <cstdint>
#include <string>

namespace smx::dist {

struct DistOptions {
  int rank = 0;
  int world_size = 1;
  /// Processes of this run on this machine (threads per process default to CPUs / this).
  int local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  /// "gloo" (CPU tensors), "nccl" (CUDA builds with NCCL), or "auto": by device.
  std::string backend = "auto";
  /// Expert parallelism: each MoE layer's experts are spread over groups of this many consecutive
  /// ranks (1: every rank holds all experts). Divides world_size and every layer's expert count.
  int expert_parallel = 1;
  /// How long a collective (or the rendezvous) waits for a silent rank before the run ends.
  double timeout_seconds = 600;

  /// Testing: rank `fault_rank` kills itself ("kill") or stops answering ("hang") before step `fault_step`.
  int fault_rank = -1;
  int64_t fault_step = -1;
  std::string fault_kind;

  bool enabled() const { return world_size > 1; }
};

/// The usual torch.distributed variables (RANK, WORLD_SIZE, LOCAL_WORLD_SIZE,
/// MASTER_ADDR, MASTER_PORT) over `defaults`; a malformed value throws
/// ConfigError naming the variable.
DistOptions dist_options_from_environment(DistOptions defaults = {});

/// Throws ConfigError when the options cannot describe a run (rank outside
/// 0..world_size-1, a port outside 1..65535, an unknown backend, ...).
void validate(const DistOptions& options);

}  // namespace smx::dist
