// Metric implementations: confusion counts for the classification metrics, average ranks for Spearman.
#include "model/data/metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>

namespace smx::data {
namespace {

template <typename T>
void check_sizes(const char* what, const std::vector<T>& pred, const std::vector<T>& gold) {
  if (pred.size() != gold.size())
    throw std::invalid_argument(std::string(what) + ": " + std::to_string(pred.size()) + " predictions for " +
                                std::to_string(gold.size()) + " gold values");
  if (pred.empty()) throw std::invalid_argument(std::string(what) + ": no values to score");
}

/// Ranks 1..n; tied values share the average of the ranks they span.
std::vector<double> average_ranks(const std::vector<double>& v) {
  std::vector<size_t> order(v.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
  std::vector<double> ranks(v.size());
  for (size_t i = 0; i < order.size();) {
    size_t j = i + 1;
    while (j < order.size() && v[order[j]] == v[order[i]]) ++j;
    const double rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2.0;  // mean of i+1 .. j
    for (size_t k = i; k < j; ++k) ranks[order[k]] = rank;
    i = j;
  }
  return ranks;
}

}  // namespace

double accuracy(const std::vector<int>& pred, const std::vector<int>& gold) {
  check_sizes("accuracy", pred, gold);
  size_t hits = 0;
  for (size_t i = 0; i < pred.size(); ++i) hits += pred[i] == gold[i];
  return static_cast<double>(hits) / static_cast<double>(pred.size());
}

double f1_binary(const std::vector<int>& pred, const std::vector<int>& gold, int positive) {
  check_sizes("f1_binary", pred, gold);
  double tp = 0, fp = 0, fn = 0;
  for (size_t i = 0; i < pred.size(); ++i) {
    const bool p = pred[i] == positive, g = gold[i] == positive;
    tp += p && g;
    fp += p && !g;
    fn += !p && g;
  }
  return tp == 0 ? 0.0 : 2 * tp / (2 * tp + fp + fn);
}

double macro_f1(const std::vector<int>& pred, const std::vector<int>& gold, int num_labels) {
  check_sizes("macro_f1", pred, gold);
  if (num_labels <= 0) throw std::invalid_argument("macro_f1: num_labels must be > 0, got " + std::to_string(num_labels));
  std::vector<double> tp(num_labels, 0), n_pred(num_labels, 0), n_gold(num_labels, 0);
  for (size_t i = 0; i < pred.size(); ++i) {
    for (int v : {pred[i], gold[i]})
      if (v < 0 || v >= num_labels)
        throw std::invalid_argument("macro_f1: label " + std::to_string(v) + " is not in [0, " +
                                    std::to_string(num_labels) + ")");
    ++n_pred[pred[i]];
    ++n_gold[gold[i]];
    if (pred[i] == gold[i]) ++tp[pred[i]];
  }
  double sum = 0;
  int classes = 0;
  for (int c = 0; c < num_labels; ++c) {
    if (n_pred[c] + n_gold[c] == 0) continue;
    sum += 2 * tp[c] / (n_pred[c] + n_gold[c]);  // = 2 tp / (2 tp + fp + fn)
    ++classes;
  }
  return sum / classes;
}

double matthews(const std::vector<int>& pred, const std::vector<int>& gold) {
  check_sizes("matthews", pred, gold);
  double tp = 0, tn = 0, fp = 0, fn = 0;
  for (size_t i = 0; i < pred.size(); ++i) {
    for (int v : {pred[i], gold[i]})
      if (v != 0 && v != 1)
        throw std::invalid_argument("matthews: binary labels must be 0 or 1, got " + std::to_string(v));
    const bool p = pred[i] == 1, g = gold[i] == 1;
    tp += p && g;
    tn += !p && !g;
    fp += p && !g;
    fn += !p && g;
  }
  const double denominator = (tp + fp) * (tp + fn) * (tn + fp) * (tn + fn);
  return denominator == 0 ? 0.0 : (tp * tn - fp * fn) / std::sqrt(denominator);
}

double pearson(const std::vector<double>& x, const std::vector<double>& y) {
  check_sizes("pearson", x, y);
  const double n = static_cast<double>(x.size());
  const double mx = std::accumulate(x.begin(), x.end(), 0.0) / n;
  const double my = std::accumulate(y.begin(), y.end(), 0.0) / n;
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double dx = x[i] - mx, dy = y[i] - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  return sxx == 0 || syy == 0 ? 0.0 : sxy / std::sqrt(sxx * syy);
}

double spearman(const std::vector<double>& x, const std::vector<double>& y) {
  check_sizes("spearman", x, y);
  return pearson(average_ranks(x), average_ranks(y));
}

std::vector<MetricValue> evaluate_classification(const TaskInfo& info, const std::vector<int>& pred,
                                                 const std::vector<int>& gold) {
  if (info.num_labels <= 0)
    throw std::invalid_argument("evaluate_classification: task '" + info.name + "' is a regression task");
  check_sizes("evaluate_classification", pred, gold);
  std::vector<MetricValue> out;
  for (MetricKind kind : info.metrics) {
    switch (kind) {
      case MetricKind::Accuracy: out.push_back({kind, accuracy(pred, gold)}); break;
      case MetricKind::F1: out.push_back({kind, f1_binary(pred, gold, 1)}); break;
      case MetricKind::MacroF1: out.push_back({kind, macro_f1(pred, gold, info.num_labels)}); break;
      case MetricKind::Matthews: out.push_back({kind, matthews(pred, gold)}); break;
      case MetricKind::Pearson:
      case MetricKind::Spearman:
        throw std::invalid_argument("evaluate_classification: " + to_string(kind) + " is a regression metric (task '" +
                                    info.name + "')");
    }
  }
  return out;
}

std::vector<MetricValue> evaluate_regression(const TaskInfo& info, const std::vector<double>& pred,
                                             const std::vector<double>& gold) {
  if (info.num_labels != 0)
    throw std::invalid_argument("evaluate_regression: task '" + info.name + "' is a classification task");
  check_sizes("evaluate_regression", pred, gold);
  std::vector<MetricValue> out;
  for (MetricKind kind : info.metrics) {
    switch (kind) {
      case MetricKind::Pearson: out.push_back({kind, pearson(pred, gold)}); break;
      case MetricKind::Spearman: out.push_back({kind, spearman(pred, gold)}); break;
      default:
        throw std::invalid_argument("evaluate_regression: " + to_string(kind) + " is a classification metric (task '" +
                                    info.name + "')");
    }
  }
  return out;
}

}  // namespace smx::data
