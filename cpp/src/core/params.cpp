#include "rnnbptt/core/params.hpp"

#include <exception>
#include <new>

#include "rnnbptt/core/error.hpp"

namespace rnnbptt {

using detail::invalid;

ParameterLayout::ParameterLayout(const ModelConfig& config) {
  config.validate();
  const Index d = config.input_size, h = config.hidden_size, q = config.output_size;
  const Index bias = config.bias ? 1 : 0, rows = config.gates() * h;
  const bool gated = config.cell != Cell::elman;
  Index offset = 0;
  try {  // 4 tensors per layer and 2 more
    if (static_cast<std::size_t>(config.num_layers) > tensors.max_size() / 4 - 1) throw std::bad_alloc();
    tensors.reserve(static_cast<std::size_t>(config.num_layers) * 4 + 2);
    layers.reserve(static_cast<std::size_t>(config.num_layers));
  } catch (const std::exception&) {  // std::bad_alloc, std::length_error
    throw AllocationError(
        detail::concat("num_layers: cannot allocate the parameter layout of ", config.num_layers, " layers"));
  }
  const auto add = [&](std::string name, Index r, Index c, bool vector) {
    tensors.push_back(Tensor{std::move(name), offset, r, c, vector});
    offset += r * c;
    return static_cast<int>(tensors.size() - 1);
  };
  for (Index l = 0; l < config.num_layers; ++l) {
    const std::string suffix = l == 0 ? "" : "_l" + std::to_string(l);
    Layer layer{};
    layer.W_hx = add("W_hx" + suffix, rows, l == 0 ? d : h, false);
    layer.W_hh = add("W_hh" + suffix, rows, h, false);
    layer.input_bias = add((gated ? "b_hx" : "b_h") + suffix, bias * rows, 1, true);
    layer.recurrent_bias = gated ? add("b_hh" + suffix, bias * rows, 1, true) : -1;
    layers.push_back(layer);
  }
  output_weight = add("W_qh", q, h, false);
  output_bias = add("b_q", bias * q, 1, true);
  total = offset;
}

const Tensor& ParameterLayout::find(const std::string& name) const {
  for (const Tensor& t : tensors)
    if (name == t.name) return t;
  std::string names;
  for (std::size_t i = 0; i < tensors.size(); ++i) names += (i == 0 ? "" : ", ") + tensors[i].name;
  invalid("name: expected one of ", names, ", got '", name, "'");
}

}  // namespace rnnbptt
