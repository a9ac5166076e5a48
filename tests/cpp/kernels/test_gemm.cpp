// The batched products (cpp/src/kernels/gemm.hpp) against Eigen's own sequential GEMM driver run tile by
// tile with the same blocking (depth blocks of 256, a whole tile as one block each way): bit for
// bit, at 1 to 4 threads, for shallow products (one tile at a time) and deep ones (packed
// operands shared between a thread's tiles), every storage order of the operands, with and
// without accumulation, and degenerate sizes.
#include <gtest/gtest.h>

#include <Eigen/Core>

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "kernels/gemm.hpp"
#include "rnnbptt/kernels/threads.hpp"

namespace {

using rnnbptt::Index;
using rnnbptt::detail::TileGrid;

template <int Order>
using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Order>;

// Eigen's blocking description with our sizes and buffers, as Eigen's sequential product reads it.
class Blocking : public Eigen::internal::level3_blocking<float, float> {
 public:
  Blocking(float* lhs, float* rhs, Index mc, Index nc, Index kc) {
    this->m_blockA = lhs;
    this->m_blockB = rhs;
    this->m_mc = mc;
    this->m_nc = nc;
    this->m_kc = kc;
  }
};

// C = A B (or C += A B) tile by tile through Eigen's general_matrix_matrix_product: for a
// row-major C it computes C^T = B^T A^T, so its mc runs along our columns.
template <int LhsOrder, int RhsOrder>
void reference_product(Matrix<Eigen::RowMajor>& C, const Matrix<LhsOrder>& A, const Matrix<RhsOrder>& B,
                       bool accumulate) {
  const Index m = C.rows(), n = C.cols(), depth = A.cols();
  const TileGrid grid = rnnbptt::detail::tile_grid(m, n);
  if (grid.count() == 0) return;  // an empty C
  const Index kc = std::min(depth, rnnbptt::detail::depth_block);
  std::vector<float> lhs(static_cast<std::size_t>(std::max<Index>(1, kc * grid.max_cols())) + 64),
      rhs(static_cast<std::size_t>(std::max<Index>(1, kc * grid.max_rows())) + 64);
  for (Index t = 0; t < grid.count(); ++t) {
    const TileGrid::Tile tile = grid.tile(t);
    if (!accumulate) C.block(tile.row, tile.col, tile.rows, tile.cols).setZero();
    const float* a = LhsOrder == Eigen::RowMajor ? A.data() + tile.row * A.outerStride() : A.data() + tile.row;
    const float* b = RhsOrder == Eigen::RowMajor ? B.data() + tile.col : B.data() + tile.col * B.outerStride();
    Blocking blocking(lhs.data(), rhs.data(), grid.max_cols(), grid.max_rows(), kc);
    Eigen::internal::general_matrix_matrix_product<Index, float, LhsOrder, false, float, RhsOrder, false,
                                                   Eigen::RowMajor, 1>::run(tile.rows, tile.cols, depth, a,
                                                                            A.outerStride(), b, B.outerStride(),
                                                                            C.data() + tile.row * C.outerStride() +
                                                                                tile.col,
                                                                            1, C.outerStride(), 1.0f, blocking);
  }
}

// gemm at 1 to 4 threads against reference_product, bit for bit; C = A B, then C += A B (or
// only the one of them given).
enum class Modes { both, assign, accumulate };

template <int LhsOrder, int RhsOrder>
void check(Index m, Index n, Index depth, Modes modes = Modes::both) {
  Matrix<LhsOrder> A = Matrix<LhsOrder>::Random(m, depth);
  Matrix<RhsOrder> B = Matrix<RhsOrder>::Random(depth, n);
  const Matrix<Eigen::RowMajor> start = Matrix<Eigen::RowMajor>::Random(m, n);
  for (const bool accumulate : {false, true}) {
    if ((modes == Modes::assign && accumulate) || (modes == Modes::accumulate && !accumulate)) continue;
    Matrix<Eigen::RowMajor> expected = start;
    reference_product(expected, A, B, accumulate);
    for (int threads = 1; threads <= 4; ++threads) {
      rnnbptt::set_num_threads(threads);
      Matrix<Eigen::RowMajor> C = start;
      rnnbptt::detail::gemm(C, A, B, accumulate);
      if (m * n == 0) continue;  // nothing to compare (and memcmp may not take the null data of an empty matrix)
      ASSERT_EQ(0, std::memcmp(C.data(), expected.data(), sizeof(float) * static_cast<std::size_t>(m * n)))
          << m << " x " << n << " x " << depth << ", orders " << LhsOrder << RhsOrder << ", " << threads
          << " threads, accumulate " << accumulate;
    }
  }
}

class Gemm : public ::testing::Test {
 protected:
  void SetUp() override { threads_ = rnnbptt::get_num_threads(); }
  void TearDown() override { rnnbptt::set_num_threads(threads_); }
  int threads_ = 1;
};

TEST_F(Gemm, ShallowProductsEqualEigensTileByTile) {
  // Sizes around the tile grid's cuts (multiples of 8, tiles of at most 256) and the depth block.
  for (const auto& [m, n, depth] :
       std::vector<std::array<Index, 3>>{{1, 1, 1}, {7, 65, 255}, {65, 257, 256}, {257, 130, 257}, {300, 520, 100}}) {
    check<Eigen::RowMajor, Eigen::RowMajor>(m, n, depth);
    check<Eigen::RowMajor, Eigen::ColMajor>(m, n, depth);
    check<Eigen::ColMajor, Eigen::RowMajor>(m, n, depth);
    check<Eigen::ColMajor, Eigen::ColMajor>(m, n, depth);
  }
}

TEST_F(Gemm, DeepProductsEqualEigensTileByTile) {
  // Depth >= 2,048 shares each thread's packed blocks between its tiles. 257 x 513 is 2 x 3
  // tiles: at 4 threads the shares are 1, 2, 1, 2 tiles, two of them across two tile rows. One
  // mode each keeps the suite's sanitizer build (unoptimized) at about 20 s here.
  check<Eigen::ColMajor, Eigen::RowMajor>(257, 513, 2049, Modes::assign);  // the weight gradients: A^T B
  // 1 x 3 tiles: every share lies in one tile row, and no packed block of B is kept.
  check<Eigen::RowMajor, Eigen::ColMajor>(100, 600, 2048, Modes::accumulate);
}

TEST_F(Gemm, EmptySizes) {
  check<Eigen::RowMajor, Eigen::RowMajor>(0, 5, 7);
  check<Eigen::RowMajor, Eigen::RowMajor>(5, 0, 7);
  check<Eigen::RowMajor, Eigen::RowMajor>(5, 7, 0);
  check<Eigen::ColMajor, Eigen::RowMajor>(300, 270, 0);
}

}  // namespace
