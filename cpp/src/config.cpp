#include "rnnbptt/config.hpp"

#include "rnnbptt/error.hpp"

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

}  // namespace rnnbptt
