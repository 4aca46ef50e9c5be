#include "widgets/linalg.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <functional>

namespace smx::widgets::linalg {

namespace {

// Four partial sums: the loop pipelines (and vectorises) without -ffast-math.
double dot(const double* __restrict x, const double* __restrict y, int n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += x[i] * y[i];
    s1 += x[i + 1] * y[i + 1];
    s2 += x[i + 2] * y[i + 2];
    s3 += x[i + 3] * y[i + 3];
  }
  for (; i < n; ++i) s0 += x[i] * y[i];
  return (s0 + s1) + (s2 + s3);
}

// Columns p != q never overlap; saying so lets the compiler vectorise.
void rotate(double* __restrict x, double* __restrict y, int n, double c, double s) {
  for (int i = 0; i < n; ++i) {
    const double xi = x[i], yi = y[i];
    x[i] = c * xi - s * yi;
    y[i] = s * xi + c * yi;
  }
}

}  // namespace

std::vector<double> singular_values(int rows, int cols, const std::vector<float>& values) {
  if (rows <= 0 || cols <= 0 || values.size() != static_cast<size_t>(rows) * static_cast<size_t>(cols)) return {};
  for (float v : values)
    if (!std::isfinite(v)) return {};

  // Hestenes' one-sided Jacobi rotates pairs of columns until all are
  // orthogonal; the column norms are then the singular values. It works on
  // the n <= m columns of an m x n matrix, so a wide matrix is transposed
  // (same singular values, fewer pairs). Column-major, in double.
  const bool transpose = cols > rows;
  const int m = transpose ? cols : rows, n = transpose ? rows : cols;
  std::vector<double> a(static_cast<size_t>(m) * n);  // [n columns of m]
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) {
      const double v = values[static_cast<size_t>(r) * cols + c];
      if (transpose) a[static_cast<size_t>(r) * m + c] = v;  // column r of A^T is row r of A
      else a[static_cast<size_t>(c) * m + r] = v;
    }
  auto col = [&](int j) { return a.data() + static_cast<size_t>(j) * m; };

  std::vector<double> norm2(n);  // squared column norms, kept up to date by the rotations
  double frobenius2 = 0;
  for (int j = 0; j < n; ++j) frobenius2 += dot(col(j), col(j), m);
  if (frobenius2 == 0) return std::vector<double>(n, 0.0);
  // Columns shorter than this carry singular values far below double
  // precision of the largest; rotating them only shuffles rounding noise.
  const double negligible = frobenius2 * 1e-40;
  const double tol = std::max(1, m) * DBL_EPSILON;  // orthogonal enough: |a_p.a_q| <= tol |a_p| |a_q|
  constexpr int kMaxSweeps = 60;                     // converges quadratically; 6-10 sweeps in practice

  for (int sweep = 0; sweep < kMaxSweeps; ++sweep) {
    // Exact norms once per sweep, so the cheap updates below never drift.
    for (int j = 0; j < n; ++j) norm2[j] = dot(col(j), col(j), m);
    // de Rijk's ordering: longest columns first; it saves a quarter of the sweeps.
    for (int j = 0; j + 1 < n; ++j) {
      const int longest = static_cast<int>(std::max_element(norm2.begin() + j, norm2.end()) - norm2.begin());
      if (longest == j) continue;
      std::swap_ranges(col(j), col(j) + m, col(longest));
      std::swap(norm2[j], norm2[longest]);
    }
    bool rotated = false;
    for (int p = 0; p + 1 < n; ++p) {
      double* ap = col(p);
      for (int q = p + 1; q < n; ++q) {
        const double alpha = norm2[p], beta = norm2[q];
        if (alpha <= negligible || beta <= negligible) continue;
        double* aq = col(q);
        const double gamma = dot(ap, aq, m);
        if (std::abs(gamma) <= tol * std::sqrt(alpha) * std::sqrt(beta)) continue;
        rotated = true;
        // The rotation that makes columns p and q orthogonal (the smaller
        // of the two angles, for stability).
        const double zeta = (beta - alpha) / (2 * gamma);
        const double t = (zeta >= 0 ? 1.0 : -1.0) / (std::abs(zeta) + std::sqrt(1 + zeta * zeta));
        const double c = 1 / std::sqrt(1 + t * t), s = c * t;
        rotate(ap, aq, m, c, s);
        norm2[p] = alpha - t * gamma;
        norm2[q] = beta + t * gamma;
      }
    }
    if (!rotated) break;
  }

  std::vector<double> sigma(n);
  for (int j = 0; j < n; ++j) sigma[j] = std::sqrt(dot(col(j), col(j), m));
  std::sort(sigma.begin(), sigma.end(), std::greater<double>());
  return sigma;
}

}  // namespace smx::widgets::linalg
