// The checkout contract of the spec (plus a few fields to exercise types), aggregation specs
// over it, and events as Value spans.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "aggregate/siphash.h"
#include "core/spec.h"
#include "core/value.h"

namespace sluice::aggregate::testing {

enum Field : int { kSession, kCustomer, kEmail, kIp, kCountry, kDevice, kTotal, kItems, kVip, kTags, kScores, kRatio };

inline ContractSpec checkoutContract()
{
    ContractSpec c;
    c.ref = "acme/checkout/1.0.0";
    auto field = [&](std::string name, FieldType type, int pii = -1, bool array = false) {
        FieldSpec f;
        f.name = std::move(name);
        f.type = type;
        f.pii = pii;
        f.array = array;
        c.fields.push_back(f);
    };
    field("session_id", FieldType::kString, 0);
    field("customer_id", FieldType::kString, 1);
    field("email", FieldType::kString, 2);
    field("ip", FieldType::kString, 2);
    field("country", FieldType::kString);
    field("device", FieldType::kString);
    field("total", FieldType::kNumber);
    field("items", FieldType::kInteger);
    field("vip", FieldType::kBoolean);
    field("tags", FieldType::kString, -1, true);
    field("scores", FieldType::kNumber, -1, true);
    field("ratio", FieldType::kNumber);
    c.keyField = "session_id";
    c.keyFieldIndex = kSession;
    c.subjectField = "customer_id";
    c.subjectFieldIndex = kCustomer;
    return c;
}

inline MetricSpec metric(MetricKind kind, std::string field = "")
{
    return MetricSpec{kind, std::move(field)};
}

// The reference workload's aggregation.
inline AggregationSpec revenueByCountry()
{
    AggregationSpec a;
    a.name = "revenue_by_country";
    a.contract = "acme/checkout/1.0.0";
    a.windowMs = 60'000;
    a.groupBy = {"country"};
    a.metrics = {metric(MetricKind::kCount), metric(MetricKind::kSum, "total"),
                 metric(MetricKind::kDistinct, "customer_id")};
    a.minGroupSize = 1;
    return a;
}

// Every metric kind.
inline AggregationSpec everyMetric(int64_t windowMs, int64_t latenessMs = 0)
{
    AggregationSpec a = revenueByCountry();
    a.name = "every_metric";
    a.windowMs = windowMs;
    a.allowedLatenessMs = latenessMs;
    a.metrics = {metric(MetricKind::kCount),
                 metric(MetricKind::kSum, "total"),   metric(MetricKind::kAvg, "total"),
                 metric(MetricKind::kMin, "total"),   metric(MetricKind::kMax, "total"),
                 metric(MetricKind::kSum, "items"),   metric(MetricKind::kAvg, "items"),
                 metric(MetricKind::kMin, "items"),   metric(MetricKind::kMax, "items"),
                 metric(MetricKind::kDistinct, "customer_id")};
    return a;
}

inline constexpr std::array<uint8_t, kSipKeyBytes> kHashKey = {
    0x5a, 0x11, 0xce, 0x00, 0x42, 0x17, 0x99, 0x01, 0xfe, 0x23, 0x6b, 0x8c, 0x3d, 0x70, 0x0e, 0xd4};

inline constexpr ConsentMask kAllConsent = ~ConsentMask{0};

struct Ev {
    int64_t time = 0;
    ConsentMask consent = kAllConsent;
    std::optional<std::string> country = "NL";
    std::optional<std::string> device;
    std::optional<std::string> customer;
    std::optional<std::string> session;
    std::optional<double> total;
    std::optional<int64_t> items;
    std::optional<bool> vip;
    std::optional<double> ratio;

    // Views into this Ev: keep it alive while they are used.
    std::vector<Value> fields() const
    {
        std::vector<Value> v(12);
        if (country)
            v[kCountry] = Value::ofString(*country);
        if (device)
            v[kDevice] = Value::ofString(*device);
        if (customer)
            v[kCustomer] = Value::ofString(*customer);
        if (session)
            v[kSession] = Value::ofString(*session);
        if (total)
            v[kTotal] = Value::ofReal(*total);
        if (items)
            v[kItems] = Value::ofInt(*items);
        if (vip)
            v[kVip] = Value::ofBool(*vip);
        if (ratio)
            v[kRatio] = Value::ofReal(*ratio);
        return v;
    }
};

inline constexpr int64_t kSecond = 1000;
inline constexpr int64_t kMinute = 60 * kSecond;
inline constexpr int64_t kHour = 60 * kMinute;
inline constexpr int64_t kDay = 24 * kHour;
inline constexpr int64_t kT = 1763712000000;  // 2025-11-21T08:00:00Z, a day-aligned hour

}  // namespace sluice::aggregate::testing
