// Matrix products whose result depends neither on the thread count nor on the CPU's cache
// sizes, and that never allocate in steady state.
//
// Eigen's own product picks its blocking from the number of threads and from the caches it
// detects, and packs into buffers on the stack or, when they are large, on the heap. Here the
// output is cut into tiles on a grid fixed by the shape alone; each tile is one call of
// Eigen's sequential GEMM kernel with blocking sizes we fix (depth blocks of 256) and packing
// buffers owned by the calling thread, grown once and then reused. OpenMP spreads the tiles.
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <type_traits>

#include "rnnbptt/buffer.hpp"
#include "rnnbptt/config.hpp"
#include "rnnbptt/threads.hpp"

namespace rnnbptt::detail {

// The grid of output tiles: at most 256 x 256 each, and at least 8 tiles (to keep the threads
// busy) as long as a tile keeps 128 or more rows and columns (each tile packs its share of A
// and B again, so smaller ones pack more than they compute); each side is cut evenly (rounded
// up to a multiple of 8), so no sliver is left over (65 rows are one tile of 65, not 64 + 1:
// a one-row tile packs as much of B as a full one). A function of the shape alone.
struct TileGrid {
  Index rows = 0, cols = 0;            // tile sides
  Index row_tiles = 0, col_tiles = 0;  // tiles down and across
  Index count() const { return row_tiles * col_tiles; }
};

inline TileGrid tile_grid(Index m, Index n) {
  const auto ceil_div = [](Index a, Index b) { return (a + b - 1) / b; };
  Index r = std::max<Index>(1, ceil_div(m, 256)), c = std::max<Index>(1, ceil_div(n, 256));
  while (r * c < 8) {
    const bool rows_can = ceil_div(m, r + 1) >= 128, cols_can = ceil_div(n, c + 1) >= 128;
    if (rows_can && (!cols_can || ceil_div(m, r) >= ceil_div(n, c)))
      ++r;
    else if (cols_can)
      ++c;
    else
      break;
  }
  TileGrid grid;
  grid.rows = std::max<Index>(1, ceil_div(ceil_div(m, r), 8) * 8);
  grid.cols = std::max<Index>(1, ceil_div(ceil_div(n, c), 8) * 8);
  grid.row_tiles = ceil_div(m, grid.rows);
  grid.col_tiles = ceil_div(n, grid.cols);
  return grid;
}

constexpr Index depth_block = 256;

// body(i) for i in [0, count), statically scheduled over `threads` threads. With one thread it
// runs here, outside any parallel region: libgomp allocates a team for every region, even a
// serialized one (an `if (false)` clause), and a steady-state step must not allocate.
template <class Body>
void parallel_for(int threads, Index count, Body&& body) {
#ifdef _OPENMP
  if (threads > 1) {
#pragma omp parallel for schedule(static) num_threads(threads)
    for (Index i = 0; i < count; ++i) body(i);
    return;
  }
#endif
  (void)threads;
  for (Index i = 0; i < count; ++i) body(i);
}

// Eigen's blocking description, filled with our sizes and our buffers.
template <class Scalar>
class FixedBlocking : public Eigen::internal::level3_blocking<Scalar, Scalar> {
 public:
  FixedBlocking(Scalar* pack_a, Scalar* pack_b, Index mc, Index nc, Index kc) {
    this->m_blockA = pack_a;
    this->m_blockB = pack_b;
    this->m_mc = mc;
    this->m_nc = nc;
    this->m_kc = kc;
  }
};

// C (rows x cols, row-major) += A (rows x depth) B (depth x cols); A and B in the given orders.
template <class Scalar, int LhsOrder, int RhsOrder>
void tile_product(Index rows, Index cols, Index depth, const Scalar* A, Index lda, const Scalar* B, Index ldb,
                  Scalar* C, Index ldc, Index tile_rows, Index tile_cols) {
  thread_local Buffer<Scalar> pack_a, pack_b;  // per thread, grown once
  const Index kc = std::min(depth, depth_block);
  const auto size_a = static_cast<std::size_t>(kc * tile_rows), size_b = static_cast<std::size_t>(kc * tile_cols);
  if (pack_a.size() < size_a) pack_a.resize(size_a);
  if (pack_b.size() < size_b) pack_b.resize(size_b);
  FixedBlocking<Scalar> blocking(pack_a.data(), pack_b.data(), tile_rows, tile_cols, kc);
  Eigen::internal::general_matrix_matrix_product<Index, Scalar, LhsOrder, false, Scalar, RhsOrder, false,
                                                 Eigen::RowMajor, 1>::run(rows, cols, depth, A, lda, B, ldb, C, 1,
                                                                          ldc, Scalar(1), blocking);
}

template <class Expr>
constexpr int storage_order() {
  return (std::decay_t<Expr>::Flags & Eigen::RowMajorBit) ? Eigen::RowMajor : Eigen::ColMajor;
}

// C = A B, or C += A B with `accumulate`, on at most `max_threads` threads (0: the library's
// setting). C is row-major; every operand has unit inner stride.
template <class Dst, class Lhs, class Rhs>
void gemm(Dst&& C, const Lhs& A, const Rhs& B, bool accumulate = false, int max_threads = 0) {
  using Scalar = typename std::decay_t<Dst>::Scalar;
  constexpr int lhs_order = storage_order<Lhs>(), rhs_order = storage_order<Rhs>();
  static_assert(storage_order<Dst>() == Eigen::RowMajor, "gemm writes row-major results");
  eigen_assert(A.innerStride() == 1 && B.innerStride() == 1 && C.innerStride() == 1);
  const Index m = C.rows(), n = C.cols(), k = A.cols();
  const Scalar* a = A.data();
  const Scalar* b = B.data();
  Scalar* c = C.data();
  const Index lda = A.outerStride(), ldb = B.outerStride(), ldc = C.outerStride();
  const int available = max_threads > 0 ? max_threads : get_num_threads();
  const TileGrid grid = tile_grid(m, n);
  const Index tiles = grid.count();
  const double work = static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  const int threads = static_cast<int>(
      std::max<Index>(1, std::min<Index>({available, tiles, static_cast<Index>(work / 262144.0)})));
  const auto run_tile = [&](Index t) {
    const Index i = (t / grid.col_tiles) * grid.rows, j = (t % grid.col_tiles) * grid.cols;
    const Index rows = std::min(grid.rows, m - i), cols = std::min(grid.cols, n - j);
    Scalar* c_tile = c + i * ldc + j;
    if (!accumulate)
      for (Index r = 0; r < rows; ++r) std::fill(c_tile + r * ldc, c_tile + r * ldc + cols, Scalar(0));
    const Scalar* a_tile = lhs_order == Eigen::RowMajor ? a + i * lda : a + i;
    const Scalar* b_tile = rhs_order == Eigen::RowMajor ? b + j : b + j * ldb;
    tile_product<Scalar, lhs_order, rhs_order>(rows, cols, k, a_tile, lda, b_tile, ldb, c_tile, ldc, grid.rows,
                                               grid.cols);
  };
  // One thread runs outside any parallel region (libgomp allocates a team for a serialized one).
  parallel_for(threads, tiles, run_tile);
}

}  // namespace rnnbptt::detail
