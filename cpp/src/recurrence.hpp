// The sequential part of the RNN: for t = 1..T, C_t += A_{t-1} B on an n x h block, followed
// by an elementwise step (phi forward, phi' backward). A general GEMM would re-pack B at every
// step and fork threads at every step; here B is prepared once, the micro-kernel reads it in
// place, and one parallel region spans the whole time loop: each thread owns a fixed band of
// columns (whole panels of a grid that does not depend on the thread count, so results are
// bit-identical for any number of threads) and the threads meet at one barrier per step.
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <cmath>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "rnnbptt/config.hpp"
#include "rnnbptt/threads.hpp"

namespace rnnbptt::detail {

template <class Scalar>
struct Simd {
  using Packet = typename Eigen::internal::packet_traits<Scalar>::type;
  static constexpr int size = Eigen::internal::unpacket_traits<Packet>::size;
#ifdef EIGEN_VECTORIZE_AVX512
  static constexpr int rows = 6;  // 32 vector registers: 6 x 4 accumulators
#else
  static constexpr int rows = 3;  // 16 vector registers: 3 x 4 accumulators
#endif
  static constexpr int packets = 4;
  static constexpr int panel = size * packets;  // columns per panel
};

// C[0:MR, 0:NP*size] += alpha A[0:MR, 0:K] B[0:K, 0:NP*size]; row-major, leading dimensions.
template <class Scalar, int MR, int NP>
inline void micro_kernel(Index K, const Scalar* A, Index lda, const Scalar* B, Index ldb, Scalar* C,
                         Index ldc, Scalar alpha) {
  using namespace Eigen::internal;
  using Packet = typename Simd<Scalar>::Packet;
  constexpr int P = Simd<Scalar>::size;
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

// All rows of C for columns [j, j + NP*size).
template <class Scalar, int NP>
inline void column_block(Index rows, Index K, const Scalar* A, Index lda, const Scalar* B, Index ldb,
                         Scalar* C, Index ldc, Index j, Scalar alpha) {
  constexpr int MR = Simd<Scalar>::rows;
  Index r = 0;
  for (; r + MR <= rows; r += MR)
    micro_kernel<Scalar, MR, NP>(K, A + r * lda, lda, B + j, ldb, C + r * ldc + j, ldc, alpha);
  for (; r < rows; ++r)
    micro_kernel<Scalar, 1, NP>(K, A + r * lda, lda, B + j, ldb, C + r * ldc + j, ldc, alpha);
}

// C[:, j0:j1] += alpha A B[:, j0:j1] for rows x K times K x cols. j0 must lie on the panel grid.
template <class Scalar>
void gemm_columns(Index rows, Index K, const Scalar* A, Index lda, const Scalar* B, Index ldb, Scalar* C,
                  Index ldc, Index j0, Index j1, Scalar alpha = Scalar(1)) {
  constexpr int P = Simd<Scalar>::size, W = Simd<Scalar>::panel;
  Index j = j0;
  for (; j + W <= j1; j += W)
    column_block<Scalar, Simd<Scalar>::packets>(rows, K, A, lda, B, ldb, C, ldc, j, alpha);
  for (; j + P <= j1; j += P) column_block<Scalar, 1>(rows, K, A, lda, B, ldb, C, ldc, j, alpha);
  for (; j < j1; ++j)  // fewer columns than one packet
    for (Index r = 0; r < rows; ++r) {
      Scalar sum(0);
      for (Index k = 0; k < K; ++k) sum += A[r * lda + k] * B[k * ldb + j];
      C[r * ldc + j] += alpha * sum;
    }
}

// Threads worth using for steps of rows x K x cols: below ~64k multiply-adds per step a
// barrier costs more than it saves.
template <class Scalar>
int recurrence_threads(Index rows, Index K, Index cols) {
#ifdef _OPENMP
  const Index work = rows * K * cols;
  const int available = get_num_threads();
  const Index panels = (cols + Simd<Scalar>::panel - 1) / Simd<Scalar>::panel;  // no idle bands
  int threads = static_cast<int>(std::min<Index>({available, work / 65536 + 1, panels}));
  return std::max(threads, 1);
#else
  (void)rows, (void)K, (void)cols;
  return 1;
#endif
}

// This thread's share [begin, end) of `cols` columns, cut on the panel grid.
template <class Scalar>
inline void column_band(Index cols, int thread, int threads, Index& begin, Index& end) {
  constexpr Index W = Simd<Scalar>::panel;
  const Index panels = (cols + W - 1) / W;
  const Index first = panels * thread / threads, last = panels * (thread + 1) / threads;
  begin = std::min(cols, first * W);
  end = std::min(cols, last * W);
}

// Runs step(t, begin, end, thread) for t = first, first + direction, ... (count steps) on
// every thread's band of `cols` columns, with a barrier after each step.
template <class Scalar, class Step>
void run_recurrence(int threads, Index cols, Index first, Index count, int direction, Step&& step) {
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
#ifdef _OPENMP
    const int thread = omp_get_thread_num(), team = omp_get_num_threads();
#else
    const int thread = 0, team = 1;
#endif
    Index begin, end;
    column_band<Scalar>(cols, thread, team, begin, end);
    for (Index i = 0; i < count; ++i) {
      step(first + direction * i, begin, end, thread);
      if (team > 1) {
#pragma omp barrier
      }
    }
  }
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
void derivative_band(Activation activation, Scalar* g, const Scalar* h, Index n, Index ld, Index begin,
                     Index end) {
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
