// Matrix products whose result does not depend on the thread count. Eigen's own parallel GEMM
// chooses its blocking by the number of threads, which changes the order of the sums; here the
// output is cut into tiles on a fixed grid, each tile is one single-threaded Eigen product
// (the library is built with EIGEN_DONT_PARALLELIZE), and OpenMP spreads the tiles.
#pragma once

#include <Eigen/Core>

#include <algorithm>

#include "rnnbptt/config.hpp"
#include "rnnbptt/threads.hpp"

namespace rnnbptt::detail {

constexpr Index tile_rows = 128;
constexpr Index tile_cols = 128;

// C = A B, or C += A B with `accumulate`.
template <class Dst, class Lhs, class Rhs>
void gemm(Dst&& C, const Lhs& A, const Rhs& B, bool accumulate = false) {
  const Index m = C.rows(), n = C.cols(), k = A.cols();
  const Index row_tiles = (m + tile_rows - 1) / tile_rows, col_tiles = (n + tile_cols - 1) / tile_cols;
  const Index tiles = row_tiles * col_tiles;
  const double work = static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  const int threads = static_cast<int>(
      std::max<Index>(1, std::min<Index>({get_num_threads(), tiles, static_cast<Index>(work / 262144.0)})));
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
  for (Index tile = 0; tile < tiles; ++tile) {
    const Index i = (tile / col_tiles) * tile_rows, j = (tile % col_tiles) * tile_cols;
    const Index rows = std::min(tile_rows, m - i), cols = std::min(tile_cols, n - j);
    auto dst = C.block(i, j, rows, cols);
    if (accumulate)
      dst.noalias() += A.middleRows(i, rows) * B.middleCols(j, cols);
    else
      dst.noalias() = A.middleRows(i, rows) * B.middleCols(j, cols);
  }
}

}  // namespace rnnbptt::detail
