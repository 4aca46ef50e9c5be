// Benchmark loop; see bench.h. Each timed step ends with a device
// synchronisation so that the wall time covers the queued GPU work.
#include "model/bench/bench.h"

#include "model/nn/decoder.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <fstream>
#include <unordered_map>
#include <optional>
#include <set>
#include <string_view>

#include <ATen/record_function.h>
#include <torch/csrc/autograd/profiler_kineto.h>

#include "model/config/cost.h"
#include "model/core/compat.h"
#include "model/nn/init.h"
#include "model/nn/moe.h"

namespace smx {

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

PretrainBatch synthetic_pretrain_batch(const ModelConfig& c, int64_t B, int64_t S, int64_t P) {
  const auto i64 = torch::TensorOptions().dtype(torch::kLong);
  PretrainBatch b;
  b.ids = torch::randint(5, c.vocab_size, {B, S}, i64);            // [B, S]
  b.types = (torch::arange(S, i64) >= S / 2).to(torch::kLong).expand({B, S}).contiguous();
  b.mask = torch::ones({B, S}, i64);
  P = std::min(P, S - 1);
  // P distinct positions per row, never [CLS] at 0: the top-P of random keys.
  auto keys = torch::rand({B, S - 1}, torch::kFloat);
  b.mlm_positions = std::get<1>(keys.topk(P, -1)) + 1;                  // [B, P]
  b.mlm_labels = b.ids.gather(1, b.mlm_positions);                       // [B, P]
  b.nsp_labels = torch::randint(0, 2, {B}, i64);                      // [B]
  return b;
}

std::string inference_trace_path(const std::string& train_trace_path) {
  const std::string ext = ".json";
  const bool json = train_trace_path.size() >= ext.size() &&
                    train_trace_path.compare(train_trace_path.size() - ext.size(), ext.size(), ext) == 0;
  return json ? train_trace_path.substr(0, train_trace_path.size() - ext.size()) + "-inference" + ext
              : train_trace_path + "-inference";
}

namespace {
/// Runs `step` o.profile_steps times under LibTorch's Kineto profiler and
/// writes the Chrome trace to `path`.
void profile_kineto(const torch::Device& device, const BenchOptions& o, const std::string& path,
                    const std::function<void()>& step) {
  namespace profiler = torch::autograd::profiler;
  using torch::profiler::impl::ActivityType;
  std::set<ActivityType> activities{ActivityType::CPU};
  if (device.is_cuda()) activities.insert(ActivityType::CUDA);
  const torch::profiler::impl::ProfilerConfig config(torch::profiler::impl::ProfilerState::KINETO);
  profiler::prepareProfiler(config, activities);
  profiler::enableProfiler(config, activities);
  try {
    for (int i = 0; i < o.profile_steps; ++i) step();
    compat::synchronize(device);
  } catch (...) {
    profiler::disableProfiler();
    throw;
  }
  auto result = profiler::disableProfiler();
  try {
    result->save(path);
  } catch (const c10::Error&) {
    TORCH_CHECK(false, "cannot write the trace ", path,
                ": this LibTorch was built without the Kineto profiler, which CUDA traces need (PyTorch's has it)");
  }
}

/// Times the operators the calling thread runs (CPU autograd runs backward
/// there too; the parallel loops inside an operator count as its own), with
/// LibTorch's RecordFunction callbacks. Our own rather than LibTorch's legacy
/// profiler: that one allocates its event lists as it goes, between a step's
/// large tensors, so glibc's heap fragments, every step faults in fresh
/// memory, and BERT-Base's profiled training step took 2.2x the timed one.
/// Here nothing is allocated per operator call: the trace's events go into a
/// vector reserved before the steps, and names are looked up without a copy
/// (only a name not seen before is stored).
class OperatorClock {
 public:
  explicit OperatorClock(size_t max_events) {
    events_.reserve(max_events);
    open_.reserve(256);
    ids_.reserve(4096);
  }

  void start() {
    t_clock = this;
    handle_ = at::addThreadLocalCallback(
        at::RecordFunctionCallback(&OperatorClock::on_start, &OperatorClock::on_end)
            .scopes({at::RecordScope::FUNCTION, at::RecordScope::BACKWARD_FUNCTION}));
  }
  void stop() {
    at::removeCallback(handle_);
    t_clock = nullptr;
  }
  /// Forgets what was recorded (between operators only), keeping the memory.
  void reset() {
    std::fill(self_ns_.begin(), self_ns_.end(), 0.0);
    std::fill(total_ns_.begin(), total_ns_.end(), 0.0);
    std::fill(calls_.begin(), calls_.end(), 0);
    events_.clear();
    origin_ns_ = 0;
    dropped_ = 0;
  }

  /// Per operator name, over `steps` steps, most self time first.
  std::vector<OperatorTime> per_step(int steps) const {
    std::vector<OperatorTime> ops;
    for (size_t n = 0; n < names_.size(); ++n)
      ops.push_back({names_[n], self_ns_[n] / 1e6 / steps, total_ns_[n] / 1e6 / steps, double(calls_[n]) / steps});
    std::sort(ops.begin(), ops.end(), [](const auto& a, const auto& b) { return a.self_ms > b.self_ms; });
    return ops;
  }

  /// A Chrome trace (an array of complete events) of what was recorded.
  void write_trace(const std::string& path) const {
    std::ofstream out(path);
    TORCH_CHECK(out, "cannot write the trace ", path);
    std::vector<std::string> quoted;  // the names as JSON strings
    for (const auto& n : names_) {
      std::string q;
      for (const char ch : n) {
        if (ch == '"' || ch == '\\') q += '\\';
        if (static_cast<unsigned char>(ch) >= 0x20) q += ch;
      }
      quoted.push_back(q);
    }
    out << "[\n";
    for (size_t i = 0; i < events_.size(); ++i) {
      const auto& e = events_[i];
      out << (i ? ",\n" : "") << R"({"name": ")" << quoted[e.name] << R"(", "ph": "X", "pid": "CPU", "tid": 1, "ts": )"
          << double(e.begin_ns - origin_ns_) / 1e3 << R"(, "dur": )" << double(e.end_ns - e.begin_ns) / 1e3 << "}";
    }
    out << "\n]\n";
    TORCH_CHECK(out.flush(), "cannot write the trace ", path);
  }
  size_t dropped_events() const { return dropped_; }

 private:
  struct Open {
    int32_t name;
    int64_t begin_ns, children_ns;
  };
  struct Event {
    int32_t name;
    int64_t begin_ns, end_ns;
  };
  static int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  int32_t intern(const char* name) {
    if (auto it = ids_.find(std::string_view(name)); it != ids_.end()) return it->second;
    names_.emplace_back(name);  // a deque: the views into earlier names stay valid
    self_ns_.push_back(0), total_ns_.push_back(0), calls_.push_back(0);
    return ids_.emplace(std::string_view(names_.back()), int32_t(names_.size() - 1)).first->second;
  }
  static std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction& fn) {
    if (auto* c = t_clock) {
      const int64_t t = now_ns();
      if (c->origin_ns_ == 0) c->origin_ns_ = t;
      c->open_.push_back({c->intern(fn.name()), t, 0});
    }
    return nullptr;
  }
  static void on_end(const at::RecordFunction&, at::ObserverContext*) {
    auto* c = t_clock;
    if (!c || c->open_.empty()) return;
    const int64_t t = now_ns();
    const Open o = c->open_.back();
    c->open_.pop_back();
    const int64_t ns = t - o.begin_ns;
    c->total_ns_[o.name] += double(ns);
    c->self_ns_[o.name] += double(ns - o.children_ns);
    c->calls_[o.name] += 1;
    if (!c->open_.empty()) c->open_.back().children_ns += ns;
    if (c->events_.size() < c->events_.capacity())
      c->events_.push_back({o.name, o.begin_ns, t});
    else
      ++c->dropped_;
  }

  static thread_local OperatorClock* t_clock;
  at::CallbackHandle handle_ = 0;
  std::unordered_map<std::string_view, int32_t> ids_;
  std::deque<std::string> names_;
  std::vector<double> self_ns_, total_ns_;
  std::vector<int64_t> calls_;
  std::vector<Open> open_;
  std::vector<Event> events_;
  int64_t origin_ns_ = 0;
  size_t dropped_ = 0;
};
thread_local OperatorClock* OperatorClock::t_clock = nullptr;

/// Runs `step` o.profile_steps times with every operator timed, writes the
/// Chrome trace to `path`, and returns each operator's time per step, most
/// self time first; `step_ms` gets the time per step.
std::vector<OperatorTime> profile_operators(const BenchOptions& o, const std::string& path,
                                            const std::function<void()>& step, double& step_ms) {
  OperatorClock clock(size_t(1) << 20);  // 24 MiB: ~40 profiled BERT-Base training steps
  clock.start();
  std::chrono::steady_clock::time_point t0;
  try {
    // One step unrecorded first: the clock's own memory moved the heap, and the first step after
    // that faults in fresh pages (a 94 MB gradient sum of BERT-Base took 210 ms instead of 7.5).
    step();
    clock.reset();
    t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < o.profile_steps; ++i) step();
  } catch (...) {
    clock.stop();
    throw;
  }
  step_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() /
            double(o.profile_steps);
  clock.stop();
  clock.write_trace(path);
  if (clock.dropped_events() > 0)
    TORCH_WARN("the trace ", path, " holds the first ", (size_t(1) << 20), " operator calls; ", clock.dropped_events(),
               " more were timed but left out of it");
  return clock.per_step(o.profile_steps);
}

/// Profiles `step` into `path`: Kineto on CUDA (kernels too), our operator clock on the CPU
/// (then returns the operators).
std::vector<OperatorTime> profile(const torch::Device& device, const BenchOptions& o, const std::string& path,
                                  const std::function<void()>& step, double& step_ms) {
  if (!device.is_cuda()) return profile_operators(o, path, step, step_ms);
  profile_kineto(device, o, path, step);
  step_ms = 0;
  return {};
}

int64_t peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return int64_t(u.ru_maxrss) * 1024;
}
}  // namespace

BenchResult run_bench(const ModelConfig& config, const BenchOptions& o,
                      const std::function<void(const std::string&)>& log) {
  const torch::Device device(o.device);
  TORCH_CHECK(!device.is_cuda() || torch::cuda::is_available(), "device '", o.device,
              "' asked for, but CUDA is not available in this LibTorch build or machine");
  TORCH_CHECK(o.repeats >= 1, "repeats must be >= 1, got ", o.repeats);
  TORCH_CHECK(o.warmup >= 0, "warmup must be >= 0, got ", o.warmup);
  BenchResult r;
  r.name = config.name;
  r.device = device.str();
  r.batch_size = o.batch_size > 0 ? o.batch_size : (device.is_cuda() ? 32 : 2);
  r.seq_len = o.seq_len > 0 ? o.seq_len : config.max_seq_len;
  TORCH_CHECK(r.seq_len <= config.max_seq_len, "seq_len ", r.seq_len, " exceeds max_seq_len ", config.max_seq_len);
  r.mlm_predictions = default_mlm_predictions(r.seq_len);

  if (!device.is_cuda()) {
    // Weights, gradients and AdamW's two moments (16 bytes a parameter) and the
    // activations of the batch: refuse up front rather than be killed by the OOM
    // killer half-way.
    const MemoryEstimate m = training_memory(config, CostShape{r.batch_size, r.seq_len, r.mlm_predictions, true});
    const double have = physical_memory_bytes();
    TORCH_CHECK(!(have > 0) || (o.train ? m.total() : m.weights) < 0.8 * have, config.name, " ",
                o.train ? describe(m) + " to train with batch " + std::to_string(r.batch_size) + " x " +
                              std::to_string(r.seq_len) + " tokens"
                        : "needs about " + format_bytes(m.weights) + " for its weights",
                " but this machine has ", format_bytes(have), o.train ? "; try --no-train, a smaller --batch, or a GPU" : "");
  }
  torch::manual_seed(o.seed);
  // Encoders: MLM + NSP on a synthetic pre-training batch. Decoder LMs: next-token loss on random ids.
  EncoderModel model{nullptr};
  CausalLm lm{nullptr};
  if (config.is_decoder()) lm = CausalLm(config);
  else model = EncoderModel(config);
  torch::nn::Module& module = config.is_decoder() ? static_cast<torch::nn::Module&>(*lm) : *model;
  module.to(device);
  r.params = count_parameters(module);
  CostShape shape{r.batch_size, r.seq_len, r.mlm_predictions, true};
  r.train_flops_per_example = model_cost(config, shape).train_flops;
  shape.training = false;
  r.forward_flops_per_example = model_cost(config, shape).forward_flops;

  PretrainBatch batch;
  LmBatch lm_batch;
  if (config.is_decoder()) {
    lm_batch.ids = torch::randint(config.vocab_size, {r.batch_size, r.seq_len}, torch::kLong).to(device);  // [B, S]
  } else {
    batch = synthetic_pretrain_batch(config, r.batch_size, r.seq_len, r.mlm_predictions).to(device);
    if (!o.attention_mask) batch.mask = torch::Tensor();  // no example is padded
  }
  const bool autocast = o.bf16 && device.is_cuda();
  auto timed = [&](const std::function<void()>& step) {
    compat::synchronize(device);
    const auto t0 = std::chrono::steady_clock::now();
    step();
    compat::synchronize(device);
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  };
  // Warm-up steps untimed, then `repeats` timed ones.
  auto measure = [&](const std::string& what, const std::function<void()>& step) {
    for (int i = 0; i < o.warmup; ++i) timed(step);
    std::vector<double> samples;
    for (int i = 0; i < o.repeats; ++i) {
      samples.push_back(timed(step));
      if (log) log(r.name + " " + what + " " + std::to_string(i + 1) + "/" + std::to_string(o.repeats) + ": " +
                   std::to_string(samples.back()) + " ms");
    }
    return samples;
  };

  if (o.train) {
    AdamW opt(module.parameters(), torch::optim::AdamWOptions(1e-4).betas({0.9, 0.999}).eps(1e-6).weight_decay(0.01),
              o.optimizer);
    module.train();
    compat::reset_peak_memory(device);
    std::vector<double> forward_ms, backward_ms, optimizer_ms;
    auto phase = [&](std::vector<double>& into, const std::function<void()>& run) {
      if (o.phases)
        into.push_back(timed(run));
      else
        run();
    };
    auto step = [&] {
      release_gradients(opt);
      torch::Tensor total;
      phase(forward_ms, [&] {
        std::optional<compat::CudaAutocastBf16> ac;
        if (autocast) ac.emplace();
        total = lm ? lm->lm_losses(lm_batch).total : model->pretrain_losses(batch).total;
      });
      phase(backward_ms, [&] { total.backward(); });
      phase(optimizer_ms, [&] { opt.step(); });
    };
    r.train_samples_ms = measure("train step", step);
    r.train_ms = median(r.train_samples_ms);
    r.optimizer = to_string(opt.last_kind());
    r.peak_memory_bytes = compat::peak_memory_bytes(device);
    if (!o.profile_path.empty()) r.train_operators = profile(device, o, o.profile_path, step, r.train_profiled_ms);
    if (o.phases) {
      auto timed_part = [&](const std::vector<double>& v) {  // drop the warm-up steps
        return median(std::vector<double>(v.end() - o.repeats, v.end()));
      };
      r.train_forward_ms = timed_part(forward_ms);
      r.train_backward_ms = timed_part(backward_ms);
      r.train_optimizer_ms = timed_part(optimizer_ms);
    }
  }
  if (o.inference) {
    module.eval();
    torch::NoGradGuard no_grad;
    compat::reset_peak_memory(device);
    auto step = [&] {
      std::optional<compat::CudaAutocastBf16> ac;
      if (autocast) ac.emplace();
      if (lm) {
        (void)lm->forward(lm_batch.ids).logits;  // [B, S, V]: the head runs over all positions
        return;
      }
      auto out = model->forward(batch.ids, batch.types, batch.mask);
      auto logits = model->mlm_logits(out.hidden, batch.mlm_positions);
      (void)logits;
    };
    r.infer_samples_ms = measure("inference", step);
    r.infer_ms = median(r.infer_samples_ms);
    if (!o.profile_path.empty())
      r.infer_operators = profile(device, o, inference_trace_path(o.profile_path), step, r.infer_profiled_ms);
    r.infer_peak_memory_bytes = compat::peak_memory_bytes(device);
  }
  if (!device.is_cuda()) r.peak_memory_bytes = peak_rss_bytes();
  return r;
}

namespace {
/// Median milliseconds of `step` (warm-up untimed), synchronising the device around each.
double median_ms(const torch::Device& device, const BenchOptions& o, const std::function<void()>& step) {
  std::vector<double> samples;
  for (int i = 0; i < o.warmup + o.repeats; ++i) {
    compat::synchronize(device);
    const auto t0 = std::chrono::steady_clock::now();
    step();
    compat::synchronize(device);
    if (i >= o.warmup)
      samples.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return median(samples);
}
}  // namespace

MoeBreakdown run_moe_breakdown(const ModelConfig& config, const BenchOptions& o) {
  const torch::Device device(o.device);
  TORCH_CHECK(!device.is_cuda() || torch::cuda::is_available(), "device '", o.device,
              "' asked for, but CUDA is not available in this LibTorch build or machine");
  MoeBreakdown r;
  r.name = config.name;
  for (int64_t l = 0; l < config.num_layers && r.layer < 0; ++l)
    if (config.is_moe_layer(l)) r.layer = l;
  if (r.layer < 0) return r;

  const int64_t B = o.batch_size > 0 ? o.batch_size : (device.is_cuda() ? 32 : 2);
  const int64_t S = o.seq_len > 0 ? o.seq_len : config.max_seq_len, D = config.d_model, E = config.num_experts;
  torch::manual_seed(o.seed);
  Moe moe(D, config.expert_hidden(), E, config.router, config.expert_dropout, config.init_std, config.vocab_size);
  moe->to(device);
  moe->train();
  const auto& rc = config.router;
  const int64_t G = routing_group_count(B * S, rc.max_group_size), T = B * S / G;
  const int64_t C = router_capacity(rc, T, E, rc.train_capacity_factor);
  const auto f32 = torch::TensorOptions().device(device).dtype(torch::kFloat);
  // Layer inputs come out of a LayerNorm: float32 also under autocast.
  auto x = torch::randn({B, S, D}, f32).requires_grad_(true);
  auto grad_y = torch::randn({B, S, D}, f32);
  // Token ids for a Hash router's table (the others ignore them).
  auto ids = torch::randint(config.vocab_size, {B, S}, torch::TensorOptions().device(device).dtype(torch::kLong));
  const bool autocast = o.bf16 && device.is_cuda();
  auto under_autocast = [&](const std::function<void()>& run) {
    std::optional<compat::CudaAutocastBf16> ac;
    if (autocast) ac.emplace();
    run();
  };

  r.groups = G;
  r.tokens_per_group = T;
  r.experts = E;
  r.capacity = rc.kind == RouterKind::ExpertsChoose ? std::min(C, T) : C;  // Base and Hash: the balanced load
  // Each part's backward includes the router's auxiliary losses where it has them, as in the model.
  r.layer_ms = median_ms(device, o, [&] {
    MoeImpl::Output out;
    under_autocast([&] { out = moe->forward(x, {}, ids); });
    auto aux = out.load_balancing_loss + out.z_loss;
    torch::autograd::backward({out.y, aux}, {grad_y.to(out.y.scalar_type()), torch::ones_like(aux)});
  });
  auto groups = x.detach().reshape({G, T, D});
  r.router_ms = median_ms(device, o, [&] {
    RoutingDecision d;
    under_autocast([&] { d = moe->router->forward(groups, C, {}, ids.reshape({G, T})); });
    // The combine weights carry the router's gradient.
    auto loss = d.combine.sum() + d.load_balancing_loss + d.z_loss;
    if (loss.requires_grad()) loss.backward();  // a Hash router has nothing to learn
  });
  auto buffers = torch::randn({E, G * r.capacity, D}, f32).requires_grad_(true);
  r.experts_ms = median_ms(device, o, [&] {
    torch::Tensor y;
    under_autocast([&] {
      auto h = gelu_tanh(torch::baddbmm(moe->b_in, buffers, moe->w_in));
      y = smx::dropout(torch::baddbmm(moe->b_out, h, moe->w_out), config.expert_dropout, true);
    });
    y.backward(torch::ones_like(y));
  });
  return r;
}

double measure_matmul_tflops(const BenchOptions& o, int64_t n) {
  const torch::Device device(o.device);
  TORCH_CHECK(!device.is_cuda() || torch::cuda::is_available(), "device '", o.device,
              "' asked for, but CUDA is not available in this LibTorch build or machine");
  if (n <= 0) n = device.is_cuda() ? 8192 : 1024;
  const auto dtype = device.is_cuda() && o.bf16 ? torch::kBFloat16 : torch::kFloat;
  auto opts = torch::TensorOptions().device(device).dtype(dtype);
  auto a = torch::randn({n, n}, opts), b = torch::randn({n, n}, opts);
  auto c = torch::empty({n, n}, opts);
  const double ms = median_ms(device, o, [&] { torch::matmul_out(c, a, b); });
  return ms > 0 ? 2.0 * double(n) * double(n) * double(n) / (ms * 1e-3) / 1e12 : 0;
}

}  // namespace smx
