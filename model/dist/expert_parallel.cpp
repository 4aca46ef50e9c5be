#include "model/dist/expert_parallel.h"

#include <type_traits>

#include "model/optim/state_key.h"

namespace smx::dist {

namespace {

// x's dim 0 in `group.size()` equal chunks: chunk j to member j; chunk m of the result from member m.
torch::Tensor exchange_chunks(ProcessGroup& group, const torch::Tensor& x) {
  const int64_t K = group.size();
  TORCH_CHECK(x.size(0) % K == 0, "expert exchange: ", x.size(0), " rows do not split over ", K, " ranks");
  const std::vector<int64_t> splits(size_t(K), x.size(0) / K);
  return group.all_to_all(x.contiguous(), splits, splits, "the expert all_to_all");
}

struct ExchangeFunction : torch::autograd::Function<ExchangeFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor x, int64_t group) {
    ctx->saved_data["group"] = group;
    return exchange_chunks(*reinterpret_cast<ProcessGroup*>(group), x);
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    auto* group = reinterpret_cast<ProcessGroup*>(ctx->saved_data["group"].toInt());
    // The exchange is its own inverse: each gradient chunk goes back to the rank its rows came from.
    return {exchange_chunks(*group, grads[0]), torch::Tensor()};
  }
};

class GroupExchange : public ExpertExchange {
 public:
  GroupExchange(ProcessGroup& group, int index) : group_(group), index_(index) {}
  int64_t shards() const override { return group_.size(); }
  int64_t index() const override { return index_; }
  torch::Tensor exchange(const torch::Tensor& x) override {
    return ExchangeFunction::apply(x, reinterpret_cast<int64_t>(&group_));
  }

 private:
  ProcessGroup& group_;
  int index_;
};

// AdamW's per-parameter moments, which are sharded and gathered with their parameter.
std::vector<torch::Tensor*> state_of(const torch::Tensor& p, torch::optim::Optimizer* optimizer) {
  std::vector<torch::Tensor*> out;
  if (!optimizer) return out;
  auto& states = optimizer->state();
  const auto it = states.find(optimizer_state_key<typename std::decay_t<decltype(states)>::key_type>(p));
  if (it == states.end()) return out;  // no step taken yet
  auto* adam = dynamic_cast<torch::optim::AdamWParamState*>(it->second.get());
  TORCH_CHECK(adam, "expert parallelism shards AdamW's state; this optimizer has another kind");
  for (auto* t : {&adam->exp_avg(), &adam->exp_avg_sq(), &adam->max_exp_avg_sq()})
    if (t->defined() && t->dim() > 0) out.push_back(const_cast<torch::Tensor*>(t));
  return out;
}

}  // namespace

ExpertParallel::ExpertParallel(ProcessGroup& world, int shards) : shards_(shards), index_(world.rank() % shards) {
  const int first = world.rank() - index_;
  std::vector<int> members, replicas;
  for (int j = 0; j < shards; ++j) members.push_back(first + j);
  for (int r = index_; r < world.size(); r += shards) replicas.push_back(r);
  // Every rank makes every group it is in, in the same order: the groups of K, then the replica groups.
  group_ = world.subgroup(members, "experts-" + std::to_string(first));
  replicas_ = world.subgroup(replicas, "replicas-" + std::to_string(index_));
  exchange_ = std::make_shared<GroupExchange>(*group_, index_);
}

ExpertParallel::~ExpertParallel() = default;

void ExpertParallel::shard(const std::vector<torch::Tensor>& experts, torch::optim::Optimizer* optimizer) const {
  torch::NoGradGuard no_grad;
  for (const auto& p : experts) {
    const int64_t n = p.size(0) / shards_;
    auto cut = [&](const torch::Tensor& t) { return t.narrow(0, index_ * n, n).clone(); };
    for (torch::Tensor* s : state_of(p, optimizer)) *s = cut(*s);
    if (p.grad().defined()) const_cast<torch::Tensor&>(p).mutable_grad() = cut(p.grad());
    const_cast<torch::Tensor&>(p).set_data(cut(p));  // the same parameter (the optimizer's key), a shard of it
  }
}

void ExpertParallel::gather(const std::vector<torch::Tensor>& experts, torch::optim::Optimizer* optimizer) {
  torch::NoGradGuard no_grad;
  // Every member sends its shard to every member: K copies in, the K shards in order out.
  auto all = [&](const torch::Tensor& t) {
    return exchange_chunks(*group_, torch::cat(std::vector<torch::Tensor>(size_t(shards_), t)));
  };
  for (const auto& p : experts) {
    for (torch::Tensor* s : state_of(p, optimizer)) *s = all(*s);
    if (p.grad().defined()) const_cast<torch::Tensor&>(p).mutable_grad() = all(p.grad());
    const_cast<torch::Tensor&>(p).set_data(all(p));
  }
}

}  // namespace smx::dist
