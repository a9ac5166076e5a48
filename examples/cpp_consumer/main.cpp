// Trains nothing and needs no Python: builds a small model, runs forward, loss and backward
// (full and truncated), clips, and prints everything as JSON so that a test can check the
// numbers against an independent implementation.
#include <rnnbptt/rnnbptt.hpp>

#include <cstdint>
#include <iomanip>
#include <iostream>
#include <vector>

namespace {

template <class T>
void print_array(const char* name, rnnbptt::Span<const T> data, bool last = false) {
  std::cout << '"' << name << "\": [";
  for (rnnbptt::Index i = 0; i < data.size(); ++i) std::cout << (i ? ", " : "") << data[i];
  std::cout << "]" << (last ? "\n" : ",\n");
}

}  // namespace

int main() {
  using rnnbptt::Index;
  rnnbptt::ModelConfig config;
  config.input_size = 5;  // vocabulary
  config.hidden_size = 4;
  config.output_size = 5;
  config.activation = rnnbptt::Activation::tanh;
  const Index T = 6, n = 2;

  rnnbptt::Model<double> model(config);
  model.init_normal(0.5, /*seed=*/7);

  std::vector<std::int64_t> tokens(T * n), targets(T * n);
  for (Index i = 0; i < T * n; ++i) {
    tokens[i] = (3 * i + 1) % config.input_size;
    targets[i] = (i * i + 2) % config.output_size;
  }
  const auto x = rnnbptt::SequenceInput<double>::from_tokens(tokens, T, n);
  const auto y = rnnbptt::Targets<double>::from_classes(targets);

  std::cout << std::setprecision(17) << "{\n";
  print_array<double>("params", model.parameters());
  print_array<std::int64_t>("tokens", tokens);
  print_array<std::int64_t>("targets", targets);

  model.forward(x);
  const double loss = model.loss(y);
  model.backward();
  std::cout << "\"loss\": " << loss << ",\n";
  print_array<double>("grads_full", model.gradients());

  const rnnbptt::Truncation regular = rnnbptt::Truncation::regular(2, 3);
  rnnbptt::BackwardOptions<double> truncated;
  truncated.truncation = &regular;
  model.backward(truncated);
  print_array<double>("grads_regular_2_3", model.gradients());

  const rnnbptt::ClipReport report = rnnbptt::clip_grad_norm(model.gradients(), 0.01);
  std::cout << "\"norm_before_clip\": " << report.norm << ",\n";
  std::cout << "\"norm_after_clip\": " << rnnbptt::global_norm(model.gradients()) << ",\n";

  try {
    rnnbptt::Truncation::regular(3, 2);
    std::cout << "\"error\": \"none\"\n";
  } catch (const rnnbptt::InvalidArgument& e) {
    std::cout << "\"error\": \"" << e.what() << "\"\n";
  }
  std::cout << "}\n";
  return 0;
}
