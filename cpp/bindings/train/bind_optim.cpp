#include "arrays.hpp"
#include "bindings.hpp"
#include "rnnbptt/train/optim.hpp"

namespace rnnbptt::bindings {

namespace {

// The two flat buffers of an optimizer step, checked, each under the lock of the model whose
// buffer it views (BufferGuard), for as long as this object lives.
template <class Scalar>
struct ParamsAndGrads {
  ParamsAndGrads(py::handle params, py::handle grads)
      : p(require_writeable<Scalar>(params, "params", Shape{{-1}, {"size"}})),
        g(require<Scalar>(grads, "grads", Shape{{p.size()}, {"size=" + std::to_string(p.size())}})),
        params_guard(p),
        grads_guard(g) {}
  py::array p, g;
  BufferGuard params_guard, grads_guard;
};

template <class Scalar>
void define_adam(py::module_& m, const char* adam_name) {
  py::class_<Adam<Scalar>>(m, adam_name, "Adam over a flat parameter buffer.")
      .def(py::init<Index, double, double, double, double, double>(), py::arg("size"), py::arg("lr") = 1e-3,
           py::arg("beta1") = 0.9, py::arg("beta2") = 0.999, py::arg("eps") = 1e-8, py::arg("weight_decay") = 0.0)
      .def(
          "step",
          [](Adam<Scalar>& adam, py::handle params, py::handle grads) {
            ParamsAndGrads<Scalar> buffers(params, grads);
            const Span<Scalar> pd = mutable_span_of<Scalar>(buffers.p);
            const Span<const Scalar> gd = span_of<Scalar>(buffers.g);
            py::gil_scoped_release release;
            adam.step(pd, gd);
          },
          py::arg("params"), py::arg("grads"))
      .def_property(
          "lr", [](const Adam<Scalar>& adam) { return adam.lr; },
          [](Adam<Scalar>& adam, double lr) {
            // Checked like the constructor's: "lr: expected a finite value > 0, got inf".
            const double previous = adam.lr;
            adam.lr = lr;
            try {
              adam.validate();
            } catch (...) {
              adam.lr = previous;
              throw;
            }
          })
      .def_readonly("beta1", &Adam<Scalar>::beta1)
      .def_readonly("beta2", &Adam<Scalar>::beta2)
      .def_readonly("eps", &Adam<Scalar>::eps)
      .def_readonly("weight_decay", &Adam<Scalar>::weight_decay)
      .def_readwrite("step_count", &Adam<Scalar>::step_count)
      .def_property_readonly("m",
                             [](py::object self) {
                               auto& a = self.cast<Adam<Scalar>&>();
                               return py::array_t<Scalar>({static_cast<py::ssize_t>(a.m.size())}, a.m.data(), self);
                             })
      .def_property_readonly("v", [](py::object self) {
        auto& a = self.cast<Adam<Scalar>&>();
        return py::array_t<Scalar>({static_cast<py::ssize_t>(a.v.size())}, a.v.data(), self);
      });
}

}  // namespace

void define_optim(py::module_& m) {
  m.attr("ADAM_MAX_STEPS") = kAdamMaxSteps;
  m.def(
      "sgd_step",
      [](py::handle params, py::handle grads, double lr, double weight_decay) {
        by_dtype(params, "params", Shape{{-1}, {"size"}}, true, [&](py::array&, auto* tag) {
          using Scalar = std::remove_pointer_t<decltype(tag)>;
          ParamsAndGrads<Scalar> buffers(params, grads);
          const Span<Scalar> pd = mutable_span_of<Scalar>(buffers.p);
          const Span<const Scalar> gd = span_of<Scalar>(buffers.g);
          py::gil_scoped_release release;
          sgd_step<Scalar>(pd, gd, lr, weight_decay);
        });
      },
      py::arg("params"), py::arg("grads"), py::arg("lr"), py::arg("weight_decay") = 0.0);
  define_adam<float>(m, "AdamFloat32");
  define_adam<double>(m, "AdamFloat64");
}

}  // namespace rnnbptt::bindings
