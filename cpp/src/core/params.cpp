#include "rnnbptt/core/params.hpp"

#include "rnnbptt/core/error.hpp"

namespace rnnbptt {

using detail::invalid;

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
