// bench/run.py's training step in C++, with a timer per API call, for profiling (perf):
//
//   step --V 256 --h 1024 --n 128 --T 100 --threads 2 --steps 10
//
// Token input, tanh, output layer of V classes, mean cross-entropy, full backward, global-norm
// clipping at 1, SGD. Prints one JSON line: median seconds per step of forward, loss,
// backward, clip and update. The split inside forward and backward (input gather,
// recurrence, output layer, weight gradients) comes from a sampling profile of this program
// (perf record --call-graph dwarf), which docs/performance.md describes.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "rnnbptt/rnnbptt.hpp"
#include "timing.hpp"

namespace {

using bench::arg;
using bench::Clock;
using bench::median;
using bench::seconds_since;

}  // namespace

int main(int argc, char** argv) {
  const long V = arg(argc, argv, "--V", 256), h = arg(argc, argv, "--h", 1024);
  const long n = arg(argc, argv, "--n", 128), T = arg(argc, argv, "--T", 100);
  const int threads = static_cast<int>(arg(argc, argv, "--threads", 2));
  const int steps = static_cast<int>(arg(argc, argv, "--steps", 10));
  rnnbptt::set_num_threads(threads);

  rnnbptt::ModelConfig config;
  config.input_size = V;
  config.hidden_size = h;
  config.output_size = V;
  rnnbptt::Model<float> model(config);
  model.init_uniform(0.1, 0);
  // Targets are the inputs shifted by one step, as in bench/workloads.py.
  std::mt19937_64 rng(0);
  std::uniform_int_distribution<std::int64_t> token(0, V - 1);
  std::vector<std::int64_t> x(static_cast<std::size_t>(T * n)), y(x.size());
  for (auto& v : x) v = token(rng);
  for (long t = 0; t < T; ++t)
    for (long b = 0; b < n; ++b) y[t * n + b] = x[((t + 1) % T) * n + b];
  const auto input = rnnbptt::SequenceInput<float>::from_tokens(x, T, n);
  const auto targets = rnnbptt::Targets<float>::from_classes(y);

  std::vector<double> t_forward, t_loss, t_backward, t_clip, t_update;
  for (int s = 0; s < steps + 1; ++s) {  // the first step sizes the buffers: not timed
    auto start = Clock::now();
    model.forward(input);
    const double f = seconds_since(start);
    start = Clock::now();
    model.loss(targets);
    const double l = seconds_since(start);
    start = Clock::now();
    model.backward();
    const double b = seconds_since(start);
    start = Clock::now();
    rnnbptt::clip_grad_norm(model.gradients(), 1.0);
    const double c = seconds_since(start);
    start = Clock::now();
    rnnbptt::sgd_step(model.parameters(), model.gradients(), 0.01);
    const double u = seconds_since(start);
    if (s == 0) continue;
    t_forward.push_back(f);
    t_loss.push_back(l);
    t_backward.push_back(b);
    t_clip.push_back(c);
    t_update.push_back(u);
  }
  std::printf(
      "{\"V\": %ld, \"h\": %ld, \"n\": %ld, \"T\": %ld, \"threads\": %d, \"steps\": %d, \"forward\": %.6g, "
      "\"loss\": %.6g, \"backward\": %.6g, \"clip\": %.6g, \"update\": %.6g}\n",
      V, h, n, T, threads, steps, median(t_forward), median(t_loss), median(t_backward), median(t_clip),
      median(t_update));
  return 0;
}
