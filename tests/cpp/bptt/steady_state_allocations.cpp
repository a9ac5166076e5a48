// Counts heap allocations during steady-state training steps (after warm-up): forward, loss,
// backward, clipping and the optimizer update, for the model and the stream runner, with
// threads; and during inference steps of a Predictor. Prints one "case count" line per case
// and exits non-zero unless every count is zero (a CTest test of its own: it cannot run under
// a sanitizer, whose allocator it would replace). The allocator functions are interposed here
// and forward to glibc's.
#include <rnnbptt/rnnbptt.hpp>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
}

namespace {
std::atomic<long> allocations{0};
std::atomic<bool> counting{false};
void count() {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

extern "C" {
void* malloc(std::size_t n) {
  count();
  return __libc_malloc(n);
}
void* calloc(std::size_t a, std::size_t b) {
  count();
  return __libc_calloc(a, b);
}
void* realloc(void* p, std::size_t n) {
  count();
  return __libc_realloc(p, n);
}
void* memalign(std::size_t a, std::size_t n) {
  count();
  return __libc_memalign(a, n);
}
void* aligned_alloc(std::size_t a, std::size_t n) {
  count();
  return __libc_memalign(a, n);
}
int posix_memalign(void** p, std::size_t a, std::size_t n) {
  count();
  *p = __libc_memalign(a, n);
  return *p != nullptr ? 0 : ENOMEM;
}
}

using rnnbptt::Index;

// Allocations during `steps` calls of `step` after two warm-up calls.
long steady_state(const std::function<void()>& step, int steps = 5) {
  step();
  step();
  allocations = 0;
  counting = true;
  for (int i = 0; i < steps; ++i) step();
  counting = false;
  return allocations.load();
}

// count ids (mul i + add) mod modulus: a fixed, valid token sequence.
std::vector<std::int64_t> id_pattern(Index count, Index mul, Index add, Index modulus) {
  std::vector<std::int64_t> ids(static_cast<std::size_t>(count));
  for (Index i = 0; i < count; ++i) ids[i] = (mul * i + add) % modulus;
  return ids;
}

// A full-BPTT step of `model` on (x, y), clipped, with SGD; optionally recording ||dL/dh_t||.
template <class Scalar>
void sgd_training_step(rnnbptt::Model<Scalar>& model, const rnnbptt::SequenceInput<Scalar>& x,
                       const rnnbptt::Targets<Scalar>& y, bool record_dh_norms = false) {
  model.forward(x);
  model.loss(y);
  rnnbptt::BackwardOptions<Scalar> options;
  options.record_dh_norms = record_dh_norms;
  model.backward(options);
  rnnbptt::clip_grad_norm(model.gradients(), 1.0);
  rnnbptt::sgd_step(model.parameters(), model.gradients(), 0.1);
}

int main() {
  rnnbptt::set_num_threads(2);
  rnnbptt::ModelConfig config;
  config.input_size = 65;
  config.hidden_size = 384;
  config.output_size = 65;
  const Index T = 70, n = 32, d = config.input_size;
  const std::vector<std::int64_t> tokens = id_pattern(T * n, 7, 3, d), targets = id_pattern(T * n, 5, 1, d);
  std::vector<float> dense(T * n * d, 0.25f);
  const auto ids = rnnbptt::SequenceInput<float>::from_tokens(tokens, T, n);
  const auto values = rnnbptt::SequenceInput<float>::from_dense(dense, T, n);
  const auto y = rnnbptt::Targets<float>::from_classes(targets);

  rnnbptt::Model<float> model(config);
  model.init_normal(0.05, 1);
  rnnbptt::Adam<float> adam(model.num_parameters(), 1e-3);
  auto train_step = [&](const rnnbptt::SequenceInput<float>& x, const rnnbptt::Truncation& truncation) {
    model.forward(x);
    model.loss(y);
    rnnbptt::BackwardOptions<float> options;
    options.truncation = &truncation;
    model.backward(options);
    rnnbptt::clip_grad_norm(model.gradients(), 1.0);
    adam.step(model.parameters(), model.gradients());
  };
  const auto full = rnnbptt::Truncation::full();
  const auto regular = rnnbptt::Truncation::regular(10, 25);
  const auto randomized = rnnbptt::Truncation::randomized(0.9, 3);
  rnnbptt::StreamRunner<float> runner(config, regular);

  struct Case {
    const char* name;
    std::function<void()> step;
  };
  const Case cases[] = {
      {"tokens_full_adam", [&] { train_step(ids, full); }},
      {"dense_full_adam", [&] { train_step(values, full); }},
      {"tokens_regular_10_25", [&] { train_step(ids, regular); }},
      {"tokens_randomized", [&] { train_step(ids, randomized); }},
      {"tokens_full_norms",
       [&] {
         model.forward(ids);
         model.loss(y);
         rnnbptt::BackwardOptions<float> options;
         options.record_dh_norms = true;
         model.backward(options);
       }},
      {"stream_regular_10_25_sgd",
       [&] {
         runner.step(model, ids, y);
         rnnbptt::clip_grad_norm(model.gradients(), 1.0);
         rnnbptt::sgd_step(model.parameters(), model.gradients(), 0.1);
       }},
  };
  // float64 packs twice the bytes per GEMM block: it must stay off the heap too.
  rnnbptt::Model<double> model64(config);
  model64.init_normal(0.05, 1);
  std::vector<double> dense64(T * n * d, 0.25);
  const auto values64 = rnnbptt::SequenceInput<double>::from_dense(dense64, T, n);
  const auto y64 = rnnbptt::Targets<double>::from_classes(targets);
  const auto step64 = [&] { sgd_training_step(model64, values64, y64); };
  long total = 0;
  const auto report = [&](const char* name, const std::function<void()>& step, int steps) {
    const long count = steady_state(step, steps);
    std::printf("%s %ld\n", name, count);
    total += count;
  };
  // Small steps (n h^2 <= 2^20) with T n above one chunk of 2,048 rows and q <= h: the
  // recurrence runs on one thread and the batched products overlapped with it (cpp/src/kernels/overlap.hpp).
  rnnbptt::ModelConfig small_config = config;
  small_config.hidden_size = 64;
  small_config.output_size = 48;
  const Index small_T = 300, small_n = 16;
  const std::vector<std::int64_t> small_tokens = id_pattern(small_T * small_n, 7, 3, d),
                                  small_targets = id_pattern(small_T * small_n, 5, 1, small_config.output_size);
  const auto small_ids = rnnbptt::SequenceInput<float>::from_tokens(small_tokens, small_T, small_n);
  const auto small_y = rnnbptt::Targets<float>::from_classes(small_targets);
  rnnbptt::Model<float> small_model(small_config);
  small_model.init_normal(0.05, 1);
  const auto small_step = [&] { sgd_training_step(small_model, small_ids, small_y); };
  report("tokens_full_small_steps", small_step, 5);
  // The main cases give each of the 2 threads 16 sequences (row bands, cpp/src/kernels/recurrence.hpp);
  // 8 sequences of the same model run in column bands, with a barrier per step.
  const Index narrow_n = 8;
  const std::vector<std::int64_t> narrow_tokens = id_pattern(T * narrow_n, 7, 3, d),
                                  narrow_targets = id_pattern(T * narrow_n, 5, 1, d);
  const auto narrow_ids = rnnbptt::SequenceInput<float>::from_tokens(narrow_tokens, T, narrow_n);
  const auto narrow_y = rnnbptt::Targets<float>::from_classes(narrow_targets);
  rnnbptt::Model<float> narrow_model(config);
  narrow_model.init_normal(0.05, 1);
  const auto narrow_step = [&] { sgd_training_step(narrow_model, narrow_ids, narrow_y, true); };
  report("tokens_full_column_bands_norms", narrow_step, 5);
  // Inference: a Predictor stepping token by token.
  rnnbptt::Predictor<float> predictor(model);
  std::int64_t next = 1;
  const auto predict = [&] { next = rnnbptt::argmax(predictor.step(next)); };
  report("predictor_step", predict, 50);
  report("dense_full_float64", step64, 5);
  for (const Case& c : cases) report(c.name, c.step, 5);
  // Every cell in a stack of two layers: the layer drivers (cpp/src/bptt/layers.cpp), with
  // every strategy, and a stream of each with Regular(k1 < k2)'s history.
  for (const rnnbptt::Cell cell : rnnbptt::kCells) {
    rnnbptt::ModelConfig stack_config = config;
    stack_config.hidden_size = 96;
    stack_config.cell = cell;
    stack_config.num_layers = 2;
    rnnbptt::Model<float> stack(stack_config);
    stack.init_normal(0.05, 1);
    rnnbptt::Adam<float> stack_adam(stack.num_parameters(), 1e-3);
    rnnbptt::StreamRunner<float> stack_runner(stack_config, regular);
    const std::string name = rnnbptt::to_string(cell);
    for (const rnnbptt::Truncation* truncation : {&full, &regular, &randomized}) {
      const auto step = [&] {
        stack.forward(ids);
        stack.loss(y);
        rnnbptt::BackwardOptions<float> options;
        options.truncation = truncation;
        stack.backward(options);
        rnnbptt::clip_grad_norm(stack.gradients(), 1.0);
        stack_adam.step(stack.parameters(), stack.gradients());
      };
      report((name + "_x2_" + truncation->to_string()).c_str(), step, 3);
    }
    const auto dense_step = [&] { sgd_training_step(stack, values, y, true); };
    report((name + "_x2_dense_norms").c_str(), dense_step, 3);
    const auto stream_step = [&] {
      stack_runner.step(stack, ids, y);
      rnnbptt::sgd_step(stack.parameters(), stack.gradients(), 0.1);
    };
    report((name + "_x2_stream_" + regular.to_string()).c_str(), stream_step, 3);
    rnnbptt::Predictor<float> stack_predictor(stack);
    const auto stack_predict = [&] { next = rnnbptt::argmax(stack_predictor.step(next)); };
    report((name + "_x2_predictor_step").c_str(), stack_predict, 20);
  }
  return total == 0 ? 0 : 1;
}
