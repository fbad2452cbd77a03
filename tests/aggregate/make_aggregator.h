// An Aggregator over the checkout contract of fixtures.h, for the Catch2 tests (the benchmark
// makes its own).
#pragma once

#include <span>

#include <catch2/catch.hpp>

#include "aggregate/aggregator.h"
#include "fixtures.h"

namespace sluice::aggregate::testing {

// An aggregator over the checkout contract; one that cannot be made fails the test.
inline Aggregator make(const AggregationSpec& spec, std::span<const uint8_t, kSipKeyBytes> key = kHashKey)
{
    auto a = Aggregator::create(spec, checkoutContract(), key);
    INFO((a ? "" : a.status().message()));
    REQUIRE(a);
    return std::move(a.value());
}

}  // namespace sluice::aggregate::testing
