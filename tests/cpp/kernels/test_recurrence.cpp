// The recurrence's kernel (cpp/src/kernels/recurrence.hpp) in the block shape of every SIMD variant
// (SSE2's 3 rows x 4 packets, AVX2's 4 x 3, AVX-512's 6 x 4), whatever CPU runs the tests: the
// shapes run on this build's packet, so the way each variant cuts a step into blocks (whole
// blocks, the rows and columns left over, a lone last row or packet) is checked here even where
// that variant's instructions cannot run. For every number of rows up to past two blocks and
// every kind of column leftover, C += alpha A B is checked against a double-precision product,
// and three claims the threads rely on are checked bit for bit: the packed copy of B gives what
// B read in place gives, and so does a band of rows or of whole panels computed on its own.
#include <gtest/gtest.h>

#include <Eigen/Core>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/recurrence.hpp"

namespace {

using rnnbptt::Index;

template <int Rows, int Packets>
struct Shape {
  using Packet = Eigen::internal::packet_traits<float>::type;
  static constexpr int size = Eigen::internal::unpacket_traits<Packet>::size;
  static constexpr int rows = Rows;
  static constexpr int packets = Packets;
  static constexpr int panel = size * packets;
};

// Column counts that reach each way a band's columns end: 0, 1 or 2 whole panels, then every
// number of packets short of a panel, then no column, one, or a packet less one past them.
template <class S>
std::vector<Index> widths() {
  std::vector<Index> out;
  for (Index panels = 0; panels <= 2; ++panels)
    for (Index packets = 0; packets < S::packets; ++packets)
      for (Index tail : {Index(0), Index(1), Index(S::size - 1)}) {
        const Index width = panels * S::panel + packets * S::size + tail;
        if (width > 0) out.push_back(width);
      }
  return out;
}

struct Problem {
  Index rows, K, cols, lda, ldb, ldc;
  std::vector<float> A, B, C;
};

Problem problem(Index rows, Index K, Index cols, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  // Leading dimensions past the sizes, so that a read or write out of the block shows.
  Problem p{rows, K, cols, K + 3, cols + 5, cols + 2, {}, {}, {}};
  p.A.resize(static_cast<std::size_t>(rows * p.lda));
  p.B.resize(static_cast<std::size_t>(K * p.ldb));
  p.C.resize(static_cast<std::size_t>(rows * p.ldc));
  for (float& v : p.A) v = u(gen);
  for (float& v : p.B) v = u(gen);
  for (float& v : p.C) v = u(gen);
  return p;
}

// C[:, j0:j1] += alpha A B[:, j0:j1] on rows [r0, r0 + rows) with the kernel of shape S, B packed
// (as inside the recurrence) or read in place.
template <class S>
void kernel(const Problem& p, std::vector<float>& C, Index r0, Index rows, Index j0, Index j1, float alpha,
            bool packed) {
  auto& band = rnnbptt::detail::packed_band<float, S>();
  band.active = packed;
  band.source = nullptr;
  rnnbptt::detail::gemm_columns<float, S>(rows, p.K, p.A.data() + r0 * p.lda, p.lda, p.B.data(), p.ldb,
                                          C.data() + r0 * p.ldc, p.ldc, j0, j1, alpha);
  band.active = false;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

template <class S>
void check_shape() {
  constexpr Index K = 37;
  constexpr float alpha = -0.75f;
  unsigned seed = 1;
  for (Index cols : widths<S>())
    for (Index rows = 1; rows <= 2 * S::rows + 2; ++rows) {
      SCOPED_TRACE(testing::Message() << S::rows << " x " << S::packets << " packets of " << S::size << ": C is "
                                      << rows << " x " << cols);
      const Problem p = problem(rows, K, cols, seed++);
      std::vector<float> C = p.C;
      kernel<S>(p, C, 0, rows, 0, cols, alpha, true);
      for (Index r = 0; r < rows; ++r)
        for (Index j = 0; j < p.ldc; ++j) {
          const std::size_t i = static_cast<std::size_t>(r * p.ldc + j);
          if (j >= cols) {  // past the block: untouched
            ASSERT_EQ(C[i], p.C[i]) << "row " << r << ", column " << j;
            continue;
          }
          double sum = 0.0, size = 0.0;
          for (Index k = 0; k < K; ++k) {
            const double term = double(p.A[r * p.lda + k]) * double(p.B[k * p.ldb + j]);
            sum += term;
            size += std::abs(term);
          }
          ASSERT_NEAR(C[i], p.C[i] + alpha * sum, 1e-5 * (1.0 + std::abs(p.C[i]) + size))
              << "row " << r << ", column " << j;
        }
      // B read in place: the same kernel calls on the same values.
      std::vector<float> in_place = p.C;
      kernel<S>(p, in_place, 0, rows, 0, cols, alpha, false);
      EXPECT_TRUE(same_bits(C, in_place)) << "packed and in-place B differ";
      // Row bands: the first rows alone, then the rest.
      if (rows > 1) {
        std::vector<float> banded = p.C;
        const Index split = rows / 2;
        kernel<S>(p, banded, 0, split, 0, cols, alpha, true);
        kernel<S>(p, banded, split, rows - split, 0, cols, alpha, true);
        EXPECT_TRUE(same_bits(C, banded)) << "row bands differ, split at row " << split;
      }
      // Column bands: whole panels, then the rest.
      for (Index j = S::panel; j < cols; j += S::panel) {
        std::vector<float> banded = p.C;
        kernel<S>(p, banded, 0, rows, 0, j, alpha, true);
        kernel<S>(p, banded, 0, rows, j, cols, alpha, true);
        EXPECT_TRUE(same_bits(C, banded)) << "column bands differ, split at column " << j;
      }
    }
}

TEST(RecurrenceKernel, Sse2Shape) { check_shape<Shape<3, 4>>(); }
TEST(RecurrenceKernel, Avx2Shape) { check_shape<Shape<4, 3>>(); }
TEST(RecurrenceKernel, Avx512Shape) { check_shape<Shape<6, 4>>(); }

// The column blocks of the AVX2 shape: a lone packet past whole panels runs with the last
// panel as two blocks of 2 packets; other leftovers as blocks of 2 and 1.
TEST(RecurrenceKernel, ColumnBlocks) {
  using S = Shape<4, 3>;
  constexpr Index P = S::size;
  const auto blocks = [](Index columns) { return rnnbptt::detail::column_blocks<S>(columns); };
  EXPECT_EQ(blocks(3 * P).panels, 1);
  EXPECT_EQ(blocks(4 * P).panels, 0);
  EXPECT_EQ(blocks(4 * P).pairs, 2);
  EXPECT_EQ(blocks(4 * P).singles, 0);
  EXPECT_EQ(blocks(P).singles, 1);
  EXPECT_EQ(blocks(P).panels, 0);
  EXPECT_EQ(blocks(5 * P).panels, 1);
  EXPECT_EQ(blocks(5 * P).pairs, 1);
  EXPECT_EQ(blocks(7 * P + 1).panels, 1);
  EXPECT_EQ(blocks(7 * P + 1).pairs, 2);
  using Wide = Shape<6, 4>;
  const rnnbptt::detail::ColumnBlocks wide = rnnbptt::detail::column_blocks<Wide>(7 * P);
  EXPECT_EQ(wide.panels, 1);
  EXPECT_EQ(wide.pairs, 1);
  EXPECT_EQ(wide.singles, 1);
}

}  // namespace
