// Small dense linear algebra for the views: the singular values of the
// matrices the mixing view shows (at most a few hundred rows), without a
// LAPACK dependency. Plain C++, no Qt.
#pragma once

#include <vector>

namespace smx::widgets::linalg {

/// Singular values of the row-major rows x cols matrix `values`, largest
/// first, min(rows, cols) of them. One-sided Jacobi (Hestenes) in double
/// precision: small singular values come out with high relative accuracy,
/// which a log-scale spectrum needs. A 128x128 matrix takes a few ms.
/// Returns an empty vector for an empty matrix, a size mismatch
/// (values.size() != rows * cols) or any NaN/Inf value.
std::vector<double> singular_values(int rows, int cols, const std::vector<float>& values);

}  // namespace smx::widgets::linalg
