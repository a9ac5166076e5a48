// The sequential part of the RNN: for t = 1..T, C_t += A_{t-1} B on an n x h block, followed
// by an elementwise step (phi forward, phi' backward). A general GEMM would re-pack B at every
// step and fork threads at every step; here each thread packs the columns of B it uses once per
// call (PackedBand), the micro-kernel reads the packed panels at every step, and one parallel
// region spans the whole time loop. Each thread owns a fixed block of every step:
// - row bands, when every thread gets at least min_band_rows rows (and B is at most 4 MiB: each
//   thread packs all of it): a thread owns some of the n
//   sequences, all h columns. Row r of step t needs only row r of step t - 1, so the threads
//   never wait for each other inside the loop (no barrier per step, no state crossing cores);
// - otherwise column bands: every row, a band of hidden units (whole panels), and the threads
//   meet at one barrier per step.
// Every element is computed by the same arithmetic (one multiply-add chain over k, then one
// update of C) whichever block and kernel shape it falls in, so results are bit-identical for
// any number of threads and either kind of band.
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <new>
#include <type_traits>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "rnnbptt/core/buffer.hpp"
#include "rnnbptt/core/config.hpp"
#include "rnnbptt/kernels/threads.hpp"

namespace rnnbptt::detail {

// The micro-kernel's shape for this build's instruction set: the packet (size lanes) and
// rows x packets accumulators. The kernel code below takes the shape as a template parameter
// (Shape, this by default), so that tests/cpp/kernels/test_recurrence.cpp can run every variant's shape
// on any CPU.
template <class Scalar>
struct Simd {
  using Packet = typename Eigen::internal::packet_traits<Scalar>::type;
  static constexpr int size = Eigen::internal::unpacket_traits<Packet>::size;
#ifdef EIGEN_VECTORIZE_AVX512
  static constexpr int rows = 6;  // 32 vector registers: 6 x 4 accumulators
  static constexpr int packets = 4;
#elif defined(EIGEN_VECTORIZE_FMA)
  // 16 vector registers: 4 x 3 accumulators, 3 for a row of B and 1 for A's broadcast. On an
  // AVX2 EPYC this runs near the multiply-add peak from L1 and L2; 3 x 4 (which leaves no
  // register for B's fourth packet, read as a memory operand of three multiply-adds: 9 loads
  // per 12 multiply-adds) ran at about 60% of it, and 6 x 2 (BLIS's shape) in between.
  static constexpr int rows = 4;
  static constexpr int packets = 3;
#else
  // 16 vector registers and no fused multiply-add: a multiply and an add, which needs a
  // register for the product. 3 x 4 accumulators leave room for it (B is read as an operand of
  // the multiply); 4 x 3 would spill, and ran slower with SSE2.
  static constexpr int rows = 3;
  static constexpr int packets = 4;
#endif
  static constexpr int panel = size * packets;  // columns per panel
};

// C[0:MR, 0:NP*size] += alpha A[0:MR, 0:K] B[0:K, 0:NP*size]; row-major, leading dimensions.
template <class Scalar, class Shape, int MR, int NP>
inline void micro_kernel(Index K, const Scalar* A, Index lda, const Scalar* B, Index ldb, Scalar* C, Index ldc,
                         Scalar alpha) {
  using namespace Eigen::internal;
  using Packet = typename Shape::Packet;
  constexpr int P = Shape::size;
  Packet acc[MR][NP];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NP; ++j) acc[i][j] = pset1<Packet>(Scalar(0));
  for (Index k = 0; k < K; ++k) {
    Packet b[NP];
    for (int j = 0; j < NP; ++j) b[j] = ploadu<Packet>(B + k * ldb + j * P);
    for (int i = 0; i < MR; ++i) {
      const Packet a = pset1<Packet>(A[i * lda + k]);
      for (int j = 0; j < NP; ++j) acc[i][j] = pmadd(a, b[j], acc[i][j]);
    }
  }
  const Packet scale = pset1<Packet>(alpha);
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NP; ++j) {
      Scalar* c = C + i * ldc + j * P;
      pstoreu(c, pmadd(scale, acc[i][j], ploadu<Packet>(c)));
    }
}

// micro_kernel for a block of `count` rows, 1 <= count <= MR, chosen at run time.
template <class Scalar, class Shape, int NP, int MR = Shape::rows>
inline void row_block(Index count, Index K, const Scalar* A, Index lda, const Scalar* B, Index ldb, Scalar* C,
                      Index ldc, Scalar alpha) {
  if constexpr (MR > 1)
    if (count < MR) return row_block<Scalar, Shape, NP, MR - 1>(count, K, A, lda, B, ldb, C, ldc, alpha);
  micro_kernel<Scalar, Shape, MR, NP>(K, A, lda, B, ldb, C, ldc, alpha);
}

// f(first, count) for the blocks of rows the kernel runs: blocks of MR rows, and no short last
// block. Every block streams the whole panel of B from L2 for its rows, so a block of 1 or 2
// rows runs at a fraction of the multiply-add rate (profiled on an AVX-512 EPYC at n = 32 =
// 5 x 6 + 2: the 2-row block took 30% of the kernel's time for 6% of its work). When the
// remainder is at most MR / 2, the last MR + remainder rows run as two blocks of about half
// that (n = 32 with MR = 6: 4 x 6 + 4 + 4). Each row's sums run over k in the same order in
// any block, so the blocking never changes a bit of the result.
template <class Shape, class F>
inline void for_each_row_block(Index rows, F&& f) {
  constexpr Index MR = Shape::rows;
  const Index remainder = rows % MR;
  const Index tail = rows > MR && remainder != 0 && 2 * remainder <= MR ? MR + remainder : remainder;
  Index r = 0;
  for (; r + MR <= rows - tail; r += MR) f(r, MR);
  if (tail > MR) {
    f(r, (tail + 1) / 2);
    r += (tail + 1) / 2;
  }
  if (r < rows) f(r, rows - r);
}

// All rows of C[:, 0:NP*size] += alpha A B[:, 0:NP*size] (B and C already offset to the columns).
template <class Scalar, class Shape, int NP>
inline void column_block(Index rows, Index K, const Scalar* A, Index lda, const Scalar* B, Index ldb, Scalar* C,
                         Index ldc, Scalar alpha) {
  for_each_row_block<Shape>(rows, [&](Index r, Index count) {
    row_block<Scalar, Shape, NP>(count, K, A + r * lda, lda, B, ldb, C + r * ldc, ldc, alpha);
  });
}

// How a band of columns is cut into kernel blocks: whole panels (NP packets), then blocks of
// two packets and of one, then single columns (fewer than a packet, read in place). With
// 3-packet panels a lone last packet would run the 1-packet kernel, which reads a packet of B
// for each multiply-add: that packet and the last panel run as two 2-packet blocks instead.
struct ColumnBlocks {
  Index panels = 0, pairs = 0, singles = 0;
};

template <class Shape>
constexpr ColumnBlocks column_blocks(Index columns) {
  constexpr Index P = Shape::size, NP = Shape::packets;
  ColumnBlocks blocks;
  blocks.panels = columns / (NP * P);
  Index packets = columns % (NP * P) / P;
  if (NP == 3 && packets == 1 && blocks.panels > 0) {
    blocks.panels -= 1;
    packets += NP;
  }
  blocks.pairs = packets / 2;
  blocks.singles = packets % 2;
  return blocks;
}

// f(packets, j) for each block in order (panels, pairs, singles), with packets an
// std::integral_constant (the block's width in packets) and j the block's first column counted
// from the band's start. Returns the columns covered. Packing and the kernel calls both walk
// the blocks through here, so a block's packed copy starts at K j.
template <class Shape, class F>
Index for_each_column_block(const ColumnBlocks& blocks, F&& f) {
  constexpr Index P = Shape::size;
  Index j = 0;
  const auto run = [&](auto packets, Index count) {
    for (Index b = 0; b < count; ++b, j += decltype(packets)::value * P) f(packets, j);
  };
  run(std::integral_constant<int, Shape::packets>{}, blocks.panels);
  run(std::integral_constant<int, 2>{}, blocks.pairs);
  run(std::integral_constant<int, 1>{}, blocks.singles);
  return j;
}

// The columns of B one thread uses (all of them with row bands, its band with column bands),
// packed block by block (column_blocks): a block of w columns is K x w contiguous. Unpacked,
// a block's rows lie ldb apart: for ldb a multiple of 1 KiB (h = 256, 512, 1024) they fall
// into a few cache sets and evict each other, so every pass over a block comes from L3.
// run_recurrence marks each thread's band stale when it starts; the first gemm_columns of the
// call packs it and the following steps reuse it (B is the same matrix for the whole time
// loop). The copy is exact and the kernel reads B in the same order, so results are those of
// the unpacked kernel.
template <class Scalar>
struct PackedBand {
  Buffer<Scalar> values;  // K x (columns rounded down to packets), grown once per thread
  const Scalar* source = nullptr;
  Index K = 0, ldb = 0, j0 = 0, columns = 0;
  bool active = false;  // inside run_recurrence on this thread
};

template <class Scalar, class Shape = Simd<Scalar>>
inline PackedBand<Scalar>& packed_band() {  // one per thread (and shape: its blocks differ)
  thread_local PackedBand<Scalar> band;
  return band;
}

// The packed copy of B[:, j0:j0 + columns], cut into `blocks` (column_blocks of columns), for
// this thread, or nullptr outside a recurrence (or when memory for it cannot be had: then the
// caller reads B in place).
template <class Scalar, class Shape>
inline const Scalar* packed_columns(Index K, const Scalar* B, Index ldb, Index j0, Index columns,
                                    const ColumnBlocks& blocks) {
  constexpr Index P = Shape::size;
  PackedBand<Scalar>& band = packed_band<Scalar, Shape>();
  if (!band.active) return nullptr;
  if (band.source == B && band.K == K && band.ldb == ldb && band.j0 == j0 && band.columns == columns)
    return band.values.data();
  const std::size_t size = static_cast<std::size_t>(K * (columns / P * P));  // every block's columns
  if (band.values.size() < size) {
    try {
      band.values.resize(size);
    } catch (const std::bad_alloc&) {
      band.active = false;
      return nullptr;
    }
  }
  Scalar* out = band.values.data();
  for_each_column_block<Shape>(blocks, [&](auto packets, Index j) {
    constexpr Index width = decltype(packets)::value * P;
    for (Index k = 0; k < K; ++k, out += width) std::copy(B + k * ldb + j0 + j, B + k * ldb + j0 + j + width, out);
  });
  band.source = B;
  band.K = K;
  band.ldb = ldb;
  band.j0 = j0;
  band.columns = columns;
  return band.values.data();
}

// C[:, j0:j1] += alpha A B[:, j0:j1] for rows x K times K x cols. j0 must lie on the panel grid.
template <class Scalar, class Shape = Simd<Scalar>>
void gemm_columns(Index rows, Index K, const Scalar* A, Index lda, const Scalar* B, Index ldb, Scalar* C, Index ldc,
                  Index j0, Index j1, Scalar alpha = Scalar(1)) {
  constexpr int P = Shape::size;
  const ColumnBlocks blocks = column_blocks<Shape>(j1 - j0);
  const Scalar* packed = j1 - j0 >= P ? packed_columns<Scalar, Shape>(K, B, ldb, j0, j1 - j0, blocks) : nullptr;
  Index j =
      j0 + for_each_column_block<Shape>(blocks, [&](auto packets, Index offset) {
        constexpr int np = decltype(packets)::value;
        if (packed != nullptr)
          column_block<Scalar, Shape, np>(rows, K, A, lda, packed + K * offset, np * P, C + j0 + offset, ldc, alpha);
        else
          column_block<Scalar, Shape, np>(rows, K, A, lda, B + j0 + offset, ldb, C + j0 + offset, ldc, alpha);
      });
  for (; j < j1; ++j)  // fewer columns than one packet
    for (Index r = 0; r < rows; ++r) {
      Scalar sum(0);
      for (Index k = 0; k < K; ++k) sum += A[r * lda + k] * B[k * ldb + j];
      C[r * ldc + j] += alpha * sum;
    }
}

// Row bands need this many rows per thread: fewer leave the kernel's B panels read for too few
// rows (each thread streams all of B at every step; a column band streams its share). And B
// at most this large: each thread packs its own copy of all of it (h = 1024 in float is 4 MiB).
constexpr Index min_band_rows = 16;
constexpr std::size_t max_band_matrix_bytes = std::size_t(4) << 20;

// How a recurrence of n x h by h x h steps is shared: `threads` threads (below ~64k
// multiply-adds per step a barrier costs more than it saves, and no band is left empty), in
// row bands (at least min_band_rows rows per thread, B at most max_band_matrix_bytes) or
// column bands (see the top of this file).
struct RecurrencePlan {
  int threads = 1;
  bool by_rows = false;
};

// `gates` > 1: the steps of a gated cell (cpp/src/bptt/layers.cpp), whose products are
// n x h by h x G h forward and n x G h by G h x h backward: the work and the packed matrix grow
// by G, column bands are still cut on the h columns' panel grid.
template <class Scalar>
RecurrencePlan recurrence_plan(Index n, Index h, Index gates = 1) {
  RecurrencePlan plan;
#ifdef _OPENMP
  const Index work = n * h * h * gates;
  const Index wanted = std::min<Index>(get_num_threads(), work / 65536 + 1);
  const bool small_matrix = static_cast<std::size_t>(h * h * gates) * sizeof(Scalar) <= max_band_matrix_bytes;
  if (wanted > 1 && n >= min_band_rows * wanted && small_matrix) {
    plan.threads = static_cast<int>(wanted);
    plan.by_rows = true;
  } else {
    const Index panels = (h + Simd<Scalar>::panel - 1) / Simd<Scalar>::panel;
    plan.threads = static_cast<int>(std::max<Index>(1, std::min(wanted, panels)));
  }
#else
  (void)n, (void)h, (void)gates;
#endif
  return plan;
}

// One thread's block of every step: rows [row, row + rows) and columns [begin, end).
struct Band {
  Index row = 0, rows = 0, begin = 0, end = 0;
};

// This thread's block of an n x cols step: an even share of the rows (row bands; cutting on
// multiples of the then 3-row kernel gave bands of 30 and 34 rows for n = 64, and the first
// thread waited for the second), or a share of the columns cut on the panel grid (column bands).
template <class Scalar>
inline Band band_of(const RecurrencePlan& plan, Index n, Index cols, int thread, int threads) {
  Band band{0, n, 0, cols};
  if (threads <= 1) return band;
  if (plan.by_rows) {
    band.row = n * thread / threads;
    band.rows = n * (thread + 1) / threads - band.row;
  } else {
    constexpr Index W = Simd<Scalar>::panel;
    const Index panels = (cols + W - 1) / W;
    band.begin = std::min(cols, panels * thread / threads * W);
    band.end = std::min(cols, panels * (thread + 1) / threads * W);
  }
  return band;
}

// Runs step(t, band) for t = first, first + direction, ... (count steps) on every thread's
// block of an n x cols step; with column bands, a barrier follows each step. One thread runs
// outside any parallel region: libgomp allocates a team for every serialized region (an
// `if (false)` clause), and a steady-state step must not allocate.
template <class Scalar, class Step>
void run_recurrence(const RecurrencePlan& plan, Index n, Index cols, Index first, Index count, int direction,
                    Step&& step) {
  const auto run = [&](int thread, int team) {
    const Band band = band_of<Scalar>(plan, n, cols, thread, team);
    PackedBand<Scalar>& packed = packed_band<Scalar>();
    packed.active = true;
    packed.source = nullptr;  // B may have changed since the last call: pack again
    const bool barrier = team > 1 && !plan.by_rows;
    for (Index i = 0; i < count; ++i) {
      step(first + direction * i, band);
      if (barrier) {
#pragma omp barrier
      }
    }
    packed.active = false;
  };
#ifdef _OPENMP
  if (plan.threads > 1) {
#pragma omp parallel num_threads(plan.threads)
    run(omp_get_thread_num(), omp_get_num_threads());
    return;
  }
#endif
  run(0, 1);
}

}  // namespace rnnbptt::detail

namespace rnnbptt::detail {

// Elementwise steps on columns [begin, end) of n rows, walking the same packet grid (columns
// at multiples of the packet size, scalars only past the last full packet) whatever the band,
// so that every column is computed the same way for any thread count.

// x <- phi(x)
template <class Scalar>
void activate_band(Activation activation, Scalar* x, Index n, Index ld, Index begin, Index end) {
  using namespace Eigen::internal;
  using Packet = typename Simd<Scalar>::Packet;
  constexpr int P = Simd<Scalar>::size;
  if (activation == Activation::identity) return;
  for (Index r = 0; r < n; ++r) {
    Scalar* row = x + r * ld;
    Index j = begin;
    if (activation == Activation::tanh) {
      if constexpr (packet_traits<Scalar>::HasTanh)
        for (; j + P <= end; j += P) pstoreu(row + j, ptanh(ploadu<Packet>(row + j)));
      for (; j < end; ++j) row[j] = std::tanh(row[j]);
    } else {
      const Packet zero = pset1<Packet>(Scalar(0));
      for (; j + P <= end; j += P) pstoreu(row + j, pmax(ploadu<Packet>(row + j), zero));
      for (; j < end; ++j) row[j] = row[j] > Scalar(0) ? row[j] : Scalar(0);
    }
  }
}

// g <- phi'(a) * g, with phi' read off h = phi(a).
template <class Scalar>
void derivative_band(Activation activation, Scalar* g, const Scalar* h, Index n, Index ld, Index begin, Index end) {
  using namespace Eigen::internal;
  using Packet = typename Simd<Scalar>::Packet;
  constexpr int P = Simd<Scalar>::size;
  if (activation == Activation::identity) return;
  const Packet one = pset1<Packet>(Scalar(1)), zero = pset1<Packet>(Scalar(0));
  for (Index r = 0; r < n; ++r) {
    Scalar* grow = g + r * ld;
    const Scalar* hrow = h + r * ld;
    Index j = begin;
    if (activation == Activation::tanh) {
      for (; j + P <= end; j += P) {
        const Packet s = ploadu<Packet>(hrow + j);
        pstoreu(grow + j, pmul(ploadu<Packet>(grow + j), psub(one, pmul(s, s))));
      }
      for (; j < end; ++j) grow[j] *= Scalar(1) - hrow[j] * hrow[j];
    } else {
      for (; j + P <= end; j += P)
        pstoreu(grow + j, pand(ploadu<Packet>(grow + j), pcmp_lt(zero, ploadu<Packet>(hrow + j))));
      for (; j < end; ++j) grow[j] = hrow[j] > Scalar(0) ? grow[j] : Scalar(0);
    }
  }
}

}  // namespace rnnbptt::detail
