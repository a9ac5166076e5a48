#include "rnnbptt/train/optim.hpp"

#include <cmath>
#include <limits>

#include "core/checks.hpp"
#include "rnnbptt/core/error.hpp"

namespace rnnbptt {

using detail::invalid;

namespace {
void check_lr(double lr) {
  if (!(lr > 0.0) || !std::isfinite(lr)) invalid("lr: expected a finite value > 0, got ", lr);
}
void check_decay(double decay) {
  if (!(decay >= 0.0) || !std::isfinite(decay)) invalid("weight_decay: expected a finite value >= 0, got ", decay);
}
// A hyper-parameter (checked finite and >= 0 as a double) as the parameters' Scalar: refused when
// it would become inf (a float above 3.4e38: NaN or inf parameters) or 0 when it is not (a float
// below 1.4e-45: an lr with no effect, an eps that divides by 0).
template <class Scalar>
Scalar in_precision(const char* name, double value) {
  const Scalar x = static_cast<Scalar>(value);
  if (std::isinf(x) || (x == Scalar(0) && value != 0.0))
    invalid(name, ": expected a value representable in the parameters' precision (", sizeof(Scalar) * 8,
            "-bit: magnitude from ", std::numeric_limits<Scalar>::denorm_min(), " to ",
            std::numeric_limits<Scalar>::max(), "), got ", value);
  return x;
}
}  // namespace

template <class Scalar>
void sgd_step(Span<Scalar> params, Span<const Scalar> grads, double lr, double weight_decay) {
  check_lr(lr);
  check_decay(weight_decay);
  if (params.size() < 0) invalid("params: expected a buffer length >= 0, got ", params.size());
  const Index size = params.size();
  detail::check_span("params", params, {size}, "size");  // a null pointer with values
  detail::check_span("grads", grads, {size}, "the length of params");
  const Scalar rate = in_precision<Scalar>("lr", lr), decay = in_precision<Scalar>("weight_decay", weight_decay);
  if (weight_decay == 0.0) {
    for (Index i = 0; i < size; ++i) params[i] -= rate * grads[i];
  } else {
    for (Index i = 0; i < size; ++i) params[i] -= rate * (grads[i] + decay * params[i]);
  }
}

template <class Scalar>
Adam<Scalar>::Adam(Index size, double lr_, double beta1_, double beta2_, double eps_, double weight_decay_)
    : AdamSettings{lr_, beta1_, beta2_, eps_, weight_decay_, 0}, m(), v() {
  validate();
  if (size < 0) invalid("size: expected a number of parameters >= 0, got ", size);
  const Index n = detail::checked_size("size", "the optimizer state", {size}, sizeof(Scalar));
  detail::grow_buffer(m, n, "size", "the first moments");
  detail::grow_buffer(v, n, "size", "the second moments");
}

void AdamSettings::validate() const {
  check_lr(lr);
  check_decay(weight_decay);
  if (!(beta1 >= 0.0 && beta1 < 1.0)) invalid("beta1: expected a value in [0, 1), got ", beta1);
  if (!(beta2 >= 0.0 && beta2 < 1.0)) invalid("beta2: expected a value in [0, 1), got ", beta2);
  if (!(eps > 0.0) || !std::isfinite(eps)) invalid("eps: expected a finite value > 0, got ", eps);
  // step() adds 1 and raises beta to it: a negative count gives a correction of the wrong sign,
  // and the largest Index would overflow.
  if (step_count < 0 || step_count >= kAdamMaxSteps)
    invalid("step_count: expected a number of steps taken in [0, 2^62), got ", step_count);
}

template <class Scalar>
void Adam<Scalar>::step(Span<Scalar> params, Span<const Scalar> grads) {
  const Index size = static_cast<Index>(m.size());
  if (static_cast<Index>(v.size()) != size) invalid("v: expected ", size, " values (the size of m), got ", v.size());
  detail::check_span("params", params, {size}, "the optimizer's size");
  detail::check_span("grads", grads, {size}, "the optimizer's size");
  validate();                      // the hyper-parameters are public members: a NaN/inf lr set since is refused
  const Index t = step_count + 1;  // counted once every check has passed
  if (t >= kAdamMaxSteps)
    invalid("step_count: expected a number of steps taken in [0, 2^62) after this step, got ", step_count,
            " before it");
  const double correction1 = 1.0 - std::pow(beta1, static_cast<double>(t));
  const double correction2 = 1.0 - std::pow(beta2, static_cast<double>(t));
  // 1 - beta is computed in double and rounded once, as torch.optim.Adam does: in float,
  // 1 - float(0.999) would be off by 1.3e-5 relative.
  const Scalar b1 = static_cast<Scalar>(beta1), b2 = static_cast<Scalar>(beta2);
  const Scalar one_minus_b1 = static_cast<Scalar>(1.0 - beta1), one_minus_b2 = static_cast<Scalar>(1.0 - beta2);
  in_precision<Scalar>("lr", lr);
  const Scalar step_size = static_cast<Scalar>(lr / correction1);
  if (std::isinf(step_size))
    invalid("lr: expected lr / (1 - beta1^t), the bias-corrected step (", lr / correction1, " at step ", t,
            "), to be representable in the parameters' precision, got lr = ", lr);
  const Scalar root_c2 = static_cast<Scalar>(std::sqrt(correction2));
  const Scalar epsilon = in_precision<Scalar>("eps", eps), decay = in_precision<Scalar>("weight_decay", weight_decay);
  step_count = t;
  for (Index i = 0; i < size; ++i) {
    const Scalar g = grads[i] + decay * params[i];
    m[i] = b1 * m[i] + one_minus_b1 * g;
    v[i] = b2 * v[i] + one_minus_b2 * g * g;
    params[i] -= step_size * m[i] / (std::sqrt(v[i]) / root_c2 + epsilon);
  }
}

template RNNBPTT_EXPORT void sgd_step<float>(Span<float>, Span<const float>, double, double);
template RNNBPTT_EXPORT void sgd_step<double>(Span<double>, Span<const double>, double, double);
template struct RNNBPTT_EXPORT Adam<float>;
template struct RNNBPTT_EXPORT Adam<double>;

}  // namespace rnnbptt
