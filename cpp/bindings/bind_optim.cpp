#include "arrays.hpp"
#include "bindings.hpp"
#include "rnnbptt/optim.hpp"

namespace rnnbptt::bindings {

namespace {

template <class Scalar>
std::pair<py::array, py::array> params_and_grads(py::handle params, py::handle grads) {
  py::array p = require_writeable<Scalar>(params, "params", Shape{{-1}, {"size"}});
  py::array g = require<Scalar>(grads, "grads", Shape{{p.size()}, {"size=" + std::to_string(p.size())}});
  return {p, g};
}

template <class Scalar>
void define_adam(py::module_& m, const char* adam_name) {
  py::class_<Adam<Scalar>>(m, adam_name, "Adam over a flat parameter buffer.")
      .def(py::init<Index, double, double, double, double, double>(), py::arg("size"),
           py::arg("lr") = 1e-3, py::arg("beta1") = 0.9, py::arg("beta2") = 0.999,
           py::arg("eps") = 1e-8, py::arg("weight_decay") = 0.0)
      .def("step", [](Adam<Scalar>& adam, py::handle params, py::handle grads) {
        auto [p, g] = params_and_grads<Scalar>(params, grads);
        Scalar* pd = static_cast<Scalar*>(p.mutable_data());
        const Scalar* gd = static_cast<const Scalar*>(g.data());
        const Index size = p.size();
        py::gil_scoped_release release;
        adam.step(pd, gd, size);
      }, py::arg("params"), py::arg("grads"))
      .def_readwrite("lr", &Adam<Scalar>::lr)
      .def_readonly("beta1", &Adam<Scalar>::beta1)
      .def_readonly("beta2", &Adam<Scalar>::beta2)
      .def_readonly("eps", &Adam<Scalar>::eps)
      .def_readonly("weight_decay", &Adam<Scalar>::weight_decay)
      .def_readwrite("step_count", &Adam<Scalar>::step_count)
      .def_property_readonly("m", [](py::object self) {
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
  m.def("sgd_step", [](py::handle params, py::handle grads, double lr, double weight_decay) {
    by_dtype(params, "params", Shape{{-1}, {"size"}}, true, [&](py::array&, auto* tag) {
      using Scalar = std::remove_pointer_t<decltype(tag)>;
      auto [p, g] = params_and_grads<Scalar>(params, grads);
      Scalar* pd = static_cast<Scalar*>(p.mutable_data());
      const Scalar* gd = static_cast<const Scalar*>(g.data());
      const Index size = p.size();
      py::gil_scoped_release release;
      sgd_step(pd, gd, size, lr, weight_decay);
    });
  }, py::arg("params"), py::arg("grads"), py::arg("lr"), py::arg("weight_decay") = 0.0);
  define_adam<float>(m, "AdamFloat32");
  define_adam<double>(m, "AdamFloat64");
}

}  // namespace rnnbptt::bindings
