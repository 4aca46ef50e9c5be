// Engine checks that must also run on a GPU machine, which has LibTorch but
// no Qt: hence a plain program instead of a Qt Test. Each check runs on the
// CPU and, where LibTorch sees one, on CUDA; checks that need CUDA or a newer
// LibTorch say SKIP with the reason. Prints PASS/SKIP/FAIL per check and
// exits 1 if any failed.
//
//   smx_device_checks            all checks
//   smx_device_checks NAME...    the checks whose names contain NAME
#include <chrono>
#include <cstdio>
#include <functional>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "model/bench/bench.h"
#include "model/core/compat.h"
#include "model/inspect/runtime.h"
#include "model/nn/encoder.h"
#include "model/nn/mixing.h"
#include "model/optim/adamw.h"

using namespace smx;

namespace {

struct Skip : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void expect(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error(what);
}

std::string str(double x) {
  std::ostringstream s;
  s << x;
  return s.str();
}

void need_cuda() {
  if (!torch::cuda::is_available()) throw Skip("no CUDA device in this LibTorch build or machine");
}

std::vector<torch::Device> devices() {
  std::vector<torch::Device> d{torch::kCPU};
  if (torch::cuda::is_available()) d.emplace_back(torch::kCUDA);
  return d;
}

/// A small model of each family; "sparse-mixer" has Experts Choose MoE layers,
/// "tokens-choose" top-2 Tokens Choose with BPR.
ModelConfig small(const std::string& variant) {
  ModelConfig c = preset("demo");  // 4 layers: attention on top, 2 MoE layers
  c.vocab_size = 300;
  c.max_seq_len = 32;
  c.d_model = 64;
  c.d_ff = 128;
  c.num_heads = 4;
  c.num_experts = 4;
  c.router.min_capacity = 1;
  if (variant == "fourier") c.mixing = MixingKind::Fourier;
  if (variant == "tokens-choose") {
    c.router.kind = RouterKind::TokensChoose;
    c.router.top_k = 2;
    c.router.train_capacity_factor = 1.25;
  }
  if (variant == "bert") {
    c.attention_layers = c.num_layers;
    c.moe_layers = 0;
  }
  return c;
}

/// Bias-like tensors without weight decay, the rest with: two groups, as the trainer.
std::vector<torch::optim::OptimizerParamGroup> two_groups(EncoderModel& m) {
  std::vector<torch::Tensor> decay, no_decay;
  for (const auto& p : m->parameters()) (p.dim() <= 1 ? no_decay : decay).push_back(p);
  std::vector<torch::optim::OptimizerParamGroup> g;
  g.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(
                            torch::optim::AdamWOptions(1e-3).betas({0.9, 0.98}).eps(1e-6).weight_decay(0.01)));
  g.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(
                               torch::optim::AdamWOptions(1e-3).betas({0.9, 0.98}).eps(1e-6).weight_decay(0)));
  return g;
}

/// The parameters after `steps` AdamW steps with fixed random gradients, the
/// optimizer saved and loaded into a fresh one after `reload_after` steps (-1: never).
std::vector<torch::Tensor> adamw_run(AdamWKind kind, const torch::Device& device, int steps, int reload_after = -1) {
  torch::manual_seed(11);
  EncoderModel m(small("sparse-mixer"));
  m->to(device);
  auto opt = std::make_unique<AdamW>(two_groups(m), torch::optim::AdamWOptions(1e-3), kind);
  for (int s = 0; s < steps; ++s) {
    if (s == reload_after) {
      torch::serialize::OutputArchive out;
      opt->save(out);
      std::ostringstream bytes;
      out.save_to(bytes);
      opt = std::make_unique<AdamW>(two_groups(m), torch::optim::AdamWOptions(1e-3), kind);
      torch::serialize::InputArchive in;
      std::istringstream read(bytes.str());
      in.load_from(read, device);
      opt->load(in);
    }
    torch::manual_seed(100 + s);
    for (auto& p : m->parameters()) p.mutable_grad() = torch::randn(p.sizes()).to(device);
    opt->step();
  }
  std::vector<torch::Tensor> params;
  for (const auto& p : m->parameters()) params.push_back(p.detach().to(torch::kCPU));
  return params;
}

double max_difference(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  expect(a.size() == b.size(), "different parameter counts");
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, (a[i] - b[i]).abs().max().item<double>());
  return d;
}

void adamw_matches(AdamWKind kind, const torch::Device& device, double tolerance) {
  const auto reference = adamw_run(AdamWKind::Reference, device, 5);
  const double d = max_difference(adamw_run(kind, device, 5), reference);
  expect(d <= tolerance, to_string(kind) + " AdamW on " + device.str() + " differs from LibTorch's by " + str(d));
  const double reloaded = max_difference(adamw_run(kind, device, 5, /*reload_after=*/2), reference);
  expect(reloaded <= tolerance, to_string(kind) + " AdamW on " + device.str() + " after a save and load differs by " +
                                    str(reloaded));
}

/// Loss of a fixed batch, no dropout, on `device`.
double eval_loss(const ModelConfig& c, const torch::Device& device) {
  torch::manual_seed(3);
  EncoderModel m(c);
  m->eval();
  m->to(device);
  torch::manual_seed(4);
  auto b = synthetic_pretrain_batch(c, 4, c.max_seq_len, 5).to(device);
  torch::NoGradGuard no_grad;
  return m->pretrain_losses(b).total.item<double>();
}

/// One bf16 (CUDA) training step with `opt`; returns the loss tensor.
torch::Tensor train_step(EncoderModel& m, torch::optim::Optimizer& opt, const PretrainBatch& b, bool bf16) {
  opt.zero_grad();
  torch::Tensor total;
  {
    std::optional<compat::CudaAutocastBf16> ac;
    if (bf16) ac.emplace();
    total = m->pretrain_losses(b).total;
  }
  total.backward();
  opt.step();
  return total;
}

struct Check {
  std::string name;
  std::function<void()> run;
};

const std::vector<Check>& checks() {
  static const std::vector<Check> all = {
      {"adamw_foreach_matches_libtorch",
       [] {
         for (const auto& d : devices()) adamw_matches(AdamWKind::Foreach, d, d.is_cuda() ? 1e-6 : 0.0);
       }},
      {"adamw_fused_matches_libtorch",
       [] {
         // CPU: the one-pass kernel, written to round as LibTorch's kernels do (bit-identical with
         // LibTorch 1.13 here); a last-bit difference elsewhere stays far below one update (lr 1e-3).
         adamw_matches(AdamWKind::Fused, torch::kCPU, 1e-6);
         if (!torch::cuda::is_available()) return;
         if (!fused_adamw_available()) throw Skip("CPU passed; the CUDA fused kernel needs LibTorch >= 2.1");
         adamw_matches(AdamWKind::Fused, torch::kCUDA, 1e-6);
       }},
      {"adamw_fused_on_cpu_takes_what_it_can",
       [] {
         // Float32 in one pass; a double parameter makes auto fall back to the multi-tensor
         // kernels, and an explicit fused ask is refused with a message.
         auto run = [](torch::Dtype dtype, AdamWKind kind) {
           torch::manual_seed(1);
           auto w = torch::randn({5, 7}, torch::TensorOptions().dtype(dtype)).requires_grad_(true);
           AdamW opt({w}, torch::optim::AdamWOptions(1e-2).weight_decay(0.1), kind);
           auto before = w.detach().clone();
           (w * w).sum().backward();
           opt.step();
           expect(!torch::equal(before, w.detach()), "AdamW did not move the parameter");
           return opt.last_kind();
         };
         expect(run(torch::kFloat, AdamWKind::Auto) == AdamWKind::Fused, "auto on float32 CPU is not fused");
         expect(run(torch::kDouble, AdamWKind::Auto) == AdamWKind::Foreach, "auto on double CPU is not foreach");
         torch::manual_seed(1);
         auto w = torch::randn({5, 7}, torch::kDouble).requires_grad_(true);
         const auto before = w.detach().clone();
         AdamW opt({w}, torch::optim::AdamWOptions(1e-2), AdamWKind::Fused);
         (w * w).sum().backward();
         bool refused = false;
         try {
           opt.step();
         } catch (const c10::Error& e) {
           refused = std::string(e.what_without_backtrace()).find("contiguous float32") != std::string::npos;
         }
         expect(refused, "fused AdamW took double parameters without a message");
         expect(torch::equal(before, w.detach()), "the refused step changed the parameter");
         for (const auto& [key, state] : opt.state())
           expect(static_cast<const torch::optim::AdamWParamState&>(*state).step() == 0,
                  "the refused step was counted");
       }},
      {"released_gradients_train_as_zeroed_ones",
       [] {
         // release_gradients (backward writes fresh gradients) against LibTorch's zero_grad (adds into
         // zeros): the same training, bit for bit, while every parameter takes part.
         for (const auto& d : devices()) {
           auto c = small("sparse-mixer");
           c.dropout = c.expert_dropout = 0;
           std::vector<torch::Tensor> params[2];
           for (int released = 0; released < 2; ++released) {
             torch::manual_seed(9);
             EncoderModel m(c);
             m->to(d);
             m->train();
             AdamW opt(m->parameters(), torch::optim::AdamWOptions(3e-3));
             auto b = synthetic_pretrain_batch(c, 4, c.max_seq_len, 5).to(d);
             for (int i = 0; i < 3; ++i) {
               if (released) {
                 release_gradients(opt);
                 for (const auto& p : m->parameters()) expect(!p.grad().defined(), "a gradient was kept");
               } else {
                 opt.zero_grad();
               }
               m->pretrain_losses(b).total.backward();
               opt.step();
             }
             for (const auto& p : m->parameters()) params[released].push_back(p.detach().to(torch::kCPU));
           }
           const double diff = max_difference(params[0], params[1]);
           expect(diff == 0, "released vs zeroed gradients on " + d.str() + ": parameters differ by " + str(diff));
         }
       }},
      {"adamw_auto_is_fused",
       [] {
         for (const auto& d : devices()) {
           torch::manual_seed(1);
           auto w = torch::randn({4, 4}, torch::TensorOptions().device(d)).requires_grad_(true);
           AdamW opt({w}, torch::optim::AdamWOptions(1e-3));
           w.sum().backward();
           opt.step();
           // CPU: the one-pass kernel; CUDA: LibTorch's fused kernel where it has one.
           const auto want = !d.is_cuda() || fused_adamw_available() ? AdamWKind::Fused : AdamWKind::Foreach;
           expect(opt.last_kind() == want,
                  "auto on " + d.str() + " used " + to_string(opt.last_kind()));
         }
       }},
      {"fused_attention_matches_explicit",
       [] {
         if (!compat::kHasFusedAttention) throw Skip("scaled_dot_product_attention needs LibTorch >= 2.0");
         for (const auto& d : devices()) {
           torch::manual_seed(5);
           SelfAttention a(64, 4, 0.1, 0.02);
           a.eval();
           a.to(d);
           auto x = torch::randn({3, 16, 64}).to(d);
           auto mask = torch::ones({3, 16}, torch::kLong);
           mask.narrow(1, 12, 4).zero_();  // padded tail
           mask = mask.to(d);
           torch::NoGradGuard no_grad;
           for (const auto& m : {torch::Tensor(), mask}) {
             a.record_probabilities = false;
             auto fused = a.forward(x, m);
             a.record_probabilities = true;  // takes the explicit softmax(QK^T)V path
             auto explicit_path = a.forward(x, m);
             const double diff = (fused - explicit_path).abs().max().item<double>();
             expect(diff < 1e-4, "fused vs explicit attention on " + d.str() + (m.defined() ? " with" : " without") +
                                     " mask differ by " + str(diff));
           }
         }
       }},
      {"cuda_matches_cpu",
       [] {
         need_cuda();
         for (const char* v : {"sparse-mixer", "tokens-choose", "fourier", "bert"}) {
           auto c = small(v);
           const double cpu = eval_loss(c, torch::kCPU), gpu = eval_loss(c, torch::kCUDA);
           expect(std::abs(cpu - gpu) < 1e-3 * std::abs(cpu),
                  std::string(v) + ": loss on cpu " + str(cpu) + " vs cuda " + str(gpu));
         }
       }},
      {"cuda_bf16_training_learns",
       [] {
         need_cuda();
         for (const char* v : {"sparse-mixer", "tokens-choose", "bert"}) {
           auto c = small(v);
           c.dropout = c.expert_dropout = 0;
           torch::manual_seed(9);
           EncoderModel m(c);
           m->to(torch::kCUDA);
           m->train();
           AdamW opt(m->parameters(), torch::optim::AdamWOptions(3e-3));
           auto b = synthetic_pretrain_batch(c, 8, c.max_seq_len, 5).to(torch::kCUDA);
           const double first = train_step(m, opt, b, true).item<double>();
           double last = first;
           for (int i = 0; i < 30; ++i) last = train_step(m, opt, b, true).item<double>();
           expect(std::isfinite(last) && last < 0.7 * first,
                  std::string(v) + ": bf16 loss went from " + str(first) + " to " + str(last));
           for (const auto& [l, moe] : m->moe_layers())
             expect(moe->last_decision.logits.scalar_type() == torch::kFloat,
                    std::string(v) + ": router logits are not float32 under autocast");
           for (const auto& p : m->parameters())
             expect(p.scalar_type() == torch::kFloat && torch::isfinite(p).all().item<bool>(),
                    std::string(v) + ": a parameter is not finite float32");
         }
       }},
      {"cuda_step_has_no_host_sync",
       [] {
         need_cuda();
         // A synchronisation inside the step stalls the CPU until the GPU drains,
         // so kernels stop being queued ahead. Each phase is checked on its own
         // so that a failure names it.
         for (const char* v : {"sparse-mixer", "tokens-choose", "bert"}) {
           auto c = small(v);
           torch::manual_seed(2);
           EncoderModel m(c);
           m->to(torch::kCUDA);
           m->train();
           AdamW opt(m->parameters(), torch::optim::AdamWOptions(1e-3));
           auto b = synthetic_pretrain_batch(c, 8, c.max_seq_len, 5).to(torch::kCUDA);
           b.mask = torch::Tensor();
           train_step(m, opt, b, true);  // first step: lazy state and caches
           torch::cuda::synchronize();
           auto phase = [&](const char* name, const std::function<void()>& run) {
             try {
               compat::ForbidCudaSync forbid;
               run();
             } catch (const std::exception& e) {
               throw std::runtime_error(std::string(v) + ": " + name + " synchronises with the host: " + e.what());
             }
           };
           torch::Tensor total;
           opt.zero_grad();
           phase("forward", [&] {
             compat::CudaAutocastBf16 ac;
             total = m->pretrain_losses(b).total;
           });
           phase("backward", [&] { total.backward(); });
           phase("optimizer", [&] { opt.step(); });
           phase("inference", [&] {
             torch::NoGradGuard no_grad;
             compat::CudaAutocastBf16 ac;
             m->eval();
             auto out = m->forward(b.ids, b.types, b.mask);
             (void)m->mlm_logits(out.hidden, b.mlm_positions);
             m->train();
           });
           torch::cuda::synchronize();
         }
       }},
      {"devices_listed_and_out_of_memory_recognised",
       [] {
         // The launcher's device list names every GPU with its memory; an allocation no device can
         // serve is recognised as out of memory (the trainer's OutOfMemory path), and after the cache
         // is given back the device allocates as before.
         const auto listed = inspect::list_devices();
         expect(!listed.empty() && listed.front().id == "cpu", "the device list does not start with the CPU");
         expect(listed.size() == size_t(torch::cuda::is_available() ? torch::cuda::device_count() + 1 : 1),
                "the device list has " + std::to_string(listed.size()) + " entries");
         for (const auto& d : listed)
           expect(d.memory_bytes > 0, d.id + " has no memory size: " + inspect::describe_device(d));
         for (const auto& d : devices()) {
           const torch::Device here(inspect::resolve_device(d.is_cuda() ? "cuda" : "cpu"));
           bool refused = false;
           try {
             (void)torch::empty({int64_t(1) << 50}, torch::TensorOptions().dtype(torch::kFloat).device(here));
           } catch (const std::exception& e) {
             refused = true;
             expect(compat::is_out_of_memory(e), "an impossible allocation on " + here.str() +
                                                      " was not recognised as out of memory: " + e.what());
           }
           expect(refused, "an impossible allocation on " + here.str() + " succeeded");
           compat::release_cached_memory();
           auto t = torch::ones({1024, 1024}, torch::TensorOptions().device(here));
           expect(t.sum().item<double>() == 1024.0 * 1024.0, "allocation after out of memory on " + here.str());
           if (here.is_cuda()) expect(compat::allocated_memory_bytes(here) >= int64_t(4) << 20, "no allocated bytes on CUDA");
         }
       }},
      {"bench_reports_memory_and_breakdown",
       [] {
         for (const auto& d : devices()) {
           BenchOptions o;
           o.device = d.str();
           o.batch_size = 4;
           o.seq_len = 32;
           o.repeats = 2;
           auto c = small("sparse-mixer");
           auto r = run_bench(c, o);
           expect(r.train_ms > 0 && r.infer_ms > 0, "no timings on " + d.str());
           expect(r.peak_memory_bytes > 0, "no peak memory on " + d.str());
           expect(d.is_cuda() ? r.infer_peak_memory_bytes > 0 : r.infer_peak_memory_bytes == -1,
                  "inference peak memory on " + d.str() + ": " + str(double(r.infer_peak_memory_bytes)));
           auto moe = run_moe_breakdown(c, o);
           expect(moe.layer >= 0 && moe.layer_ms > 0 && moe.router_ms > 0 && moe.experts_ms > 0,
                  "MoE breakdown on " + d.str() + " has no times");
           // The parts are timed separately, so on a busy machine the router alone may take longer
           // than the layer did: only what follows from the definitions is checked, never timings.
           expect(moe.router_share() > 0 && moe.dispatch_share() >= 0 && moe.dispatch_ms() <= moe.layer_ms,
                  "MoE shares out of range");
           expect(run_moe_breakdown(small("bert"), o).layer == -1, "a model without MoE has a breakdown");
           expect(measure_matmul_tflops(o, 256) > 0, "no matmul throughput on " + d.str());
         }
       }},
  };
  return all;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> filters(argv + 1, argv + argc);
  std::printf("LibTorch %s, CUDA %s\n", TORCH_VERSION, torch::cuda::is_available() ? "available" : "not available");
  int failed = 0, passed = 0, skipped = 0;
  for (const auto& c : checks()) {
    bool wanted = filters.empty();
    for (const auto& f : filters) wanted |= c.name.find(f) != std::string::npos;
    if (!wanted) continue;
    const auto t0 = std::chrono::steady_clock::now();
    std::string outcome = "PASS", detail;
    try {
      c.run();
      ++passed;
    } catch (const Skip& e) {
      outcome = "SKIP";
      detail = e.what();
      ++skipped;
    } catch (const std::exception& e) {
      outcome = "FAIL";
      detail = e.what();
      ++failed;
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%s %s (%.1f s)%s%s\n", outcome.c_str(), c.name.c_str(), s, detail.empty() ? "" : ": ",
                detail.c_str());
    std::fflush(stdout);
  }
  std::printf("%d passed, %d skipped, %d failed\n", passed, skipped, failed);
  return failed ? 1 : 0;
}
