// Evaluation metrics of the GLUE/SuperGLUE tasks: accuracy, binary and macro F1, Matthews
// correlation, Pearson and Spearman correlation, and the per-task metric lists.
// Every function throws std::invalid_argument on empty input or mismatched sizes.
#pragma once

#include <vector>

#include "model/data/tasks.h"

namespace smx::data {

/// Fraction of positions where pred == gold.
double accuracy(const std::vector<int>& pred, const std::vector<int>& gold);
/// F1 of class `positive` against all others; 0 when there are no true positives.
double f1_binary(const std::vector<int>& pred, const std::vector<int>& gold, int positive = 1);
/// Unweighted mean of the per-class F1 over the classes that occur in gold or pred (as
/// scikit-learn's f1_score(average="macro")); labels must lie in [0, num_labels).
double macro_f1(const std::vector<int>& pred, const std::vector<int>& gold, int num_labels);
/// Matthews correlation of a binary task (labels 0 and 1); 0 when undefined (a zero denominator).
double matthews(const std::vector<int>& pred, const std::vector<int>& gold);
/// Pearson correlation; 0 when undefined (either side constant).
double pearson(const std::vector<double>& x, const std::vector<double>& y);
/// Spearman rank correlation: Pearson of the ranks, tied values sharing their average rank.
double spearman(const std::vector<double>& x, const std::vector<double>& y);

struct MetricValue {
  MetricKind kind;
  double value;
};

/// The task's metrics (info.metrics, headline first) for class predictions; F1 is of class 1.
std::vector<MetricValue> evaluate_classification(const TaskInfo& info, const std::vector<int>& pred,
                                                 const std::vector<int>& gold);
/// The task's metrics for a regression task (Pearson, Spearman).
std::vector<MetricValue> evaluate_regression(const TaskInfo& info, const std::vector<double>& pred,
                                             const std::vector<double>& gold);

}  // namespace smx::data
