// The injected clock of the resilience stages: the proxy passes its monotonic clock, tests a
// variable they advance by hand, so every decision is deterministic under test.
#pragma once

#include <cstdint>
#include <functional>

namespace zonegate::resilience {

// Monotonic milliseconds.
using Clock = std::function<int64_t()>;

}  // namespace zonegate::resilience
