// Every strategy's arithmetic lives here: validation, the string form, and the schedule
// (windows, lanes and the flow xi_t) that the backward driver runs.
#include "rnnbptt/bptt/truncation.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <string_view>

#include "core/checks.hpp"
#include "rnnbptt/core/error.hpp"

namespace rnnbptt {

using detail::invalid;

Truncation Truncation::full() { return Truncation{}; }

Truncation Truncation::regular(Index k) { return regular(k, k); }

Truncation Truncation::regular(Index k1, Index k2) {
  if (k1 < 1) invalid("k1: expected a positive number of steps, got ", k1);
  if (k2 < k1) invalid("k2: expected k2 >= k1 = ", k1, ", got ", k2);
  Truncation t;
  t.kind_ = Kind::regular;
  t.k1_ = k1;
  t.k2_ = k2;
  return t;
}

Truncation Truncation::randomized(double pi, std::uint64_t seed) { return randomized(std::vector<double>{pi}, seed); }

Truncation Truncation::randomized(std::vector<double> schedule, std::uint64_t seed) {
  if (schedule.empty()) invalid("pi: expected a probability or a non-empty schedule, got an empty schedule");
  for (std::size_t i = 0; i < schedule.size(); ++i)
    if (!(schedule[i] > 0.0 && schedule[i] <= 1.0))
      invalid("pi: expected every keep probability in (0, 1], got ", schedule[i], " at index ", i);
  Truncation t;
  t.kind_ = Kind::randomized;
  t.keep_probability_ = std::move(schedule);
  t.seed_ = seed;
  return t;
}

bool Truncation::operator==(const Truncation& other) const {
  return kind_ == other.kind_ && k1_ == other.k1_ && k2_ == other.k2_ && keep_probability_ == other.keep_probability_ &&
         seed_ == other.seed_;
}

// ---- the string form ----------------------------------------------------------------------

namespace {

const char* const kForms = "'full', 'regular:K', 'regular:K1,K2' or 'randomized:PI[,PI...][,seed=S]'";

[[noreturn]] void bad_spec(const std::string& spec, const std::string& why) {
  invalid("truncation: expected ", kForms, ", got '", spec, "'", why.empty() ? "" : " (", why, why.empty() ? "" : ")");
}

// The whole of `text` as a number, or bad_spec.
template <class Number>
Number number(std::string_view text, const std::string& spec, const char* what) {
  Number value{};
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end)
    bad_spec(spec, std::string(what) + " '" + std::string(text) + "' is not a valid number");
  return value;
}

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  for (std::size_t start = 0;;) {
    const std::size_t at = text.find(separator, start);
    parts.push_back(text.substr(start, at == std::string_view::npos ? at : at - start));
    if (at == std::string_view::npos) return parts;
    start = at + 1;
  }
}

std::string shortest(double value) {  // the shortest text that reads back as the same double
  char text[32];
  const auto [ptr, ec] = std::to_chars(text, text + sizeof text, value);
  (void)ec;
  return std::string(text, ptr);
}

}  // namespace

Truncation Truncation::parse(const std::string& spec) {
  const std::string_view whole(spec);
  const std::size_t colon = whole.find(':');
  const std::string_view name = whole.substr(0, colon);
  const bool has_args = colon != std::string_view::npos;
  const std::vector<std::string_view> args =
      has_args ? split(whole.substr(colon + 1), ',') : std::vector<std::string_view>{};
  try {
    if (name == "full" && !has_args) return full();
    if (name == "regular" && (args.size() == 1 || args.size() == 2)) {
      const Index k1 = number<Index>(args[0], spec, "K1");
      return regular(k1, args.size() == 2 ? number<Index>(args[1], spec, "K2") : k1);
    }
    if (name == "randomized" && !args.empty()) {
      std::vector<double> pi;
      std::uint64_t seed = 0;
      for (std::size_t i = 0; i < args.size(); ++i) {
        if (args[i].substr(0, 5) == "seed=") {
          if (i + 1 != args.size()) bad_spec(spec, "seed=S must come last");
          seed = number<std::uint64_t>(args[i].substr(5), spec, "S");
        } else {
          pi.push_back(number<double>(args[i], spec, "PI"));
        }
      }
      return randomized(std::move(pi), seed);
    }
  } catch (const InvalidArgument& error) {
    const std::string message = error.what();
    if (message.rfind("truncation:", 0) == 0) throw;
    bad_spec(spec, message);
  }
  bad_spec(spec, "");
}

std::string Truncation::to_string() const {
  switch (kind_) {
    case Kind::full:
      return "full";
    case Kind::regular:
      return k1_ == k2_ ? detail::concat("regular:", k1_) : detail::concat("regular:", k1_, ",", k2_);
    case Kind::randomized: {
      std::string out = "randomized:";
      for (double pi : keep_probability_) out += shortest(pi) + ",";
      return out + "seed=" + std::to_string(seed_);
    }
  }
  return {};
}

void Truncation::check_chunk(Index steps, const char* argument) const {
  if (kind_ == Kind::regular && steps % k1_ != 0)
    invalid(argument, ": expected a multiple of k1 = ", k1_, " for ", to_string(),
            " (so that blocks do not straddle chunks), got ", steps);
}

// ---- the schedule -------------------------------------------------------------------------

template <class Scalar>
Index Truncation::schedule(std::int64_t step_offset, Index steps, Index context, Span<Scalar> flow_span,
                           std::vector<Window>& windows) const {
  if (step_offset < 0) invalid("step_offset: expected a global step index >= 0, got ", step_offset);
  if (steps < 1) invalid("steps: expected at least one step, got ", steps);
  if (step_offset > std::numeric_limits<std::int64_t>::max() - steps)
    invalid("step_offset: expected at most 2**63 - 1 - T = ", std::numeric_limits<std::int64_t>::max() - steps,
            " (global step indices must fit), got ", step_offset);
  if (context < 0 || context >= steps) invalid("context: expected 0 <= context < steps = ", steps, ", got ", context);
  detail::check_span("flow", flow_span, {steps}, "steps");
  Scalar* flow = flow_span.data();
  const Index T = steps, P = context;
  windows.clear();

  if (kind_ == Kind::regular) {
    // One window per block of k1 steps; blocks end where the global step index is a multiple
    // of k1. A window injects its block's losses (those after the history) and reaches
    // k2 - k1 steps before the block's nominal first step. Window i and window i + L never
    // overlap when (L - 1) k1 >= k2 - k1, so dealing windows round-robin into L lanes works.
    const Index reach = k2_ - k1_, lanes = 1 + (k2_ - 1) / k1_;  // ceil(k2 / k1), without overflow
    std::fill(flow, flow + T, Scalar(0));
    for (Index begin = P; begin < T;) {
      // The block is [begin - phase, begin - phase + k1); it may start before step 0 and end
      // after T. Written so that no intermediate leaves int64 when k1 or k2 is near 2^63:
      // 0 < k1 - phase <= k1 and 0 <= phase + reach < k2.
      const Index phase = static_cast<Index>((step_offset + begin) % k1_);
      const Index end = k1_ - phase >= T - begin ? T : begin + (k1_ - phase);
      const Index first = phase + reach >= begin ? 0 : begin - phase - reach;
      windows.push_back({first, begin, end, static_cast<Index>(windows.size()) % lanes});
      for (Index t = first + 1; t < end; ++t) flow[t] = Scalar(1);
      if (first == 0) flow[0] = Scalar(1);
      begin = end;
    }
    return std::min<Index>(lanes, static_cast<Index>(windows.size()));
  }

  // Full and Randomized: factors first, then the windows are the runs between the cuts. The
  // sequence start is never a cut (flow[0] = 1 hands the gradient on to h_0).
  std::fill(flow, flow + T, Scalar(1));
  if (kind_ == Kind::randomized) {
    const Index last = static_cast<Index>(keep_probability_.size());
    Index length = 1;  // steps in the current segment before step t
    for (Index t = 1; t < T; ++t) {
      const double pi = keep_probability_[std::min(length, last) - 1];
      if (uniform_at(seed_, step_offset + t + 1) < pi) {
        flow[t] = static_cast<Scalar>(1.0 / pi);
        ++length;
      } else {
        flow[t] = Scalar(0);
        length = 1;
      }
    }
  }
  for (Index first = 0; first < T;) {
    Index end = first + 1;
    while (end < T && flow[end] != Scalar(0)) ++end;
    if (end > P) windows.push_back({first, std::max(first, P), end, 0});  // else: history only
    first = end;
  }
  return 1;
}

template RNNBPTT_EXPORT Index Truncation::schedule<float>(std::int64_t, Index, Index, Span<float>,
                                                          std::vector<Window>&) const;
template RNNBPTT_EXPORT Index Truncation::schedule<double>(std::int64_t, Index, Index, Span<double>,
                                                           std::vector<Window>&) const;

}  // namespace rnnbptt
