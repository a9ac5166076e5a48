// Turning NumPy arguments into the core's input and target views (no copies).
#pragma once

#include <string>
#include <thread>

#include "arrays.hpp"
#include "rnnbptt/core/sequence.hpp"

namespace rnnbptt::bindings {

template <class Scalar>
struct Input {
  py::array array;  // keeps the memory alive
  SequenceInput<Scalar> sequence;
  py::array resets, lengths;  // read during the forward call only
};

// x: dense (T, n, d) of the model's dtype, or token ids (T, n) int32/int64.
template <class Scalar>
Input<Scalar> input_from(py::handle x, Index d) {
  const std::string d_name = "d=" + std::to_string(d);
  const std::string expected = std::string("dense ") + dtype_name<Scalar>() + " values of shape (T, n, " + d_name +
                               ") or int32/int64 token ids of shape (T, n)";
  py::array a = as_array(x, "x", expected);
  if (is_id_array(a)) {
    Ids ids = require_ids(a, "x", Shape{{-1, -1}, {"T", "n"}});
    return {ids.array, SequenceInput<Scalar>::from_tokens(ids.view, a.shape(0), a.shape(1))};
  }
  if (!has_dtype<Scalar>(a))
    throw py::type_error("x: expected " + expected + ", got " + describe(a) + conversion_hint<Scalar>(a, "x"));
  if (a.ndim() != 3 || a.shape(2) != d) throw InvalidArgument("x: expected " + expected + ", got " + describe(a));
  check_layout(a, "x", dtype_name<Scalar>(), Shape{{-1, -1, d}, {"T", "n", d_name}});
  return {a, SequenceInput<Scalar>::from_dense(span_of<Scalar>(a), a.shape(0), a.shape(1))};
}

// resets: None or bool (T, n); lengths: None or int64 (n,) (SequenceInput says what they do).
template <class Scalar>
void add_cuts(Input<Scalar>& in, py::handle resets, py::handle lengths) {
  const Index T = in.sequence.steps, n = in.sequence.batch;
  const std::string t = "T=" + std::to_string(T), b = "n=" + std::to_string(n);
  if (!resets.is_none()) {
    in.resets = require<bool>(resets, "resets", Shape{{T, n}, {t, b}});
    // NumPy's bool is one byte; the core refuses any byte but 0 and 1 (a view of other bytes).
    in.sequence.resets = {static_cast<const std::uint8_t*>(in.resets.data()), static_cast<Index>(in.resets.size())};
  }
  if (!lengths.is_none()) {
    in.lengths = require<std::int64_t>(lengths, "lengths", Shape{{n}, {b}});
    in.sequence.lengths = span_of<std::int64_t>(in.lengths);
  }
}

// Model.forward as the bindings run it: `in` from h0 (None: zeros; else the model's state
// shape), with the GIL released; then `s` records that the model holds this forward: its input
// kept alive (dense x is read again by backward), the forward's thread, one more forward.
template <class Scalar>
void run_forward(PyModel<Scalar>& s, const Input<Scalar>& in, py::handle h0) {
  Span<const Scalar> h0_data;  // empty: zeros
  py::array h0_array;
  if (!h0.is_none()) {
    h0_array = require<Scalar>(h0, "h0", state_shape(s.model.config(), in.sequence.batch));
    h0_data = span_of<Scalar>(h0_array);
  }
  {
    py::gil_scoped_release release;
    s.model.forward(in.sequence, h0_data);
  }
  s.input = in.array;
  s.forward_thread = std::this_thread::get_id();
  ++s.forwards;
}

template <class Scalar>
struct TargetArrays {
  py::array values;
  py::array weights;
  Targets<Scalar> targets;
};

// targets: class ids (T, n) for cross-entropy, or dense (T, n, q) for squared error;
// weights: optional (T, n) of the model's dtype.
template <class Scalar>
TargetArrays<Scalar> targets_from(py::handle targets, py::handle weights, Index T, Index n, Index q) {
  const std::string t = "T=" + std::to_string(T), b = "n=" + std::to_string(n), c = "q=" + std::to_string(q);
  TargetArrays<Scalar> out;
  Span<const Scalar> w;  // empty: not given
  if (!weights.is_none()) {
    out.weights = require<Scalar>(weights, "weights", Shape{{T, n}, {t, b}});
    w = span_of<Scalar>(out.weights);
  }
  const std::string expected = "int32/int64 class ids of shape (" + t + ", " + b + ") or " + dtype_name<Scalar>() +
                               " values of shape (" + t + ", " + b + ", " + c + ")";
  py::array a = as_array(targets, "targets", expected);
  if (is_id_array(a)) {
    Ids ids = require_ids(a, "targets", Shape{{T, n}, {t, b}});
    out.values = ids.array;
    out.targets = Targets<Scalar>::from_classes(ids.view, w);
    return out;
  }
  if (!has_dtype<Scalar>(a))
    throw py::type_error("targets: expected " + expected + ", got " + describe(a) +
                         conversion_hint<Scalar>(a, "targets"));
  check_layout(a, "targets", dtype_name<Scalar>(), Shape{{T, n, q}, {t, b, c}});
  out.values = a;
  out.targets = Targets<Scalar>::from_dense(span_of<Scalar>(a), w);
  return out;
}

}  // namespace rnnbptt::bindings
