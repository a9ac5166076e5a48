#include "arrays.hpp"
#include "bindings.hpp"
#include "rnnbptt/train/diagnostics.hpp"

namespace rnnbptt::bindings {

namespace {

const Shape square{{-1, -1}, {"h", "h"}};

void check_square(const py::array& a) {
  if (a.shape(0) != a.shape(1) || a.shape(0) == 0)
    throw InvalidArgument("W_hh: expected a non-empty square matrix, got " + describe(a));
}

}  // namespace

void define_diagnostics(py::module_& m) {
  // Both diagnostics take a square W_hh of either dtype and return a double.
  const auto define_square = [&m](const char* name, auto compute) {
    m.def(
        name,
        [compute](py::handle W) {
          return by_dtype(W, "W_hh", square, false, [&compute](py::array& a, auto* tag) {
            using S = std::remove_pointer_t<decltype(tag)>;
            check_square(a);
            const Span<const S> data = span_of<S>(a);
            const Index h = a.shape(0);
            py::gil_scoped_release release;
            return compute(data, h);
          });
        },
        py::arg("W_hh"));
  };
  define_square("spectral_radius", [](auto W, Index h) { return spectral_radius(W, h); });
  define_square("largest_singular_value", [](auto W, Index h) { return largest_singular_value(W, h); });
}

}  // namespace rnnbptt::bindings
