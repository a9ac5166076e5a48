// Matrix products whose result depends neither on the thread count nor on the CPU's cache
// sizes, and that never allocate in steady state.
//
// Eigen's own product picks its blocking from the number of threads and from the caches it
// detects, and packs into buffers on the stack or, when they are large, on the heap. Here the
// output is cut into tiles on a grid fixed by the shape alone, and each tile is computed by
// Eigen's packing routines and GEMM kernel with blocking sizes we fix (depth blocks of 256),
// into packing buffers owned by the calling thread, grown once and then reused. OpenMP gives
// each thread an even share of the tiles (tiles_product).
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <exception>
#include <new>
#include <type_traits>

#include "rnnbptt/core/buffer.hpp"
#include "rnnbptt/core/config.hpp"
#include "rnnbptt/core/error.hpp"
#include "rnnbptt/kernels/threads.hpp"

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
  struct Tile {
    Index row, col, rows, cols;  // first row and column, size
  };
  Tile tile(Index t) const {  // tile t in row-major order
    const Index ti = t / col_tiles, tj = t % col_tiles;
    return {row(ti), col(tj), row(ti + 1) - row(ti), col(tj + 1) - col(tj)};
  }
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
// Products summed over at least this many rows (e.g. the weight gradients, over T n rows) share
// each thread's packed blocks between its tiles, depth block by depth block (tiles_product),
// when the packed B blocks of the thread's tile columns fit in max_kept_bytes. Shallower ones
// (the output layer, W_qh^T g^o: a few depth blocks) compute one tile at a time, which keeps
// the tile's output in cache over its depth blocks (sharing made the output layer at M 10-15%
// slower), and so do products too wide to keep B.
constexpr Index shared_packing_depth = 8 * depth_block;
constexpr std::size_t max_kept_bytes = std::size_t(4) << 20;

// body(i) for i in [0, count), statically scheduled over `threads` threads. With one thread it
// runs here, outside any parallel region: libgomp allocates a team for every region, even a
// serialized one (an `if (false)` clause), and a steady-state step must not allocate. An
// exception thrown by a body (a packing buffer that cannot be had) would end the program
// inside the region: the first one is kept, the bodies left are skipped, and it is rethrown
// after the region.
template <class Body>
void parallel_for(int threads, Index count, Body&& body) {
#ifdef _OPENMP
  if (threads > 1) {
    std::exception_ptr error;
    bool failed = false;
#pragma omp parallel for schedule(static) num_threads(threads)
    for (Index i = 0; i < count; ++i) {
      bool skip;
#pragma omp atomic read
      skip = failed;
      if (skip) continue;
      try {
        body(i);
      } catch (...) {
#pragma omp critical(rnnbptt_parallel_for_error)
        if (!failed) {
          error = std::current_exception();
#pragma omp atomic write
          failed = true;
        }
      }
    }
    if (error) std::rethrow_exception(error);
    return;
  }
#endif
  (void)threads;
  for (Index i = 0; i < count; ++i) body(i);
}

// Tiles first..last - 1 of the grid (row-major order): C (m x n, row-major) = A (m x depth)
// B (depth x n), or C += A B with `accumulate`; A and B in the given orders. Each tile is what
// Eigen's sequential GEMM does for it with our blocking (depth blocks of kc, each operand of the
// tile one block): for each depth block, the tile's rows of A and columns of B are packed, and
// Eigen's kernel adds their product into the tile. The kernel calls, their operands and their
// order per tile do not depend on which thread runs which tiles, so neither does any number.
//
// Eigen computes a row-major C = A B as the column-major C^T = B^T A^T: its left operand is
// our B (its rows are our columns), its right operand our A.
template <class Scalar, int LhsOrder, int RhsOrder>
void tiles_product(const TileGrid& grid, Index first, Index last, Index depth, const Scalar* A, Index lda,
                   const Scalar* B, Index ldb, Scalar* C, Index ldc, bool accumulate) {
  using namespace Eigen::internal;
  constexpr int eigen_lhs_order = RhsOrder == Eigen::RowMajor ? Eigen::ColMajor : Eigen::RowMajor;
  constexpr int eigen_rhs_order = LhsOrder == Eigen::RowMajor ? Eigen::ColMajor : Eigen::RowMajor;
  using Traits = gebp_traits<Scalar, Scalar>;
  using LhsMapper = const_blas_data_mapper<Scalar, Index, eigen_lhs_order>;
  using RhsMapper = const_blas_data_mapper<Scalar, Index, eigen_rhs_order>;
  using ResMapper = blas_data_mapper<Scalar, Index, Eigen::ColMajor, Eigen::Unaligned, 1>;
  gemm_pack_lhs<Scalar, Index, LhsMapper, Traits::mr, Traits::LhsProgress, typename Traits::LhsPacket4Packing,
                eigen_lhs_order>
      pack_lhs;
  gemm_pack_rhs<Scalar, Index, RhsMapper, Traits::nr, eigen_rhs_order> pack_rhs;
  gebp_kernel<Scalar, Scalar, Index, ResMapper, Traits::mr, Traits::nr, false, false> gebp;
  const LhsMapper lhs(B, ldb);
  const RhsMapper rhs(A, lda);
  const ResMapper res(C, ldc);
  const auto zero = [&](const TileGrid::Tile& tile) {
    if (!accumulate)
      for (Index r = tile.row; r < tile.row + tile.rows; ++r)
        std::fill(C + r * ldc + tile.col, C + r * ldc + tile.col + tile.cols, Scalar(0));
  };

  // Packed blocks: one of B's columns per tile column kept (shared) or one in turn, then one of
  // A's rows, each at a multiple of 64 bytes from the buffer's start (aligned to Eigen's
  // packets). A thread whose tiles lie in one tile row meets each tile column once and keeps
  // none. With shared blocks, each depth block runs over the thread's tiles in row-major order:
  // a tile row's A block is packed when the row is entered and serves the rest of the row; a
  // tile column's B block is packed the first time the thread meets the column (the tile one
  // row up is not its own) and serves the rows below.
  const Index kc = std::min(depth, depth_block);
  const bool one_row = (last - 1) / grid.col_tiles == first / grid.col_tiles;
  constexpr Index align = 64 / static_cast<Index>(sizeof(Scalar));
  const auto rounded = [](Index size) { return (size + align - 1) / align * align; };
  const Index col_block = rounded(kc * grid.max_cols()), row_block = rounded(kc * grid.max_rows());
  const Index kept = one_row ? 1 : grid.col_tiles;
  const bool shared =
      depth >= shared_packing_depth && static_cast<std::size_t>(kept * col_block) * sizeof(Scalar) <= max_kept_bytes;
  const Index col_slots = shared ? kept : 1;
  const auto size = static_cast<std::size_t>(col_slots * col_block + row_block);
  thread_local Buffer<Scalar> packed;  // per thread, grown once
  try {
    if (packed.size() < size) packed.resize(size);
  } catch (const std::bad_alloc&) {
    throw AllocationError(concat("matrix product: cannot allocate ", size * sizeof(Scalar),
                                 " bytes for the packing buffers of a ", grid.m, " x ", grid.n, " product"));
  }
  Scalar* const block_rows = packed.data() + col_slots * col_block;  // our A: kc x tile rows
  if (!shared) {  // one tile at a time: its output stays in cache over the depth blocks
    for (Index t = first; t < last; ++t) {
      const TileGrid::Tile tile = grid.tile(t);
      zero(tile);
      for (Index k = 0; k < depth; k += kc) {
        const Index depth_k = std::min(k + kc, depth) - k;
        pack_rhs(block_rows, rhs.getSubMapper(k, tile.row), depth_k, tile.rows);
        pack_lhs(packed.data(), lhs.getSubMapper(tile.col, k), depth_k, tile.cols);
        gebp(res.getSubMapper(tile.col, tile.row), packed.data(), block_rows, tile.cols, depth_k, tile.rows, Scalar(1));
      }
    }
    return;
  }
  for (Index k = 0; k < depth; k += kc) {
    const Index depth_k = std::min(k + kc, depth) - k;
    for (Index t = first; t < last; ++t) {
      const TileGrid::Tile tile = grid.tile(t);
      const Index tj = t % grid.col_tiles;
      Scalar* const block_cols = packed.data() + (one_row ? 0 : tj) * col_block;  // our B
      if (t == first || tj == 0) pack_rhs(block_rows, rhs.getSubMapper(k, tile.row), depth_k, tile.rows);
      if (one_row || t - grid.col_tiles < first)
        pack_lhs(block_cols, lhs.getSubMapper(tile.col, k), depth_k, tile.cols);
      if (k == 0) zero(tile);
      gebp(res.getSubMapper(tile.col, tile.row), block_cols, block_rows, tile.cols, depth_k, tile.rows, Scalar(1));
    }
  }
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
  const int threads =
      static_cast<int>(std::max<Index>(1, std::min<Index>({available, tiles, static_cast<Index>(work / 262144.0)})));
  // Each thread takes an even share of the tiles, in row-major order (one thread outside any
  // parallel region: libgomp allocates a team for a serialized one).
  parallel_for(threads, threads, [&](Index thread) {
    const Index first = tiles * thread / threads, last = tiles * (thread + 1) / threads;
    if (first < last)
      tiles_product<Scalar, lhs_order, rhs_order>(grid, first, last, k, a, lda, b, ldb, c, ldc, accumulate);
  });
}

}  // namespace rnnbptt::detail
