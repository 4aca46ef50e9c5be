// The trainer: steps (pre-training and fine-tuning share the loop),
// evaluation, checkpoints, telemetry snapshots and the controls. Set-up is in
// trainer_setup.cpp; the shared state in trainer_state.h.
#include "model/train/trainer.h"

#include <csignal>

#include "model/train/trainer_state.h"

namespace smx {

double StepMetrics::get(const std::string& name, double fallback) const {
  for (const auto& [k, v] : values)
    if (k == name) return v;
  return fallback;
}

namespace {

double resident_megabytes() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return double(resident) * double(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

std::string step_file(const char* prefix, int64_t step, const char* ext) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s-%08lld.%s", prefix, static_cast<long long>(step), ext);
  return buf;
}

}  // namespace

Trainer::State::StepResult Trainer::State::forward_pretrain(const PretrainBatch& batch, const BatchShares& shares) {
  std::optional<compat::CudaAutocastBf16> autocast;
  if (device.is_cuda() && cfg.bf16) autocast.emplace();
  auto L = model->pretrain_losses(batch);
  if (shares.ones())
    return {L.total,
            {{"loss/mlm", L.mlm}, {"loss/nsp", L.nsp}, {"loss/load_balancing", L.load_balancing},
             {"loss/z", L.z_loss}, {"accuracy/mlm", L.mlm_accuracy}, {"accuracy/nsp", L.nsp_accuracy}},
            0};
  // A rank's part of the whole batch's losses (see BatchShares): NSP and the load-balancing loss
  // average over examples and routing groups, which every rank has equally many of.
  auto mlm = L.mlm * shares.predictions, z = L.z_loss * shares.real_tokens;
  auto total = mlm + L.nsp + model_config.router.load_balancing_weight * L.load_balancing +
               model_config.router.z_loss_weight * z;
  return {total,
          {{"loss/mlm", mlm}, {"loss/nsp", L.nsp}, {"loss/load_balancing", L.load_balancing},
           {"loss/z", z}, {"accuracy/mlm", L.mlm_accuracy * shares.predictions}, {"accuracy/nsp", L.nsp_accuracy}},
          0};
}

Trainer::State::StepResult Trainer::State::forward_lm(const LmBatch& batch, const BatchShares& shares) {
  std::optional<compat::CudaAutocastBf16> autocast;
  if (device.is_cuda() && cfg.bf16) autocast.emplace();
  auto L = lm->lm_losses(batch);
  if (shares.ones())
    return {L.total,
            {{"loss/nll", L.nll}, {"accuracy/next_token", L.accuracy}, {"loss/load_balancing", L.load_balancing},
             {"loss/z", L.z_loss}, {"loss/smoe_balancing", L.smoe_balancing}},
            0};
  // LM batches have no padding: only the scored targets (loss_mask) differ between ranks.
  auto nll = L.nll * shares.predictions;
  auto total = nll + model_config.router.load_balancing_weight * L.load_balancing +
               model_config.router.z_loss_weight * L.z_loss + model_config.smoe_balancing_weight * L.smoe_balancing;
  return {total,
          {{"loss/nll", nll}, {"accuracy/next_token", L.accuracy * shares.predictions},
           {"loss/load_balancing", L.load_balancing}, {"loss/z", L.z_loss}, {"loss/smoe_balancing", L.smoe_balancing}},
          0};
}

StepMetrics Trainer::State::evaluate_lm(int64_t batches) {
  // Teacher-forced perplexity over held-out windows: exp(sum NLL / scored targets).
  const int64_t all = int64_t((lm_data->num_heldout_windows() + uint64_t(cfg.batch_size) - 1) / uint64_t(cfg.batch_size));
  const int64_t n = batches > 0 ? std::min(batches, all) : all;
  double nll = 0, correct = 0, targets = 0;
  for (int64_t i = 0; i < n; ++i) {
    auto b = make_lm_batch(*lm_data, text::Split::Heldout, uint64_t(i), cfg.batch_size).to(device);
    std::optional<compat::CudaAutocastBf16> autocast;
    if (device.is_cuda() && cfg.bf16) autocast.emplace();
    auto L = lm->lm_losses(b);
    const double t = L.targets.item<double>();
    nll += L.nll_sum.item<double>();
    correct += L.accuracy.item<double>() * t;
    targets += t;
  }
  StepMetrics m;
  const double mean = nll / std::max(targets, 1.0);
  m.values = {{"eval/perplexity", std::exp(mean)},
              {"eval/loss_nll", mean},
              {"eval/accuracy_next_token", correct / std::max(targets, 1.0)},
              {"eval/targets", targets}};
  return m;
}

torch::Tensor Trainer::State::task_logits(const TaskBatch& b, EncoderModelImpl::Output* out_keep) {
  std::optional<compat::CudaAutocastBf16> autocast;
  if (device.is_cuda() && cfg.bf16) autocast.emplace();
  auto out = model->forward(b.ids, b.types, b.mask);
  auto logits = model->classify(out.pooled);
  if (out_keep) *out_keep = out;
  return logits.to(torch::kFloat);
}

Trainer::State::StepResult Trainer::State::forward_task(const TaskBatch& b, const BatchShares& shares) {
  EncoderModelImpl::Output out;
  auto logits = task_logits(b, &out);
  compat::AutocastOff off;
  torch::Tensor loss, acc;
  if (task.info.num_labels > 0) {
    loss = torch::nn::functional::cross_entropy(logits, b.labels);
    acc = logits.detach().argmax(-1).eq(b.labels).to(torch::kFloat).mean();
  } else {
    loss = torch::mse_loss(logits.squeeze(-1), b.targets);
  }
  auto zero = torch::zeros({}, logits.options());
  auto lb = out.load_balancing_loss.defined() ? out.load_balancing_loss : zero;
  auto z = out.z_loss.defined() ? out.z_loss : zero;
  if (!shares.ones()) z = z * shares.real_tokens;  // averaged over real tokens; examples are equal per rank
  auto total = loss + model_config.router.load_balancing_weight * lb + model_config.router.z_loss_weight * z;
  StepResult r{total, {{"loss/task", loss}, {"loss/load_balancing", lb}, {"loss/z", z}}, 0};
  if (acc.defined()) r.scalars.emplace_back("accuracy/train", acc);
  return r;
}

StepMetrics Trainer::State::evaluate(int64_t step, bool full) {
  torch::NoGradGuard no_grad;
  module().eval();
  StepMetrics m;
  m.step = step;
  if (lm_run()) {
    // Periodic evaluations: the first eval_batches held-out batches; the final one: all of them.
    m.values = evaluate_lm(full ? 0 : cfg.eval_batches).values;
  } else if (pretraining_run()) {
    double mlm = 0, mlm_acc = 0, nsp_acc = 0;
    for (int64_t i = 0; i < cfg.eval_batches; ++i) {
      auto b = make_pretrain_batch(*pretraining, text::Split::Heldout, i, cfg.batch_size).to(device);
      auto r = forward_pretrain(b);
      mlm += r.scalars[0].second.item<double>();
      mlm_acc += r.scalars[4].second.item<double>();
      nsp_acc += r.scalars[5].second.item<double>();
    }
    const double n = double(cfg.eval_batches);
    m.values = {{"eval/loss_mlm", mlm / n}, {"eval/accuracy_mlm", mlm_acc / n}, {"eval/accuracy_nsp", nsp_acc / n}};
  } else {
    // Periodic evaluations use a fixed random sample of the dev split (the
    // files are often sorted by label); the final one uses all of it.
    const size_t n = full ? dev_examples.size()
                          : std::min(dev_examples.size(), static_cast<size_t>(cfg.eval_batches * cfg.batch_size));
    const std::vector<size_t> order =
        full ? std::vector<size_t>() : EpochShuffle(dev_examples.size(), 12345).rows(0, static_cast<int64_t>(n));
    std::vector<int> pred, gold;
    std::vector<double> pred_r, gold_r;
    double loss = 0;
    for (size_t begin = 0; begin < n; begin += cfg.batch_size) {
      std::vector<size_t> rows;
      for (size_t i = begin; i < std::min(n, begin + cfg.batch_size); ++i) rows.push_back(full ? i : order[i]);
      auto b = make_task_batch(dev_examples, rows, seq_len).to(device);
      auto logits = task_logits(b).to(torch::kCPU);
      if (task.info.num_labels > 0) {
        loss += torch::nn::functional::cross_entropy(logits, b.labels.to(torch::kCPU), torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum)).item<double>();
        const auto p = logits.argmax(-1).contiguous();  // one copy per batch, not an item() per example
        const int64_t* predicted = p.data_ptr<int64_t>();
        for (size_t i = 0; i < rows.size(); ++i) {
          pred.push_back(static_cast<int>(predicted[i]));
          gold.push_back(dev_examples[rows[i]].label);
        }
      } else {
        const auto scores = logits.select(1, 0).to(torch::kDouble).contiguous();
        for (size_t i = 0; i < rows.size(); ++i) {
          pred_r.push_back(scores.data_ptr<double>()[i]);
          gold_r.push_back(dev_examples[rows[i]].target);
        }
      }
    }
    const auto values = task.info.num_labels > 0 ? data::evaluate_classification(task.info, pred, gold)
                                                 : data::evaluate_regression(task.info, pred_r, gold_r);
    for (const auto& v : values) m.values.emplace_back("eval/" + data::to_string(v.kind), v.value);
    if (task.info.num_labels > 0) m.values.emplace_back("eval/loss", loss / double(std::max<size_t>(n, 1)));
    m.values.emplace_back("eval/examples", double(n));
  }
  module().train();
  m.wall_seconds = wall();
  return m;
}

std::string Trainer::State::headline_metric() const {
  if (lm_run()) return "eval/perplexity";
  return pretraining_run() ? "eval/accuracy_mlm" : "eval/" + data::to_string(task.info.metrics.front());
}

void Trainer::State::record_eval(const StepMetrics& m) {
  store->log_metrics(run_id, m.step, m.wall_seconds, m.values);
  if (owner.observer_) owner.observer_->on_eval(m);
  outcome.last_eval = m;
  const std::string key = headline_metric();
  const bool better = lm_run() ? m.get(key) < outcome.best_eval.get(key) : m.get(key) > outcome.best_eval.get(key);
  if (outcome.best_eval.values.empty() || better) outcome.best_eval = m;
}

CheckpointInfo Trainer::State::checkpoint_info(int64_t step) const {
  CheckpointInfo info;
  info.run_config_json = run_config_to_json_text(model_config, cfg);
  info.step = step;
  info.examples_seen = static_cast<uint64_t>(step * cfg.batch_size * cfg.accumulation);
  info.run_id = run_id;
  info.wall_seconds = wall();
  info.tokenizer_path = cfg.tokenizer;
  return info;
}

void Trainer::State::checkpoint(int64_t step) {
  const CheckpointInfo info = checkpoint_info(step);
  const fs::path file = run_dir / "checkpoints" / step_file("step", step, "ckpt");
  save_checkpoint(file, info, module(), optimizer.get());
  outcome.last_checkpoint = file;
  // Keep the newest keep_checkpoints files.
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(run_dir / "checkpoints"))
    if (e.path().extension() == ".ckpt") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (size_t i = 0; i + cfg.keep_checkpoints < files.size(); ++i) fs::remove(files[i]);
  event(step, "checkpoint", file.string());
}

void Trainer::State::serve_live_weights(int64_t step) {
  if (!owner.live_requested_.exchange(false)) return;
  CheckpointInfo info = checkpoint_info(step);
  info.live = true;
  const fs::path dir = run_dir / "live";
  LiveWeights answer{step, dir / step_file("step", step, "ckpt"), {}};
  try {
    save_checkpoint(answer.file, info, module(), /*optimizer=*/nullptr);  // weights only: nothing resumes from it
  } catch (const std::exception& e) {
    answer.file.clear();  // a copy for the playground is not worth the run: say why and train on
    answer.error = e.what();
  }
  // Keep the newest copy and the one before it (a reader may be opening that one now); older ones go.
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".ckpt") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (size_t i = 0; i + 2 < files.size(); ++i) fs::remove(files[i], ec);
  if (owner.observer_) owner.observer_->on_live_weights(answer);
}

void Trainer::State::snapshot(int64_t step, std::vector<telemetry::MoeLayerStats> moe) {
  telemetry::Snapshot s;
  s.step = step;
  s.wall_seconds = wall();
  s.moe = std::move(moe);
  const auto piece = [this](int32_t id) { return tokenizer->piece(id); };
  if (lm_run()) {
    // LM batches have no padding: every token is real.
    if (last_batch_ids.defined() && tokenizer)
      add_routing_details(lm->moe_layers(), last_batch_ids, torch::ones_like(last_batch_ids), piece, s.moe);
    s.mixing = capture_mixing(lm);  // before the probe: "channels to experts" of the training batch
    if (probe.ids.defined()) s.probe = capture_probe_routing(lm, probe, &s.mixing);
  } else {
    if (last_batch_ids.defined() && tokenizer)
      add_routing_details(model->moe_layers(), last_batch_ids, last_batch_mask, piece, s.moe);
    s.probe = capture_probe_routing(model, probe, &s.mixing);
    auto mixing = capture_mixing(model);
    s.mixing.insert(s.mixing.end(), mixing.begin(), mixing.end());
  }
  std::stable_sort(s.mixing.begin(), s.mixing.end(), [](const auto& a, const auto& b) { return a.layer < b.layer; });
  const fs::path file = run_dir / "snapshots" / step_file("step", step, "snap");
  telemetry::save_snapshot(s, file);
  store->add_snapshot(run_id, step, file.lexically_relative(run_dir).string());
  if (owner.observer_) owner.observer_->on_snapshot(s);
}

void Trainer::State::loop() {
  module().train();
  if (writer()) store->set_status(run_id, "running");
  StabilityMonitor monitor(cfg.spike_factor, cfg.spike_window);
  // Attention health per step (entropy, largest score): what the stability lab reads when a run diverges.
  const std::vector<SelfAttention*> attention = attention_sublayers(module());
  for (auto* a : attention) a->track_statistics = true;
  const uint64_t micro = static_cast<uint64_t>(cfg.accumulation);
  const uint64_t first_batch = static_cast<uint64_t>(start_step) * micro;
  std::unique_ptr<Prefetcher<PretrainBatch>> pretrain_batches;
  std::unique_ptr<Prefetcher<TaskBatch>> task_batches;
  std::unique_ptr<Prefetcher<LmBatch>> lm_batches;
  if (lm_run())
    lm_batches = std::make_unique<Prefetcher<LmBatch>>(
        [this](uint64_t i) { return make_lm_batch(*lm_data, text::Split::Train, i, cfg.batch_size); }, first_batch, 1, 4);
  else if (pretraining_run())
    pretrain_batches = std::make_unique<Prefetcher<PretrainBatch>>(
        [this](uint64_t i) { return make_pretrain_batch(*pretraining, text::Split::Train, i, cfg.batch_size); },
        first_batch, 1, 4);
  else
    task_batches = std::make_unique<Prefetcher<TaskBatch>>(
        [this, shuffle = std::make_shared<EpochShuffle>(train_examples.size(), cfg.seed)](uint64_t i) {
          return make_task_batch(train_examples, shuffle->rows(i, cfg.batch_size), seq_len);
        },
        first_batch, 1, 4);
  // A distributed rank trains on rows [first_row, first_row + rows) of every batch (the whole batch is
  // built from its index on every rank, so the split needs no communication and a resumed run sees
  // the same data whatever the number of ranks).
  const int64_t rows = cfg.batch_size / world(), first_row = group ? group->rank() * rows : 0;
  // Distributed: stop and pause are agreed by every rank (summed with each step's scalars), so all
  // ranks leave the loop, or pause, at the same step.
  bool stop_agreed = false, pause_agreed = false, live_agreed = false;

  outcome.status = "finished";
  int64_t step = start_step;
  double examples = 0, tokens = 0, train_time = 0;
  if (step == 0 && cfg.snapshot_every > 0) {
    gather_experts();
    if (writer()) snapshot(0, {});
    shard_experts();
  }
  compat::reset_peak_memory(device);
  for (; step < cfg.steps; ++step) {
    outcome.steps_done = step;  // steps completed: what a failure inside this step reports
    if (group) inject_fault(step);
    if (opt.fail_allocation_at_step == step + 1) {
      // 2^50 floats (4 PiB): more than any device has, refused by its allocator as a real shortage would be.
      (void)torch::empty({int64_t(1) << 50}, torch::TensorOptions().dtype(torch::kFloat).device(device));
    }
    // Between two steps: the weights after `step` steps. With experts spread over ranks, every rank
    // helps (the request travelled with the last step's all-reduce).
    if (experts) {
      if (live_agreed) {
        gather_experts();
        if (writer()) serve_live_weights(step);
        shard_experts();
        live_agreed = false;
      }
    } else if (writer()) {
      serve_live_weights(step);
    }
    if (group ? pause_agreed && !stop_agreed : owner.paused_ && !owner.stop_) {
      if (writer()) store->set_status(run_id, "paused");
      event(step, "paused", "paused at step " + std::to_string(step));
      const auto pause_began = Clock::now();
      for (;;) {
        if (!group) {
          owner.wait_while_paused();  // also wakes for a live-weights request, answered while paused
          if (!owner.live_requested_ || owner.stop_) break;
          serve_live_weights(step);
          continue;
        }
        // Distributed: every rank checks in a few times a second until no rank wants the pause.
        if (writer()) {
          owner.wait_while_paused(std::chrono::milliseconds(250));
          if (!experts) serve_live_weights(step);
        }
        auto flags = torch::tensor(
            {double(owner.paused_.load()), double(owner.stop_.load()), double(writer() && owner.live_requested_.load())},
            torch::kDouble);
        group->all_reduce_sum(flags, "agreeing on the pause at step " + std::to_string(step));
        pause_agreed = flags[0].item<double>() > 0;
        stop_agreed = flags[1].item<double>() > 0;
        if (experts && flags[2].item<double>() > 0) {
          gather_experts();
          if (writer()) serve_live_weights(step);
          shard_experts();
        }
        if (!pause_agreed || stop_agreed) break;
      }
      wall_offset -= seconds_since(pause_began);  // wall time counts training, not pauses
      if (!(group ? stop_agreed : owner.stop_.load())) {
        if (writer()) store->set_status(run_id, "running");
        event(step, "continued", "continued at step " + std::to_string(step));
      }
    }
    if (group ? stop_agreed : owner.stop_.load()) {
      outcome.status = "stopped";
      break;
    }
    const auto t0 = Clock::now();
    const double lr = cfg.learning_rate_at(step);
    for (auto& g : optimizer->param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
    release_gradients(*optimizer);
    torch::Tensor total_sum;
    std::vector<std::pair<std::string, torch::Tensor>> scalar_sums;
    int64_t step_tokens = 0;
    const auto share = [&](const torch::Tensor& part, const torch::Tensor& whole) {
      const double all = whole.sum().item<double>();
      return all > 0 ? part.sum().item<double>() / all * double(world()) : 1.0;
    };
    for (uint64_t m = 0; m < micro; ++m) {
      const uint64_t index = static_cast<uint64_t>(step) * micro + m;
      StepResult r;
      if (lm_run()) {
        auto batch = lm_batches->get(index);
        step_tokens += batch.ids.numel();
        BatchShares shares;
        if (group) {
          auto mine = rows_of(batch, first_row, rows);
          if (batch.loss_mask.defined()) shares.predictions = share(mine.loss_mask, batch.loss_mask);
          batch = std::move(mine);
        }
        last_batch_ids = batch.ids;
        r = forward_lm(batch.to(device), shares);
      } else if (pretraining_run()) {
        auto batch = pretrain_batches->get(index);
        step_tokens += batch.mask.sum().item<int64_t>();
        BatchShares shares;
        if (group) {
          auto mine = rows_of(batch, first_row, rows);
          shares.predictions = share(mine.mlm_labels.ne(-100), batch.mlm_labels.ne(-100));
          shares.real_tokens = share(mine.mask, batch.mask);
          batch = std::move(mine);
        }
        last_batch_ids = batch.ids;
        last_batch_mask = batch.mask;
        r = forward_pretrain(batch.to(device), shares);
      } else {
        auto batch = task_batches->get(index);
        step_tokens += batch.mask.sum().item<int64_t>();
        BatchShares shares;
        if (group) {
          auto mine = rows_of(batch, first_row, rows);
          shares.real_tokens = share(mine.mask, batch.mask);
          batch = std::move(mine);
        }
        last_batch_ids = batch.ids;
        last_batch_mask = batch.mask;
        r = forward_task(batch.to(device), shares);
      }
      if (step == cfg.inject_nan_at_step) r.total = r.total * std::numeric_limits<float>::quiet_NaN();
      (r.total / double(micro)).backward();
      total_sum = total_sum.defined() ? total_sum + r.total.detach() : r.total.detach();
      if (scalar_sums.empty()) {
        for (auto& [k, v] : r.scalars) scalar_sums.emplace_back(k, v.detach());
      } else {
        for (size_t i = 0; i < r.scalars.size(); ++i) scalar_sums[i].second = scalar_sums[i].second + r.scalars[i].second.detach();
      }
    }
    double loss = 0;
    std::vector<double> rank_tokens_per_s;
    if (group) {
      const double compute_seconds = seconds_since(t0);
      gradients->average();
      if (expert_gradients) expert_gradients->average("the expert gradient all-reduce");
      // One all-reduce for the step's loss and scalars (each rank's part: their mean is the whole
      // batch's value), every rank's compute speed, and the controls.
      std::vector<torch::Tensor> parts{total_sum.reshape({1})};
      for (auto& [k, v] : scalar_sums) parts.push_back(v.reshape({1}));
      auto values = torch::cat(parts).to(torch::kCPU, torch::kDouble).div_(double(world()));
      auto speeds = torch::zeros({world()}, torch::kDouble);
      speeds[group->rank()] = double(step_tokens) / double(world()) / std::max(compute_seconds, 1e-9);
      auto flags = torch::tensor(
          {double(owner.paused_.load()), double(owner.stop_.load()), double(writer() && owner.live_requested_.load())},
          torch::kDouble);
      auto all = torch::cat({values, speeds, flags});
      group->all_reduce_sum(all, "the loss all-reduce of step " + std::to_string(step + 1));
      const double* v = all.data_ptr<double>();
      loss = v[0] / double(micro);
      for (size_t i = 0; i < scalar_sums.size(); ++i) scalar_sums[i].second = torch::tensor(v[1 + i]);
      rank_tokens_per_s.assign(v + 1 + scalar_sums.size(), v + 1 + scalar_sums.size() + world());
      pause_agreed = v[all.numel() - 3] > 0;
      stop_agreed = v[all.numel() - 2] > 0;
      live_agreed = v[all.numel() - 1] > 0;
    }
    // After the all-reduce every rank holds the same gradients, loss and norm, so the stability
    // monitor below reaches the same verdict on every rank.
    const double grad_norm = clip_gradients();
    if (!group) loss = total_sum.item<double>() / double(micro);

    const StabilityVerdict verdict = monitor.check(loss, grad_norm);
    bool apply = true;
    if (verdict.kind != StabilityVerdict::Healthy) {
      const bool nonfinite = verdict.kind == StabilityVerdict::NonFinite;
      const StabilityPolicy policy = nonfinite ? cfg.on_nonfinite : cfg.on_spike;
      event(step, nonfinite ? "nonfinite" : "loss-spike",
            verdict.describe(loss, grad_norm) + " (policy: " + to_string(policy) + ")", loss);
      if (policy == StabilityPolicy::Stop) {
        outcome.status = "diverged";
        break;
      }
      apply = policy == StabilityPolicy::Continue;
    }
    if (apply) {
      optimizer->step();
      monitor.accept(loss);
    }
    const double step_seconds = seconds_since(t0);
    train_time += step_seconds;
    examples += double(cfg.batch_size * cfg.accumulation);
    tokens += double(step_tokens);
    const int64_t done = step + 1;

    // Rank 0 records, evaluates and checkpoints for the whole run; with experts spread over ranks,
    // every rank first gathers them so that rank 0 holds the whole model.
    const bool snapshot_now = cfg.snapshot_every > 0 && done % cfg.snapshot_every == 0;
    const bool eval_now = cfg.eval_every > 0 && done % cfg.eval_every == 0 && done != cfg.steps;
    const bool checkpoint_now = cfg.checkpoint_every > 0 && done % cfg.checkpoint_every == 0 && done != cfg.steps;
    const bool whole_model = snapshot_now || eval_now || checkpoint_now;
    if (whole_model) gather_experts();
    if (!writer()) {
      if (whole_model) shard_experts();
      continue;
    }
    if (done % cfg.log_every == 0 || done == cfg.steps) {
      StepMetrics m;
      m.step = done;
      m.wall_seconds = wall();
      m.values.emplace_back("loss/total", loss);
      for (auto& [k, v] : scalar_sums) m.values.emplace_back(k, v.item<double>() / double(micro));
      m.values.emplace_back("optim/lr", lr);
      m.values.emplace_back("optim/grad_norm", grad_norm);
      m.values.emplace_back("speed/step_ms", step_seconds * 1000.0);
      m.values.emplace_back("speed/examples_per_s", double(cfg.batch_size * cfg.accumulation) / step_seconds);
      m.values.emplace_back("speed/tokens_per_s", double(step_tokens) / step_seconds);
      for (size_t r = 0; r < rank_tokens_per_s.size(); ++r)
        m.values.emplace_back("dist/rank" + std::to_string(r) + "_tokens_per_s", rank_tokens_per_s[r]);
      m.values.emplace_back("memory/resident_mb", resident_megabytes());
      if (device.is_cuda()) {
        // What the run's tensors hold on the GPU now, and the most since the run (or resume) started.
        m.values.emplace_back("memory/gpu_allocated_mb", double(compat::allocated_memory_bytes(device)) / (1 << 20));
        m.values.emplace_back("memory/gpu_peak_mb", double(compat::peak_memory_bytes(device)) / (1 << 20));
      }
      if (!apply) m.values.emplace_back("stability/skipped", 1.0);
      auto moe = capture_moe_stats(lm_run() ? lm->moe_layers() : model->moe_layers());
      for (auto& kv : moe_scalars(moe)) m.values.push_back(kv);
      for (auto& kv : attention_scalars(attention)) m.values.push_back(kv);
      store->log_metrics(run_id, done, m.wall_seconds, m.values);
      store->set_last_step(run_id, done);
      if (owner.observer_) owner.observer_->on_step(m);
      if (snapshot_now) snapshot(done, std::move(moe));
    } else if (snapshot_now) {
      snapshot(done, capture_moe_stats(lm_run() ? lm->moe_layers() : model->moe_layers()));
    }
    if (eval_now) record_eval(evaluate(done, false));
    if (checkpoint_now) checkpoint(done);
    if (whole_model) shard_experts();
  }
  outcome.steps_done = step;
  outcome.train_seconds = train_time;
  outcome.examples_per_second = train_time > 0 ? examples / train_time : 0;
  outcome.tokens_per_second = train_time > 0 ? tokens / train_time : 0;
  if (outcome.status != "diverged") gather_experts();  // rank 0's final evaluation and checkpoint: the whole model
  if (!writer()) return;
  if (outcome.status != "diverged") {
    // Final evaluation (fine-tuning: the whole dev split) and checkpoint.
    record_eval(evaluate(step, /*full=*/true));
    checkpoint(step);
  }
  store->set_status(run_id, outcome.status);
  event(step, outcome.status, outcome.status == "finished" ? "reached step " + std::to_string(step)
                                                           : outcome.status + " at step " + std::to_string(step));
}

void Trainer::State::gather_experts() {
  if (experts) experts->gather(expert_tensors, optimizer.get());
}

void Trainer::State::shard_experts() {
  if (experts) experts->shard(expert_tensors, optimizer.get());
}

double Trainer::State::clip_gradients() {
  if (!experts)
    return cfg.clip_norm > 0 ? torch::nn::utils::clip_grad_norm_(parameters, cfg.clip_norm)
                             : torch::nn::utils::clip_grad_norm_(parameters, std::numeric_limits<double>::infinity());
  // The norm over the whole model: the dense part is the same on every rank; each expert shard's
  // part is summed over the ranks that hold the shards.
  torch::NoGradGuard no_grad;
  // Summed on the device, read once: an item() per parameter would wait for the device every time.
  const auto squares = [](const std::vector<torch::Tensor>& ps) {
    std::vector<torch::Tensor> parts;
    for (const auto& p : ps)
      if (p.grad().defined()) parts.push_back(p.grad().to(torch::kDouble).pow(2).sum());
    return parts.empty() ? torch::zeros({1}, torch::kDouble) : torch::stack(parts).sum().reshape({1}).cpu();
  };
  auto shards = squares(expert_tensors);
  experts->group().all_reduce_sum(shards, "the gradient norm");
  const double norm = std::sqrt((squares(dense_parameters) + shards).item<double>());
  const double coefficient = cfg.clip_norm / (norm + 1e-6);  // as torch::nn::utils::clip_grad_norm_
  if (cfg.clip_norm > 0 && coefficient < 1)
    for (auto& p : parameters)
      if (p.grad().defined()) p.mutable_grad().mul_(coefficient);
  return norm;
}

void Trainer::State::inject_fault(int64_t step) {
  const auto& d = opt.dist;
  if (d.fault_rank != group->rank() || d.fault_step != step) return;
  std::fprintf(stderr, "rank %d: injected fault '%s' before step %lld\n", d.fault_rank, d.fault_kind.c_str(),
               static_cast<long long>(step));
  std::raise(d.fault_kind == "hang" ? SIGSTOP : SIGKILL);
}

Trainer::Trainer(TrainerOptions options, TrainerObserver* observer) : options_(std::move(options)), observer_(observer) {}
Trainer::~Trainer() = default;

void Trainer::pause() { paused_ = true; }
void Trainer::resume() {
  paused_ = false;
  control_cv_.notify_all();
}
void Trainer::stop() {
  stop_ = true;
  control_cv_.notify_all();
}

void Trainer::request_live_weights() {
  {
    std::lock_guard lock(control_mutex_);  // a paused trainer must not miss the wake-up
    live_requested_ = true;
  }
  control_cv_.notify_all();
}

void Trainer::wait_while_paused(std::chrono::milliseconds limit) {
  std::unique_lock lock(control_mutex_);
  const auto done = [&] { return !paused_ || stop_ || live_requested_; };
  if (limit == std::chrono::milliseconds::max()) control_cv_.wait(lock, done);
  else control_cv_.wait_for(lock, limit, done);
}

std::string Trainer::State::out_of_memory_message(const std::exception& e, int64_t at_step) const {
  const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
  std::string cause = c10_error ? c10_error->what_without_backtrace() : e.what();
  cause = cause.substr(0, cause.find('\n'));
  if (cause.size() > 300) cause = cause.substr(0, 300) + "...";
  const std::string where = device.is_cuda() ? "GPU memory on " + device.str() : "memory on the CPU";
  const int64_t tokens = cfg.seq_len > 0 ? std::min(cfg.seq_len, model_config.max_seq_len) : model_config.max_seq_len;
  const std::string when = at_step > 0   ? " at step " + std::to_string(at_step)
                           : at_step < 0 ? " after the last step (final evaluation or checkpoint)"
                                         : " while setting up the run";
  std::string m = "out of " + where + when + " (batch_size " + std::to_string(cfg.batch_size) + " x " +
                  std::to_string(tokens) + " tokens): " + cause + ". ";
  const int64_t half = std::max<int64_t>(1, cfg.batch_size / 2);
  m += "Try a smaller batch_size (" + std::to_string(half) + ", with accumulation " + std::to_string(cfg.accumulation * 2) +
       " for the same effective batch), a shorter seq_len or a smaller model";
  if (device.is_cuda() && !cfg.bf16) m += ", or bf16";
  m += ".";
  if (!run_dir.empty() && fs::exists(run_dir / "checkpoints")) {
    std::string skipped;
    const fs::path kept = newest_checkpoint(run_dir, &skipped);
    if (!kept.empty()) m += " The run's newest checkpoint is kept: " + kept.string() + ".";
  }
  return m;
}

RunOutcome Trainer::run() {
  std::string out_of_memory;  // thrown as OutOfMemory once the run's tensors are freed
  {
    State s(*this);
    try {
      s.setup();
    } catch (const std::exception& e) {
      if (!compat::is_out_of_memory(e)) throw;
      out_of_memory = s.out_of_memory_message(e, 0);
    }
    if (out_of_memory.empty()) {
      // Live copies last as long as the run: whichever way it ends, they go.
      struct RemoveLive {
        fs::path dir;
        ~RemoveLive() {
          std::error_code ec;
          fs::remove_all(dir, ec);
        }
      } remove_live{s.run_dir / "live"};
      try {
        s.loop();
        return s.outcome;
      } catch (const std::exception& e) {
        const bool oom = compat::is_out_of_memory(e);
        const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
        std::string message = c10_error ? c10_error->what_without_backtrace() : e.what();
        const int64_t at = s.outcome.steps_done < s.cfg.steps ? s.outcome.steps_done + 1 : -1;
        if (oom) message = out_of_memory = s.out_of_memory_message(e, at);
        try {
          if (s.writer() && s.store) s.store->set_status(s.run_id, "failed");
          s.event(s.outcome.steps_done, "failed", message);
        } catch (...) {
        }
        if (!oom) throw;
      }
    }
  }
  // The State (model, optimizer, batches) is gone: give the cached blocks back, so that the
  // studio's next run and its playground have the device's memory.
  compat::release_cached_memory();
  throw OutOfMemory(out_of_memory);
}

StepMetrics evaluate_checkpoint(const fs::path& checkpoint, const fs::path& data_dir, TrainerObserver* observer,
                                const std::string& device) {
  const auto info = read_checkpoint_info(checkpoint);
  TrainerOptions o;
  checkpoint_run_config(checkpoint, info, o.model, o.training);
  o.training.device = device;
  o.data_dir = data_dir;
  Trainer t(o, observer);
  Trainer::State s(t);
  s.data_dir = data_dir.empty() ? store::default_data_dir() : data_dir;
  s.model_config = o.model;
  s.cfg = o.training;
  s.device = pick_device(device);
  if (s.lm_run()) {
    s.setup_lm();
    s.lm = CausalLm(s.model_config);
  } else {
    if (s.pretraining_run()) s.setup_pretraining();
    else s.setup_finetuning(nullptr);
    s.model = EncoderModel(s.model_config);
  }
  load_checkpoint(checkpoint, s.module(), nullptr, false, true);
  s.module().to(s.device);
  s.started = Clock::now();
  return s.evaluate(info.step, /*full=*/true);
}

LmWindows lm_heldout_windows(const ModelConfig& model, const TrainConfig& training, const fs::path& data_dir,
                             int64_t windows) {
  if (!model.is_decoder())
    throw ConfigError("model '" + model.name + "' is an encoder: held-out LM windows need a decoder-LM run");
  TrainerOptions o;
  o.model = model;
  o.training = training;
  o.data_dir = data_dir;
  Trainer t(o, nullptr);
  Trainer::State s(t);
  s.data_dir = data_dir.empty() ? store::default_data_dir() : data_dir;
  s.model_config = o.model;
  s.cfg = o.training;
  s.setup_lm();  // the evaluation's own data path: corpus, tokenizer, cache, split
  const int64_t available = std::max<int64_t>(int64_t(s.lm_data->num_heldout_windows()), 1);
  const int64_t n = std::clamp<int64_t>(windows, 1, available);
  const auto batch = make_lm_batch(*s.lm_data, text::Split::Heldout, 0, n);  // windows 0 .. n-1, as evaluate_lm
  LmWindows w;
  w.rows = batch.ids.size(0);
  w.seq_len = batch.ids.size(1);
  const auto ids = batch.ids.contiguous();
  w.ids.assign(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + ids.numel());
  return w;
}

}  // namespace smx
