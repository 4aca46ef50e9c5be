// Multi-tensor and fused AdamW; see adamw.h. The arithmetic follows
// LibTorch's AdamW::step (weight decay by p *= 1 - lr*wd, then the Adam
// update with bias corrections), so the Foreach path gives the same numbers.
#include "model/optim/adamw.h"
#include "model/optim/adamw_cpu.h"
#include "model/optim/state_key.h"

#include <cmath>
#include <stdexcept>

#include "model/core/compat.h"

namespace smx {

std::string to_string(AdamWKind kind) {
  switch (kind) {
    case AdamWKind::Auto: return "auto";
    case AdamWKind::Fused: return "fused";
    case AdamWKind::Foreach: return "foreach";
    case AdamWKind::Reference: return "reference";
  }
  return "?";
}

AdamWKind adamw_kind_from_string(const std::string& name) {
  for (auto k : {AdamWKind::Auto, AdamWKind::Fused, AdamWKind::Foreach, AdamWKind::Reference})
    if (to_string(k) == name) return k;
  throw std::invalid_argument("unknown optimizer implementation '" + name +
                              "' (use auto, fused, foreach or reference)");
}

void release_gradients(torch::optim::Optimizer& optimizer) {
  for (auto& group : optimizer.param_groups())
    for (auto& p : group.params()) p.mutable_grad() = torch::Tensor();
}

bool fused_adamw_available() { return SMX_TORCH_AT_LEAST(2, 1); }

AdamW::AdamW(std::vector<torch::optim::OptimizerParamGroup> groups, torch::optim::AdamWOptions defaults,
             AdamWKind kind)
    : torch::optim::AdamW(std::move(groups), defaults), kind_(kind) {}

AdamW::AdamW(std::vector<torch::Tensor> params, torch::optim::AdamWOptions defaults, AdamWKind kind)
    : AdamW(std::vector<torch::optim::OptimizerParamGroup>{torch::optim::OptimizerParamGroup(std::move(params))},
            defaults, kind) {}

AdamW::Lists AdamW::collect(torch::optim::OptimizerParamGroup& group) {
  using Key = std::decay_t<decltype(state_.begin()->first)>;
  Lists l;
  for (auto& p : group.params()) {
    if (!p.grad().defined()) continue;
    TORCH_CHECK(!p.grad().is_sparse(), "AdamW does not support sparse gradients");
    const Key key = optimizer_state_key<Key>(p);
    auto it = state_.find(key);
    if (it == state_.end()) {
      auto s = std::make_unique<torch::optim::AdamWParamState>();
      s->step(0);
      s->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
      s->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
      it = state_.insert({key, std::move(s)}).first;
    }
    auto& s = static_cast<torch::optim::AdamWParamState&>(*it->second);
    s.step(s.step() + 1);
    l.params.push_back(p);
    l.grads.push_back(p.grad());
    l.exp_avgs.push_back(s.exp_avg());
    l.exp_avg_sqs.push_back(s.exp_avg_sq());
    l.states.push_back(&s);
  }
  return l;
}

void AdamW::foreach_update(Lists& l, const torch::optim::AdamWOptions& o) {
  const double beta1 = std::get<0>(o.betas()), beta2 = std::get<1>(o.betas());
  if (o.weight_decay() != 0) at::_foreach_mul_(l.params, 1 - o.lr() * o.weight_decay());
  at::_foreach_mul_(l.exp_avgs, beta1);
  at::_foreach_add_(l.exp_avgs, l.grads, 1 - beta1);
  at::_foreach_mul_(l.exp_avg_sqs, beta2);
  at::_foreach_addcmul_(l.exp_avg_sqs, l.grads, l.grads, 1 - beta2);
  // Bias corrections from each parameter's own (host) step count: no device sync.
  std::vector<at::Scalar> correction2_sqrt, step_size;
  for (auto* s : l.states) {
    const double t = double(s->step());
    correction2_sqrt.emplace_back(std::sqrt(1 - std::pow(beta2, t)));
    step_size.emplace_back(-o.lr() / (1 - std::pow(beta1, t)));
  }
  auto denom = at::_foreach_sqrt(l.exp_avg_sqs);
  at::_foreach_div_(denom, correction2_sqrt);
  at::_foreach_add_(denom, o.eps());
  at::_foreach_addcdiv_(l.params, l.exp_avgs, denom, step_size);
}

bool AdamW::can_fuse(const Lists& l, const torch::optim::AdamWOptions& o) const {
  if (o.amsgrad()) return false;
  const auto& first = l.params.front();
  if (first.device().is_cpu()) {
    for (size_t i = 0; i < l.params.size(); ++i)
      if (!adamw_cpu_supports(l.params[i], l.grads[i], l.exp_avgs[i], l.exp_avg_sqs[i])) return false;
    return true;
  }
  if (!fused_adamw_available() || !first.is_cuda()) return false;
  for (size_t i = 0; i < l.params.size(); ++i) {
    const auto& p = l.params[i];
    if (p.device() != first.device() || p.scalar_type() != first.scalar_type() ||
        l.grads[i].scalar_type() != p.scalar_type() || !at::isFloatingType(p.scalar_type()))
      return false;
  }
  return true;
}

void AdamW::fused_cpu_update(Lists& l, const torch::optim::AdamWOptions& o) {
  AdamWStepConstants c;
  c.lr = o.lr();
  c.beta1 = std::get<0>(o.betas());
  c.beta2 = std::get<1>(o.betas());
  c.eps = o.eps();
  c.weight_decay = o.weight_decay();
  for (size_t i = 0; i < l.params.size(); ++i) {
    c.step = l.states[i]->step();
    adamw_cpu_update(l.params[i], l.grads[i], l.exp_avgs[i], l.exp_avg_sqs[i], c);
  }
}

void AdamW::fused_update(Lists& l, const torch::optim::AdamWOptions& o) {
#if SMX_TORCH_AT_LEAST(2, 1)
  std::vector<torch::Tensor> steps;
  steps.reserve(l.params.size());
  for (size_t i = 0; i < l.params.size(); ++i) {
    auto& d = device_steps_[l.params[i].unsafeGetTensorImpl()];
    const int64_t host = l.states[i]->step();  // already counts this step
    if (!d.count.defined() || d.host != host - 1 || d.count.device() != l.params[i].device())
      d.count = torch::full({}, double(host - 1), l.params[i].options().dtype(torch::kFloat));
    d.host = host;
    steps.push_back(d.count);
  }
  at::_foreach_add_(steps, 1);
  at::_fused_adamw_(l.params, l.grads, l.exp_avgs, l.exp_avg_sqs, /*max_exp_avg_sqs=*/{}, steps, o.lr(),
                    std::get<0>(o.betas()), std::get<1>(o.betas()), o.weight_decay(), o.eps(),
                    /*amsgrad=*/false, /*maximize=*/false);
#else
  (void)l;
  (void)o;
  TORCH_CHECK(false, "the fused AdamW kernel needs LibTorch >= 2.1");
#endif
}

torch::Tensor AdamW::step(LossClosure closure) {
  bool amsgrad = false;
  for (auto& g : param_groups_) amsgrad |= static_cast<torch::optim::AdamWOptions&>(g.options()).amsgrad();
  if (kind_ == AdamWKind::Reference || amsgrad) {
    TORCH_CHECK(kind_ != AdamWKind::Fused, "the fused AdamW has no amsgrad");
    last_kind_ = AdamWKind::Reference;
    return torch::optim::AdamW::step(std::move(closure));
  }
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (auto& group : param_groups_) {
    const auto& o = static_cast<torch::optim::AdamWOptions&>(group.options());
    auto l = collect(group);
    if (l.params.empty()) continue;
    const bool cpu = l.params.front().device().is_cpu();
    const bool fuse = kind_ != AdamWKind::Foreach && can_fuse(l, o);
    if (!fuse && kind_ == AdamWKind::Fused) {
      for (auto* s : l.states) s->step(s->step() - 1);  // refused: this step did not happen
      TORCH_CHECK(false, cpu ? "the fused AdamW on the CPU needs contiguous float32 parameters, gradients and moments"
                             : "the fused AdamW kernel needs float CUDA parameters of one dtype on one device "
                               "(and LibTorch >= 2.1)");
    }
    if (fuse && cpu)
      fused_cpu_update(l, o);
    else if (fuse)
      fused_update(l, o);
    else
      foreach_update(l, o);  // e.g. double parameters on the CPU
    last_kind_ = fuse ? AdamWKind::Fused : AdamWKind::Foreach;
  }
  return loss;
}

}  // namespace smx
