// c10d behind the small interface of process_group.h. Facts this relies on
// (verified on Debian's LibTorch 1.13): Gloo has no AVG (sum, then divide);
// alltoall_base empties the split vectors it is given (pass copies); a killed
// peer surfaces as "Connection closed/reset by peer" within a second, a silent
// one only at the timeout.
#include "model/dist/process_group.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#include "model/config/model_config.h"

#ifndef SMX_WITH_DIST
// Built with SMX_WITH_DIST=OFF: connect() refuses, so no process group exists and the rest is never reached.
namespace smx::dist {
namespace {
[[noreturn]] void unavailable() { throw DistError("this build of smx has no distributed training"); }
}  // namespace
struct ProcessGroup::Impl {
  DistOptions options;
};
ProcessGroup::ProcessGroup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ProcessGroup::~ProcessGroup() = default;
std::unique_ptr<ProcessGroup> ProcessGroup::connect(const DistOptions&) {
  throw ConfigError("this build of smx has no distributed training (configured with SMX_WITH_DIST=OFF): "
                    "run with one process, or rebuild with libgloo-dev installed");
}
int ProcessGroup::rank() const { return impl_->options.rank; }
int ProcessGroup::size() const { return impl_->options.world_size; }
const DistOptions& ProcessGroup::options() const { return impl_->options; }
void ProcessGroup::fail(const std::string&, const std::exception&) { unavailable(); }
void ProcessGroup::all_reduce(torch::Tensor&, int, const std::string&) { unavailable(); }
void ProcessGroup::all_reduce_sum(torch::Tensor&, const std::string&) { unavailable(); }
void ProcessGroup::all_reduce_max(torch::Tensor&, const std::string&) { unavailable(); }
void ProcessGroup::broadcast(torch::Tensor&, int, const std::string&) { unavailable(); }
torch::Tensor ProcessGroup::all_to_all(const torch::Tensor&, const std::vector<int64_t>&, const std::vector<int64_t>&,
                                       const std::string&) {
  unavailable();
}
void ProcessGroup::barrier(const std::string&) { unavailable(); }
std::unique_ptr<ProcessGroup> ProcessGroup::subgroup(const std::vector<int>&, const std::string&) { unavailable(); }
void ProcessGroup::publish(const std::string&, const std::string&) { unavailable(); }
std::string ProcessGroup::fetch(const std::string&) { unavailable(); }
}  // namespace smx::dist
#else

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/version.h>

namespace smx::dist {

namespace {

std::chrono::milliseconds to_ms(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000.0));
}

std::string first_line(const std::string& s) {
  // c10 errors append a C++ backtrace after the message: the first line says what happened.
  const auto end = s.find('\n');
  return end == std::string::npos ? s : s.substr(0, end);
}

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g s", s);
  return buf;
}

}  // namespace

struct ProcessGroup::Impl {
  DistOptions options;  ///< rank and world_size in this group's numbering
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
  std::vector<int> global_ranks;  ///< this group's ranks in the whole run's numbering
  bool failed = false;
  int global(int r) const { return global_ranks.empty() ? r : global_ranks[size_t(r)]; }
};

ProcessGroup::ProcessGroup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ProcessGroup::~ProcessGroup() = default;

int ProcessGroup::rank() const { return impl_->options.rank; }
int ProcessGroup::size() const { return impl_->options.world_size; }
const DistOptions& ProcessGroup::options() const { return impl_->options; }

std::unique_ptr<ProcessGroup> ProcessGroup::connect(const DistOptions& options) {
  validate(options);
  if (options.backend == "nccl")
    throw ConfigError("backend 'nccl': this build of smx has no NCCL (Debian's LibTorch is CPU-only); use --backend gloo, "
                      "or build against a CUDA LibTorch");
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  const std::string where = options.master_addr + ":" + std::to_string(options.master_port);
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(options.master_port);
    so.isServer = options.rank == 0;
    so.numWorkers = static_cast<std::size_t>(options.world_size);
    so.waitWorkers = true;
    so.timeout = to_ms(options.timeout_seconds);
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    // LibTorch 2.4+ asks for the libuv store by default; a build without libuv (Debian 13's 2.6)
    // refuses it: use the classic store there, which every version has.
    try {
      impl->store = c10::static_intrusive_pointer_cast<c10d::Store>(c10::make_intrusive<c10d::TCPStore>(options.master_addr, so));
    } catch (const std::exception& e) {
      if (std::string(e.what()).find("libuv") == std::string::npos) throw;
      so.useLibUV = false;
      impl->store = c10::static_intrusive_pointer_cast<c10d::Store>(c10::make_intrusive<c10d::TCPStore>(options.master_addr, so));
    }
#else
    impl->store = c10::static_intrusive_pointer_cast<c10d::Store>(c10::make_intrusive<c10d::TCPStore>(options.master_addr, so));
#endif
  } catch (const std::exception& e) {
    throw DistError("rank " + std::to_string(options.rank) + ": the rendezvous at " + where + " failed" +
                    (options.rank == 0 ? " (is the port free, and did all " + std::to_string(options.world_size) +
                                             " ranks start within " + seconds_text(options.timeout_seconds) + "?)"
                                       : " (is rank 0 running and reachable there?)") +
                    ": " + first_line(e.what()));
  }
  try {
    auto go = c10d::ProcessGroupGloo::Options::create();
    go->timeout = to_ms(options.timeout_seconds);
    // Gloo binds to the address this host uses to reach the master (loopback for local runs).
    go->devices.push_back(options.master_addr == "127.0.0.1" || options.master_addr == "localhost"
                              ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                              : c10d::ProcessGroupGloo::createDefaultDevice());
    impl->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(impl->store, options.rank, options.world_size, go);
  } catch (const std::exception& e) {
    throw DistError("rank " + std::to_string(options.rank) + ": connecting the Gloo process group through " + where +
                    " failed: " + first_line(e.what()));
  }
  return std::unique_ptr<ProcessGroup>(new ProcessGroup(std::move(impl)));
}

void ProcessGroup::fail(const std::string& what, const std::exception& e) {
  // Which ranks are gone? Every rank that sees the failure checks in under a
  // key of its own; after a moment the ranks that did not are the ones that died or hang.
  const int me = rank();
  const int me_global = impl_->global(me);
  std::string lost;
  if (!impl_->failed) {
    impl_->failed = true;
    try {
      impl_->store->setTimeout(std::chrono::milliseconds(3000));
      // One key per rank, whatever collective it was in: survivors may fail in different ones.
      const std::string prefix = "failed/";
      impl_->store->set(prefix + std::to_string(me), std::vector<uint8_t>{1});
      std::this_thread::sleep_for(std::chrono::milliseconds(1500));
      for (int r = 0; r < size(); ++r)
        if (r != me && !impl_->store->check({prefix + std::to_string(r)}))
          lost += (lost.empty() ? "" : ", ") + std::to_string(impl_->global(r));
    } catch (const std::exception&) {
      lost = me_global == 0 ? "" : "0 (which hosts the rendezvous store)";
    }
  }
  std::string message = "rank " + std::to_string(me_global) + ": " + what + " failed";
  if (!lost.empty())
    message += ": rank " + lost + " stopped answering (it exited, was killed, or hung past the " +
               seconds_text(impl_->options.timeout_seconds) + " timeout)";
  message += " [" + first_line(e.what()) + "]";
  throw DistError(message);
}

void ProcessGroup::all_reduce(torch::Tensor& t, int op, const std::string& what) {
  try {
    std::vector<at::Tensor> v{t};
    impl_->gloo->allreduce(v, c10d::AllreduceOptions{static_cast<c10d::ReduceOp::RedOpType>(op)})->wait();
  } catch (const std::exception& e) {
    fail(what, e);
  }
}

void ProcessGroup::all_reduce_sum(torch::Tensor& t, const std::string& what) { all_reduce(t, c10d::ReduceOp::SUM, what); }
void ProcessGroup::all_reduce_max(torch::Tensor& t, const std::string& what) { all_reduce(t, c10d::ReduceOp::MAX, what); }

void ProcessGroup::broadcast(torch::Tensor& t, int root, const std::string& what) {
  try {
    std::vector<at::Tensor> v{t};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    impl_->gloo->broadcast(v, o)->wait();
  } catch (const std::exception& e) {
    fail(what, e);
  }
}

torch::Tensor ProcessGroup::all_to_all(const torch::Tensor& input, const std::vector<int64_t>& input_splits,
                                       const std::vector<int64_t>& output_splits, const std::string& what) {
  TORCH_CHECK(int(input_splits.size()) == size() && int(output_splits.size()) == size(),
              "all_to_all: one split per rank");
  auto shape = input.sizes().vec();
  int64_t rows = 0;
  for (auto s : output_splits) rows += s;
  shape[0] = rows;
  auto output = torch::empty(shape, input.options());
  try {
    auto in = input.contiguous();
    std::vector<int64_t> in_splits = input_splits, out_splits = output_splits;  // Gloo empties them
    impl_->gloo->alltoall_base(output, in, out_splits, in_splits)->wait();
  } catch (const std::exception& e) {
    fail(what, e);
  }
  return output;
}

std::unique_ptr<ProcessGroup> ProcessGroup::subgroup(const std::vector<int>& ranks, const std::string& name) {
  const auto it = std::find(ranks.begin(), ranks.end(), rank());
  TORCH_CHECK(it != ranks.end(), "subgroup ", name, ": rank ", rank(), " is not a member");
  auto sub = std::make_unique<Impl>();
  sub->options = impl_->options;
  sub->options.rank = int(it - ranks.begin());
  sub->options.world_size = int(ranks.size());
  for (int r : ranks) sub->global_ranks.push_back(impl_->global(r));
  sub->store = c10::make_intrusive<c10d::PrefixStore>("group/" + name, impl_->store);
  try {
    auto go = c10d::ProcessGroupGloo::Options::create();
    go->timeout = to_ms(impl_->options.timeout_seconds);
    const auto& addr = impl_->options.master_addr;
    go->devices.push_back(addr == "127.0.0.1" || addr == "localhost"
                              ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                              : c10d::ProcessGroupGloo::createDefaultDevice());
    sub->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(sub->store, sub->options.rank, sub->options.world_size, go);
  } catch (const std::exception& e) {
    fail("connecting process group '" + name + "'", e);
  }
  return std::unique_ptr<ProcessGroup>(new ProcessGroup(std::move(sub)));
}

void ProcessGroup::barrier(const std::string& what) {
  try {
    impl_->gloo->barrier()->wait();
  } catch (const std::exception& e) {
    fail(what, e);
  }
}

void ProcessGroup::publish(const std::string& key, const std::string& bytes) {
  try {
    impl_->store->set(key, std::vector<uint8_t>(bytes.begin(), bytes.end()));
  } catch (const std::exception& e) {
    fail("publishing '" + key + "'", e);
  }
}

std::string ProcessGroup::fetch(const std::string& key) {
  try {
    const auto v = impl_->store->get(key);
    return std::string(v.begin(), v.end());
  } catch (const std::exception& e) {
    fail("waiting for '" + key + "' from rank 0", e);
  }
}

}  // namespace smx::dist
#endif  // SMX_WITH_DIST

// Built on the collectives above, whichever way they are built.
namespace smx::dist {

std::string ProcessGroup::broadcast_bytes(const std::string& bytes, int root, const std::string& what) {
  auto n = torch::tensor({int64_t(rank() == root ? bytes.size() : 0)}, torch::kLong);
  broadcast(n, root, what);
  auto data = torch::empty({n.item<int64_t>()}, torch::kUInt8);
  if (rank() == root && !bytes.empty()) std::memcpy(data.data_ptr<uint8_t>(), bytes.data(), bytes.size());
  broadcast(data, root, what);
  return std::string(reinterpret_cast<const char*>(data.data_ptr<uint8_t>()), size_t(data.numel()));
}

GradientAverager::GradientAverager(std::vector<torch::Tensor> parameters, ProcessGroup& group, double divisor)
    : parameters_(std::move(parameters)), group_(group), divisor_(divisor > 0 ? divisor : double(group.size())) {
  int64_t n = 0;
  for (const auto& p : parameters_) n += p.numel();
  const auto options = parameters_.empty() ? torch::TensorOptions().dtype(torch::kFloat) : parameters_.front().options();
  flat_ = torch::zeros({n}, options.requires_grad(false));
}

void GradientAverager::average(const std::string& what) {
  torch::NoGradGuard no_grad;
  int64_t offset = 0;
  for (auto& p : parameters_) {
    auto slot = flat_.narrow(0, offset, p.numel());
    if (p.grad().defined()) slot.copy_(p.grad().reshape({-1}));
    else slot.zero_();
    offset += p.numel();
  }
  if (group_.size() > 1) group_.all_reduce_sum(flat_, what);
  flat_.div_(divisor_);
  offset = 0;
  for (auto& p : parameters_) {
    auto slot = flat_.narrow(0, offset, p.numel()).view(p.sizes());
    if (p.grad().defined()) p.mutable_grad().copy_(slot);
    else p.mutable_grad() = slot.clone();
    offset += p.numel();
  }
}

void broadcast_module(torch::nn::Module& module, ProcessGroup& group) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters()) {
    auto t = p.detach();
    group.broadcast(t, 0, "sharing rank 0's weights");
  }
  for (auto& b : module.buffers()) {
    // Gloo has no bool; a non-contiguous buffer is sent as a contiguous copy.
    auto t = b.scalar_type() == torch::kBool ? b.detach().to(torch::kUInt8) : b.detach().contiguous();
    group.broadcast(t, 0, "sharing rank 0's buffers");
    if (!t.is_same(b)) b.detach().copy_(t);
  }
}

}  // namespace smx::dist
