#include "rnnbptt/config.hpp"

#include "rnnbptt/error.hpp"
#include "rnnbptt/params.hpp"

namespace rnnbptt {

using detail::invalid;

const char* to_string(Activation a) {
  switch (a) {
    case Activation::identity: return "identity";
    case Activation::tanh: return "tanh";
    case Activation::relu: return "relu";
  }
  return "unknown";
}

Activation activation_from_string(const std::string& name) {
  if (name == "identity") return Activation::identity;
  if (name == "tanh") return Activation::tanh;
  if (name == "relu") return Activation::relu;
  invalid("activation: expected 'identity', 'tanh' or 'relu', got '", name, "'");
}

void ModelConfig::validate() const {
  if (input_size <= 0) invalid("input_size: expected a positive integer, got ", input_size);
  if (hidden_size <= 0) invalid("hidden_size: expected a positive integer, got ", hidden_size);
  if (output_size <= 0) invalid("output_size: expected a positive integer, got ", output_size);
}

ParameterLayout::ParameterLayout(const ModelConfig& config) {
  config.validate();
  const Index d = config.input_size, h = config.hidden_size, q = config.output_size;
  const Index bias = config.bias ? 1 : 0;
  const Index shapes[count][2] = {{h, d}, {h, h}, {bias * h, 1}, {q, h}, {bias * q, 1}};
  const char* names[count] = {"W_hx", "W_hh", "b_h", "W_qh", "b_q"};
  Index offset = 0;
  for (int i = 0; i < count; ++i) {
    const bool vector = i == 2 || i == 4;  // b_h, b_q
    tensors[i] = Tensor{names[i], offset, shapes[i][0], shapes[i][1], vector};
    offset += tensors[i].size();
  }
  total = offset;
}

const Tensor& ParameterLayout::find(const std::string& name) const {
  for (const Tensor& t : tensors)
    if (name == t.name) return t;
  invalid("name: expected one of W_hx, W_hh, b_h, W_qh, b_q, got '", name, "'");
}

}  // namespace rnnbptt
