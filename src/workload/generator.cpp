#include "workload/generator.h"

#include <array>
#include <cstdio>

#include "core/time_format.h"

namespace sluice::workload {
namespace {

constexpr std::array<std::string_view, 30> kCountries = {
    "NL", "DE", "FR", "BE", "GB", "US", "CA", "ES", "IT", "PT", "SE", "NO", "DK", "FI", "PL",
    "CZ", "AT", "CH", "IE", "GR", "HU", "RO", "BG", "HR", "SI", "SK", "LT", "LV", "EE", "LU",
};
constexpr std::array<std::string_view, 4> kDevices = {"ios", "android", "web", "kiosk"};

const char* consentFor(double u)
{
    if (u < 0.4)
        return "[0,1,2]";
    if (u < 0.7)
        return "[0,1]";
    if (u < 0.9)
        return "[0]";
    return "[]";
}

void appendf(std::string& out, const char* format, auto... args)
{
    char buf[256];
    int n = std::snprintf(buf, sizeof buf, format, args...);
    out.append(buf, static_cast<size_t>(n < 0 ? 0 : std::min(n, static_cast<int>(sizeof buf) - 1)));
}

}  // namespace

std::string_view countryCode(int index) { return kCountries[static_cast<size_t>(index) % kCountries.size()]; }
std::string_view deviceName(int index) { return kDevices[static_cast<size_t>(index) % kDevices.size()]; }

Generator::Generator(Options options) : options_(options), state_(options.seed * 0x9e3779b97f4a7c15ull + 1) {}

uint64_t Generator::random()
{
    // splitmix64: small, fast, and the same sequence everywhere.
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

Generator::Draw Generator::draw(uint64_t n)
{
    Draw d{};
    d.session = random() % options_.sessions;
    // A session belongs to one customer (each customer has sessions/customers of them), as on a
    // real checkout: a session's data key then covers one data subject.
    d.customer = (d.session * 7919 + 17) % options_.customers;
    d.country = static_cast<int>(random() % static_cast<uint64_t>(options_.countries));
    d.device = static_cast<int>(random() % static_cast<uint64_t>(options_.devices));
    d.ip = random();
    d.cents = random() % 50'000;
    d.items = 1 + random() % 9;
    d.consent = consentFor(uniform());
    d.timeMs = 0;
    if (options_.baseTimeMs) {
        d.timeMs = options_.baseTimeMs + static_cast<int64_t>(n) * options_.stepMs;
        if (options_.jitterMs)
            d.timeMs -= static_cast<int64_t>(random() % static_cast<uint64_t>(options_.jitterMs + 1));
    }
    return d;
}

void Generator::appendValid(std::string& out, uint64_t n)
{
    const Draw d = draw(n);
    out += R"({"meta":{"contract":"acme/checkout/1.0.0","consent":)";
    out += d.consent;
    appendf(out, R"(,"event_id":"e-%llu-%llu")", static_cast<unsigned long long>(options_.seed),
            static_cast<unsigned long long>(n));
    if (options_.baseTimeMs)
        appendf(out, R"(,"event_time":%lld)", static_cast<long long>(d.timeMs));
    appendf(out, R"(},"session_id":"sess-%06llu-%08llx","customer_id":"cust-%05llu",)",
            static_cast<unsigned long long>(d.session), static_cast<unsigned long long>(d.session * 2654435761u),
            static_cast<unsigned long long>(d.customer));
    appendf(out, R"("email":"customer.%05llu@mail.example.com","ip":"10.%u.%u.%u",)",
            static_cast<unsigned long long>(d.customer), static_cast<unsigned>(d.ip & 0xff),
            static_cast<unsigned>((d.ip >> 8) & 0xff), static_cast<unsigned>((d.ip >> 16) & 0xff));
    appendf(out, R"("country":"%.*s","device":"%.*s","total":%llu.%02llu,"items":%llu})",
            static_cast<int>(kCountries[static_cast<size_t>(d.country)].size()),
            kCountries[static_cast<size_t>(d.country)].data(),
            static_cast<int>(kDevices[static_cast<size_t>(d.device)].size()),
            kDevices[static_cast<size_t>(d.device)].data(), static_cast<unsigned long long>(d.cents / 100),
            static_cast<unsigned long long>(d.cents % 100), static_cast<unsigned long long>(d.items));
    if (options_.padBytes) {
        out.pop_back();  // the closing brace
        out += R"(,"note":")";
        out.append(options_.padBytes, 'x');
        out += "\"}";
    }
}

std::string_view Generator::csvHeader()
{
    return "session_id,customer_id,email,ip,country,device,total,items,event_time,consent";
}

void Generator::nextCsv(std::string& out)
{
    const uint64_t n = produced_++;
    const Draw d = draw(n);
    appendf(out, "sess-%06llu-%08llx,cust-%05llu,customer.%05llu@mail.example.com,10.%u.%u.%u,",
            static_cast<unsigned long long>(d.session), static_cast<unsigned long long>(d.session * 2654435761u),
            static_cast<unsigned long long>(d.customer), static_cast<unsigned long long>(d.customer),
            static_cast<unsigned>(d.ip & 0xff), static_cast<unsigned>((d.ip >> 8) & 0xff),
            static_cast<unsigned>((d.ip >> 16) & 0xff));
    appendf(out, "%.*s,%.*s,%llu.%02llu,%llu,", static_cast<int>(kCountries[static_cast<size_t>(d.country)].size()),
            kCountries[static_cast<size_t>(d.country)].data(),
            static_cast<int>(kDevices[static_cast<size_t>(d.device)].size()),
            kDevices[static_cast<size_t>(d.device)].data(), static_cast<unsigned long long>(d.cents / 100),
            static_cast<unsigned long long>(d.cents % 100), static_cast<unsigned long long>(d.items));
    out += isoTimeMs(d.timeMs);
    out += ",\"";
    out += d.consent;
    out += '"';
}

std::optional<Reason> Generator::next(std::string& out)
{
    const uint64_t n = produced_++;
    if (options_.invalidFraction <= 0 || uniform() >= options_.invalidFraction) {
        appendValid(out, n);
        return std::nullopt;
    }
    // Invalid events, one kind after another; each differs from a valid one in one way.
    const char* meta = R"({"meta":{"contract":"acme/checkout/1.0.0","consent":[0,1]},)";
    const char* body = R"("session_id":"sess-x","customer_id":"cust-1","country":"NL","total":1.5)";
    switch (invalidKind_++ % 10) {
    case 0: out += R"({"meta":{"contract":"acme/checkout/1.0.0","consent":[0]},"session_id":"s1",)"; return Reason::kNotJson;
    case 1: out += R"(["an array", "not an object"])"; return Reason::kNotObject;
    case 2:
        out += R"({"meta":{"contract":"acme/unknown/9.9.9","consent":[0]},)";
        out += body;
        out += '}';
        return Reason::kUnknownContract;
    case 3:
        out += meta;
        out += R"("customer_id":"cust-1","country":"NL","total":1.5})";
        return Reason::kMissingField;
    case 4:
        out += meta;
        out += R"("session_id":"sess-x","country":"NL","total":"12.50"})";
        return Reason::kWrongType;
    case 5:
        out += meta;
        out += R"("session_id":"sess-x","country":"Netherlands","total":1.5})";
        return Reason::kPatternMismatch;
    case 6:
        out += meta;
        out += body;
        out += R"(,"coupon":"SPRING"})";
        return Reason::kUnknownField;
    case 7:
        out += meta;
        out += R"("session_id":"sess-x","email":42,"country":"NL","total":1.5})";
        return Reason::kPiiNotString;
    case 8:
        out += R"({"meta":{"contract":"acme/checkout/1.0.0","consent":"all"},)";
        out += body;
        out += '}';
        return Reason::kBadConsent;
    default:
        out += R"({"meta":{"contract":"acme/checkout/1.0.0","consent":[0],"event_time":-5},)";
        out += body;
        out += '}';
        return Reason::kTimestampOutOfRange;
    }
}

}  // namespace sluice::workload
