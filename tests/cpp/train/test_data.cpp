// split_dense_streams: the dense counterpart of split_streams, against a direct reading of its
// rule (stream b starts at step offset + b * L, whole chunks kept), and its refusals.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "rnnbptt/core/error.hpp"
#include "rnnbptt/train/data.hpp"
#include "support.hpp"

namespace {

using rnnbptt::Index;

TEST(DenseStreams, CutsTheSeriesAsTheTokenSplitDoes) {
  const Index length = 23, d = 2, q = 3, batch = 3, num_steps = 2, offset = 1;
  std::vector<double> inputs(length * d), targets(length * q);
  for (Index i = 0; i < length * d; ++i) inputs[i] = 1000.0 + static_cast<double>(i);
  for (Index i = 0; i < length * q; ++i) targets[i] = -static_cast<double>(i);
  const auto s = rnnbptt::split_dense_streams<double>(inputs, d, targets, q, batch, num_steps, offset);
  const Index per_stream = (length - offset) / batch;  // 7 steps per stream, 3 whole chunks of 2
  ASSERT_EQ(s.steps, 6);
  ASSERT_EQ(s.chunks(), 3);
  for (Index t = 0; t < s.steps; ++t)
    for (Index b = 0; b < batch; ++b) {
      const Index step = offset + b * per_stream + t;
      for (Index j = 0; j < d; ++j) EXPECT_EQ(s.inputs[(t * batch + b) * d + j], inputs[step * d + j]);
      for (Index j = 0; j < q; ++j) EXPECT_EQ(s.targets[(t * batch + b) * q + j], targets[step * q + j]);
    }
  const auto chunk = s.chunk_inputs(1);
  ASSERT_EQ(chunk.size(), num_steps * batch * d);
  EXPECT_EQ(chunk.data(), s.inputs.data() + num_steps * batch * d);
  EXPECT_EQ(s.chunk_targets(2).size(), num_steps * batch * q);
}

TEST(DenseStreams, RefusesWhatItCannotCut) {
  const std::vector<float> x(20), y(10);
  const auto message = [](auto&& call) -> std::string {
    try {
      call();
    } catch (const rnnbptt::InvalidArgument& e) {
      return e.what();
    }
    return "(no error)";
  };
  EXPECT_EQ(message([&] { rnnbptt::split_dense_streams<float>(x, 2, y, 1, 2, 3); }), "(no error)");
  EXPECT_EQ(message([&] { rnnbptt::split_dense_streams<float>(x, 3, y, 1, 2, 3); }),
            "inputs: expected a whole number of steps of 3 values, got 20 values");
  EXPECT_EQ(message([&] { rnnbptt::split_dense_streams<float>(x, 1, y, 1, 2, 3); }),
            "targets: expected 20 steps (as many as inputs), got 10");
  EXPECT_EQ(message([&] { rnnbptt::split_dense_streams<float>(x, 2, y, 1, 4, 3); }),
            "inputs: expected at least 4 x 3 + 0 steps for batch = 4, num_steps = 3 and offset = 0, got 10");
  EXPECT_EQ(message([&] { rnnbptt::split_dense_streams<float>(x, 2, y, 1, 2, 3, 4); }),
            "offset: expected an offset in [0, num_steps] = [0, 3], got 4");
  EXPECT_EQ(message([&] { rnnbptt::split_dense_streams<float>(x, 0, y, 1, 2, 3); }),
            "input_size: expected a number of features >= 1, got 0");
  const auto s = rnnbptt::split_dense_streams<float>(x, 2, y, 1, 2, 3);
  EXPECT_EQ(message([&] { s.chunk_inputs(1); }), "chunk_inputs: expected a chunk index in [0, 1), got 1");
}

}  // namespace
