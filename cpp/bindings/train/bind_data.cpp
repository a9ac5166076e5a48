// rnnbptt/train/data.hpp for Python: the one sequential split of a token stream
// (rnnbptt.data.sequential_batches draws the offset and yields its chunks) and of a dense series
// (rnnbptt.datasets.DenseSeries).
#include <pybind11/numpy.h>

#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "arrays.hpp"
#include "bindings.hpp"
#include "rnnbptt/train/data.hpp"

namespace rnnbptt::bindings {

namespace {

// A (steps, batch) int64 array owning `values` (moved, not copied).
py::array owning(std::vector<std::int64_t>&& values, Index steps, Index batch) {
  auto* heap = new std::vector<std::int64_t>(std::move(values));
  py::capsule owner(heap, [](void* p) { delete static_cast<std::vector<std::int64_t>*>(p); });
  return py::array_t<std::int64_t>({static_cast<py::ssize_t>(steps), static_cast<py::ssize_t>(batch)}, heap->data(),
                                   owner);
}

// A (steps, batch, features) array owning `values` (moved, not copied).
template <class Scalar>
py::array owning(Buffer<Scalar>&& values, Index steps, Index batch, Index features) {
  auto* heap = new Buffer<Scalar>(std::move(values));
  py::capsule owner(heap, [](void* p) { delete static_cast<Buffer<Scalar>*>(p); });
  return py::array_t<Scalar>(
      {static_cast<py::ssize_t>(steps), static_cast<py::ssize_t>(batch), static_cast<py::ssize_t>(features)},
      heap->data(), owner);
}

}  // namespace

void define_data(py::module_& m) {
  m.def(
      "split_streams",
      [](py::handle corpus, Index batch, Index num_steps, Index offset) {
        const py::array a = require<std::int64_t>(corpus, "corpus", Shape{{-1}, {"size"}});
        Streams s;
        {
          const Span<const std::int64_t> ids = span_of<std::int64_t>(a);
          py::gil_scoped_release release;
          s = split_streams(ids, batch, num_steps, offset);
        }
        return py::make_tuple(owning(std::move(s.inputs), s.steps, s.batch),
                              owning(std::move(s.targets), s.steps, s.batch));
      },
      py::arg("corpus"), py::arg("batch"), py::arg("num_steps"), py::arg("offset") = 0,
      "d2l's sequential partitioning: (inputs, targets), each (chunks * num_steps, batch) int64, time-major.");
  m.def(
      "split_dense_streams",
      [](py::handle inputs, py::handle targets, Index batch, Index num_steps, Index offset) {
        return by_dtype(inputs, "inputs", Shape{{-1, -1}, {"steps", "d"}}, false, [&](py::array& in, auto* tag) {
          using S = std::remove_pointer_t<decltype(tag)>;
          const py::array out = require<S>(targets, "targets", Shape{{-1, -1}, {"steps", "q"}});
          const Index d = in.shape(1), q = out.shape(1);
          DenseStreams<S> s;
          {
            const Span<const S> x = span_of<S>(in), y = span_of<S>(out);
            py::gil_scoped_release release;
            s = split_dense_streams<S>(x, d, y, q, batch, num_steps, offset);
          }
          return py::make_tuple(owning<S>(std::move(s.inputs), s.steps, s.batch, d),
                                owning<S>(std::move(s.targets), s.steps, s.batch, q));
        });
      },
      py::arg("inputs"), py::arg("targets"), py::arg("batch"), py::arg("num_steps"), py::arg("offset") = 0,
      "The same split of a dense series: (inputs, targets), (chunks * num_steps, batch, d) and (..., q), "
      "time-major.");
}

}  // namespace rnnbptt::bindings
