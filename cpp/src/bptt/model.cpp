#include <algorithm>
#include <cmath>
#include <limits>

#include "core/checks.hpp"
#include "core/finite.hpp"
#include "rnnbptt/bptt/model.hpp"
#include "rnnbptt/core/error.hpp"
#include "rnnbptt/core/random.hpp"

namespace rnnbptt {

using detail::invalid;

template <class Scalar>
Model<Scalar>::Model(const ModelConfig& config) : config_(config), layout_(config) {
  // layout_ validated the configuration and the parameter count; the buffers' bytes are
  // checked here, where the scalar type is known, and allocated with errors naming the size.
  const char* name = config_.largest_size_name();
  const Index total = detail::checked_size(name, "the parameters", {layout_.total}, sizeof(Scalar));
  detail::grow_buffer(params_, total, name, "the parameters");
  detail::grow_buffer(grads_, total, name, "the gradients");
}

namespace {
// The largest finite value of the parameters' type, as a double.
template <class Scalar>
constexpr double scalar_max() {
  return static_cast<double>(std::numeric_limits<Scalar>::max());
}
template <class Scalar>
const char* scalar_name() {
  return sizeof(Scalar) == 4 ? "float32" : "float64";
}
}  // namespace

template <class Scalar>
void Model<Scalar>::init_uniform(double bound, std::uint64_t seed) {
  if (!(bound >= 0.0) || !std::isfinite(bound)) invalid("bound: expected a finite value >= 0, got ", bound);
  // Draws lie in [-bound, bound): finite in Scalar when bound is, and the distribution's
  // width 2 * bound must be finite in double.
  if (bound > std::min(scalar_max<Scalar>(), std::numeric_limits<double>::max() / 2))
    invalid("bound: expected a finite value >= 0, got ", bound, " (parameters would not be finite in ",
            scalar_name<Scalar>(), ")");
  Random rng(seed);  // rnnbptt/core/random.hpp: the same weights on every platform
  for (Scalar& v : params_) v = static_cast<Scalar>((2.0 * rng.uniform() - 1.0) * bound);
}

template <class Scalar>
void Model<Scalar>::init_normal(double init_std, std::uint64_t seed) {
  if (!(init_std >= 0.0) || !std::isfinite(init_std)) invalid("init_std: expected a finite value >= 0, got ", init_std);
  auto draw = [&](auto&& use) {
    Random rng(seed);  // rnnbptt/core/random.hpp: the same weights on every platform
    for (const Tensor& t : layout_.tensors)
      for (Index i = 0; i < t.size(); ++i)
        use(t.offset + i, t.vector ? Scalar(0) : static_cast<Scalar>(init_std * rng.normal()));
  };
  // A normal draw is unbounded: when std is within a factor 2^20 of the type's largest value,
  // a draw could round to infinity, so the same draws are made once without writing, and the
  // parameters are left unchanged when one is not finite. (Below that, a draw would have to
  // be a 2^20-sigma event.)
  if (init_std > scalar_max<Scalar>() / 1048576.0) {
    draw([&](Index, Scalar v) {
      if (!std::isfinite(v))
        invalid("init_std: expected a finite value >= 0 whose draws are finite, got ", init_std,
                " (parameters would not be finite in ", scalar_name<Scalar>(), ")");
    });
  }
  draw([&](Index i, Scalar v) { params_[i] = v; });
}

template <class Scalar>
void Model<Scalar>::set_parameters(Span<const Scalar> values) {
  detail::check_span("values", values, {layout_.total}, "num_parameters");
  std::copy(values.begin(), values.end(), params_.begin());
}

template <class Scalar>
void Model<Scalar>::forward(const SequenceInput<Scalar>& x, Span<const Scalar> h0) {
  ws_.has_forward = false;
  rnn_forward(ws_, config_, layout_, parameters(), x, h0, 0);
}

template <class Scalar>
Span<const Scalar> Model<Scalar>::outputs() const {
  if (!ws_.has_forward) throw StateError("outputs: expected a forward pass first, got none");
  return {ws_.O.data(), ws_.steps * ws_.batch * config_.output_size};
}

template <class Scalar>
Span<const Scalar> Model<Scalar>::final_state() const {
  if (!ws_.has_forward) throw StateError("final_state: expected a forward pass first, got none");
  if (!config_.single_elman() || ws_.has_lengths) return {ws_.state_T.data(), config_.state_size(ws_.batch)};
  return {ws_.H.data() + ws_.steps * ws_.batch * config_.hidden_size, ws_.batch * config_.hidden_size};
}

template <class Scalar>
Span<const Scalar> Model<Scalar>::states() const {
  if (!ws_.has_forward) throw StateError("states: expected a forward pass first, got none");
  const Index nh = ws_.batch * config_.hidden_size;
  return {ws_.H.data() + nh, ws_.steps * nh};
}

template <class Scalar>
double Model<Scalar>::loss(const Targets<Scalar>& y) {
  return loss_forward(ws_, config_, y);
}

template <class Scalar>
void Model<Scalar>::set_output_gradient(Span<const Scalar> d_outputs) {
  if (!ws_.has_forward) throw StateError("d_outputs: expected a forward pass first, got none");
  const Index T = ws_.steps, n = ws_.batch, q = config_.output_size;
  const Index size = detail::check_span("d_outputs", d_outputs, {T, n, q}, "T x n x q");
  detail::check_finite("d_outputs", d_outputs.data(), {T, n, q});
  Eigen::Map<Eigen::Array<Scalar, Eigen::Dynamic, 1>>(ws_.dO.data(), size) =
      Eigen::Map<const Eigen::Array<Scalar, Eigen::Dynamic, 1>>(d_outputs.data(), size);
  // No gradient flows from a sequence's steps past its length.
  if (ws_.has_lengths)
    for (Index t = 0; t < T; ++t)
      for (Index i = 0; i < n; ++i)
        if (t >= ws_.lengths[i]) std::fill_n(ws_.dO.data() + (t * n + i) * q, q, Scalar(0));
  ws_.has_output_gradient = true;
}

template <class Scalar>
void Model<Scalar>::backward(const BackwardOptions<Scalar>& options) {
  rnn_backward(gradients(), ws_, config_, layout_, Span<const Scalar>(parameters()), options);
}

template class RNNBPTT_EXPORT Model<float>;
template class RNNBPTT_EXPORT Model<double>;

}  // namespace rnnbptt
