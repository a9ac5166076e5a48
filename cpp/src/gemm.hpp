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
#include <new>
#include <type_traits>

#include "rnnbptt/buffer.hpp"
#include "rnnbptt/config.hpp"
#include "rnnbptt/error.hpp"
#include "rnnbptt/threads.hpp"

namespace rnnbptt::detail {

// The grid of output tiles: at most 256 x 256 each; while there are fewer than 8 tiles, the
// longer side's count is doubled as long as its tiles keep 128 or more rows or columns (each
// tile packs its share of A and B again, so smaller ones pack more than they compute, and
// doubling keeps the count even, so 2, 4 or 8 threads share the tiles evenly; stopping at 4
// tiles made dW_hh at h = 512 10% faster on 2 threads, but would leave 8 threads half idle).
// Each side is cut evenly, on multiples of 8, so no sliver is left over (65 rows are one tile
// of 65, not 64 + 1: a one-row tile packs as much of B as a full one). A function of the shape
// alone.
struct TileGrid {
  Index m = 0, n = 0;                  // the output's size
  Index row_tiles = 0, col_tiles = 0;  // tiles down and across
  Index count() const { return row_tiles * col_tiles; }
  Index row(Index i) const { return cut(m, row_tiles, i); }  // first row of tile row i
  Index col(Index j) const { return cut(n, col_tiles, j); }  // first column of tile column j
  Index max_rows() const { return (m + row_tiles - 1) / row_tiles + 8; }
  Index max_cols() const { return (n + col_tiles - 1) / col_tiles + 8; }
  // Boundary i of `size` cut into `count`: the even cut rounded down to a multiple of 8 (Eigen's
  // kernel and packing run whole blocks of 8; tiles of 255 rows run a remainder path in each).
  static Index cut(Index size, Index count, Index i) { return i >= count ? size : size * i / count / 8 * 8; }
};

inline TileGrid tile_grid(Index m, Index n) {
  const auto ceil_div = [](Index a, Index b) { return (a + b - 1) / b; };
  Index r = std::max<Index>(1, ceil_div(m, 256)), c = std::max<Index>(1, ceil_div(n, 256));
  while (r * c < 8) {
    const bool rows_can = ceil_div(m, 2 * r) >= 128, cols_can = ceil_div(n, 2 * c) >= 128;
    if (rows_can && (!cols_can || ceil_div(m, r) >= ceil_div(n, c)))
      r *= 2;
    else if (cols_can)
      c *= 2;
    else
      break;
  }
  TileGrid grid;
  grid.m = m;
  grid.n = n;
  grid.row_tiles = m > 0 ? r : 0;
  grid.col_tiles = n > 0 ? c : 0;
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

// Eigen's blocking description, filled with our sizes and our buffers. Eigen computes a row-major
// C = A B as the column-major C^T = B^T A^T: its left operand, packed into blockA in blocks of
// mc x kc, is our B, and its right operand, packed into blockB in blocks of kc x nc, is our A.
template <class Scalar>
class FixedBlocking : public Eigen::internal::level3_blocking<Scalar, Scalar> {
 public:
  FixedBlocking(Scalar* pack_lhs, Scalar* pack_rhs, Index mc, Index nc, Index kc) {
    this->m_blockA = pack_lhs;
    this->m_blockB = pack_rhs;
    this->m_mc = mc;
    this->m_nc = nc;
    this->m_kc = kc;
  }
};

// C (rows x cols, row-major) += A (rows x depth) B (depth x cols); A and B in the given orders.
template <class Scalar, int LhsOrder, int RhsOrder>
void tile_product(Index rows, Index cols, Index depth, const Scalar* A, Index lda, const Scalar* B, Index ldb,
                  Scalar* C, Index ldc, Index tile_rows, Index tile_cols) {
  thread_local Buffer<Scalar> pack_a, pack_b;  // per thread, grown once: kc x tile_rows, kc x tile_cols
  const Index kc = std::min(depth, depth_block);
  const auto size_a = static_cast<std::size_t>(kc * tile_rows), size_b = static_cast<std::size_t>(kc * tile_cols);
  try {
    if (pack_a.size() < size_a) pack_a.resize(size_a);
    if (pack_b.size() < size_b) pack_b.resize(size_b);
  } catch (const std::bad_alloc&) {
    throw AllocationError(concat("matrix product: cannot allocate ", (size_a + size_b) * sizeof(Scalar),
                                 " bytes for the packing buffers of a ", rows, " x ", cols, " tile"));
  }
  // Eigen's mc runs along our columns and its nc along our rows, so a whole tile is one block
  // each way and each operand is packed once per depth block. (With mc = tile_rows, a 65 x 128
  // tile was cut into column blocks of 65 and 63, and our A was packed again for each.)
  FixedBlocking<Scalar> blocking(pack_b.data(), pack_a.data(), tile_cols, tile_rows, kc);
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
    const Index ti = t / grid.col_tiles, tj = t % grid.col_tiles;
    const Index i = grid.row(ti), j = grid.col(tj);
    const Index rows = grid.row(ti + 1) - i, cols = grid.col(tj + 1) - j;
    Scalar* c_tile = c + i * ldc + j;
    if (!accumulate)
      for (Index r = 0; r < rows; ++r) std::fill(c_tile + r * ldc, c_tile + r * ldc + cols, Scalar(0));
    const Scalar* a_tile = lhs_order == Eigen::RowMajor ? a + i * lda : a + i;
    const Scalar* b_tile = rhs_order == Eigen::RowMajor ? b + j : b + j * ldb;
    tile_product<Scalar, lhs_order, rhs_order>(rows, cols, k, a_tile, lda, b_tile, ldb, c_tile, ldc,
                                               grid.max_rows(), grid.max_cols());
  };
  // One thread runs outside any parallel region (libgomp allocates a team for a serialized one).
  parallel_for(threads, tiles, run_tile);
}

}  // namespace rnnbptt::detail
