#include "rnnbptt/core/config.hpp"

#include <iterator>
#include <string>

#include "rnnbptt/core/error.hpp"

namespace rnnbptt {

using detail::invalid;

namespace {

// "'a', 'b' or 'c'": the names of every value in `all`, each in `quote`.
template <class Enum, std::size_t count>
std::string choices(const Enum (&all)[count], char quote) {
  std::string out;
  for (std::size_t i = 0; i < count; ++i) {
    out += i == 0 ? "" : i + 1 == count ? " or " : ", ";
    out += quote + std::string(to_string(all[i])) + quote;
  }
  return out;
}

}  // namespace

const char* to_string(Activation a) {
  switch (a) {
    case Activation::identity:
      return "identity";
    case Activation::tanh:
      return "tanh";
    case Activation::relu:
      return "relu";
  }
  return "unknown";
}

Activation activation_from_string(const std::string& name) {
  for (const Activation a : kActivations)
    if (name == to_string(a)) return a;
  invalid("activation: expected ", activation_choices(), ", got '", name, "'");
}

std::string activation_choices(char quote) { return choices(kActivations, quote); }

const char* to_string(Cell c) {
  switch (c) {
    case Cell::elman:
      return "elman";
    case Cell::gru:
      return "gru";
    case Cell::lstm:
      return "lstm";
  }
  return "unknown";
}

Cell cell_from_string(const std::string& name) {
  for (const Cell c : kCells)
    if (name == to_string(c)) return c;
  invalid("cell: expected ", cell_choices(), ", got '", name, "'");
}

std::string cell_choices(char quote) { return choices(kCells, quote); }

void ModelConfig::validate() const {
  if (cell != Cell::elman && cell != Cell::gru && cell != Cell::lstm)
    invalid("cell: expected ", cell_choices(), ", got an unknown Cell ", static_cast<int>(cell));
  if (num_layers <= 0) invalid("num_layers: expected a positive integer, got ", num_layers);
  if (cell != Cell::elman && activation != Activation::tanh)
    invalid("activation: expected 'tanh' for the ", to_string(cell), " cell (its gates fix the nonlinearities), got '",
            to_string(activation), "'");
  if (input_size <= 0) invalid("input_size: expected a positive integer, got ", input_size);
  if (hidden_size <= 0) invalid("hidden_size: expected a positive integer, got ", hidden_size);
  if (output_size <= 0) invalid("output_size: expected a positive integer, got ", output_size);
  // The parameter count, with every product and sum checked (ParameterLayout then computes
  // the same offsets with plain arithmetic).
  const Index d = input_size, h = hidden_size, q = output_size;
  const char* W_hx_name = d > h ? "input_size" : "hidden_size";
  const char* W_qh_name = q > h ? "output_size" : "hidden_size";
  const char* total_name = largest_size_name();
  const char* what = "the parameter count";
  const Index G = gates(), L = num_layers;
  const bool gated = cell != Cell::elman;
  // Layer 0: W_hx (G h x d), W_hh (G h x h), one bias of G h (Elman) or two (gated).
  Index total = detail::checked_size(W_hx_name, "W_hx (gates x hidden_size x input_size)", {G, h, d}, 0);
  const Index W_hh = detail::checked_size("hidden_size", "W_hh (gates x hidden_size x hidden_size)", {G, h, h}, 0);
  total = detail::checked_add(total_name, what, total, W_hh);
  if (bias)
    total = detail::checked_add(total_name, what, total,
                                detail::checked_size("hidden_size", what, {gated ? 2 : 1, G, h}, 0));
  // Layers 1 .. L - 1 read h: W_hx is G h x h, as W_hh.
  if (L > 1) {
    Index above = detail::checked_add("hidden_size", what, W_hh, W_hh);
    if (bias)
      above = detail::checked_add("hidden_size", what, above,
                                  detail::checked_size("hidden_size", what, {gated ? 2 : 1, G, h}, 0));
    total = detail::checked_add(total_name, what, total, detail::checked_size("num_layers", what, {L - 1, above}, 0));
  }
  total = detail::checked_add(total_name, what, total,
                              detail::checked_size(W_qh_name, "W_qh (output_size x hidden_size)", {q, h}, 0));
  if (bias) total = detail::checked_add(total_name, what, total, q);
}

const char* ModelConfig::largest_size_name() const {
  if (input_size > hidden_size && input_size >= output_size) return "input_size";
  if (output_size > hidden_size && output_size > input_size) return "output_size";
  return "hidden_size";
}

}  // namespace rnnbptt
