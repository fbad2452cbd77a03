// The reference workload's generator, checked against what the spec and the benchmarks rely on:
// the same seed gives the same events, every valid event passes the built-in contract and every
// invalid one is refused for exactly the reason the generator names, and the mix (consent,
// sessions per customer, countries, size) is the documented one.
#include <catch2/catch.hpp>

#include <map>
#include <set>
#include <string>

#include "config/builtin.h"
#include "config/config.h"
#include "contract/validator.h"
#include "core/arena.h"
#include "core/batch.h"
#include "workload/generator.h"

using namespace sluice;

namespace {

std::string lines(workload::Options o, int count)
{
    workload::Generator g(o);
    std::string out;
    for (int i = 0; i < count; ++i) {
        g.next(out);
        out += '\n';
    }
    return out;
}

std::shared_ptr<const contract::ContractSet> builtinContracts()
{
    config::PipelineConfig pc;
    pc.contractsDir = config::kBuiltinSource;
    pc.pipelinesDir = config::kBuiltinSource;
    auto pipeline = config::loadPipeline(pc);
    REQUIRE(pipeline);
    auto set = contract::ContractSet::build(*pipeline);
    REQUIRE(set);
    return *set;
}

std::string_view field(const std::string& line, const std::string& name)
{
    const std::string key = "\"" + name + "\":\"";
    const size_t at = line.find(key);
    if (at == std::string::npos)
        return {};
    const size_t start = at + key.size();
    return std::string_view(line).substr(start, line.find('"', start) - start);
}

}  // namespace

TEST_CASE("generator: a seed gives one sequence, another seed another", "[workload]")
{
    workload::Options a;
    a.seed = 7;
    a.invalidFraction = 0.05;
    CHECK(lines(a, 2000) == lines(a, 2000));
    workload::Options b = a;
    b.seed = 8;
    CHECK(lines(a, 2000) != lines(b, 2000));
}

TEST_CASE("generator: valid events pass the built-in contract, invalid ones fail for the named reason",
          "[workload]")
{
    auto contracts = builtinContracts();
    contract::Validator validator(contracts, contract::Limits{});
    workload::Options o;
    o.seed = 3;
    o.invalidFraction = 0.02;
    workload::Generator g(o);
    std::map<Reason, int> reasons;
    std::map<ConsentMask, int> consents;
    std::set<std::string> countries, sessions;
    std::map<std::string, std::set<std::string>> customersOfSession;
    size_t validBytes = 0;
    int valid = 0;
    constexpr int kEvents = 40'000;
    for (int i = 0; i < kEvents; ++i) {
        std::string line;
        const std::optional<Reason> expected = g.next(line);
        const Payload payload(line);  // padded, as the pipeline hands lines to the parser
        Arena arena;
        contract::ParsedEvent event;
        contract::Rejection why;
        const bool ok = validator.validate(payload.view(), 1'700'000'000'000, 1'700'000'000'000, arena, event, why);
        INFO("event " << i << ": " << line);
        if (!expected) {
            REQUIRE(ok);
            ++valid;
            validBytes += line.size();
            ++consents[event.consent];
            countries.insert(std::string(field(line, "country")));
            const std::string session(field(line, "session_id"));
            sessions.insert(session);
            customersOfSession[session].insert(std::string(field(line, "customer_id")));
        } else {
            REQUIRE_FALSE(ok);
            CHECK(reasonCode(why.reason) == reasonCode(*expected));
            ++reasons[*expected];
        }
    }
    // About 2% invalid, in ten kinds taken in turn.
    const int invalid = kEvents - valid;
    CHECK(invalid > kEvents * 0.015);
    CHECK(invalid < kEvents * 0.025);
    CHECK(reasons.size() == 10);
    // The consent mix: 40% [0,1,2], 30% [0,1], 20% [0], 10% [] (within 1.5 points; the standard
    // error at this count is about 0.25).
    auto share = [&](ConsentMask mask) { return 100.0 * consents[mask] / valid; };
    CHECK(share(0b111) == Approx(40).margin(1.5));
    CHECK(share(0b011) == Approx(30).margin(1.5));
    CHECK(share(0b001) == Approx(20).margin(1.5));
    CHECK(share(0) == Approx(10).margin(1.5));
    CHECK(consents.size() == 4);
    CHECK(countries.size() == 30);
    // A session belongs to one customer, so its data key covers one data subject.
    for (const auto& [session, customers] : customersOfSession)
        REQUIRE(customers.size() == 1);
    CHECK(sessions.size() > 15'000);  // 100,000 sessions to draw from
    // "About 300 bytes" per event.
    const double meanBytes = static_cast<double>(validBytes) / valid;
    CHECK(meanBytes > 250);
    CHECK(meanBytes < 350);
}

TEST_CASE("generator: event times step from the base, jitter moves them back only", "[workload]")
{
    workload::Options o;
    o.baseTimeMs = 1'700'000'000'000;
    o.stepMs = 10;
    o.jitterMs = 500;
    workload::Generator g(o);
    bool someJitter = false;
    for (int n = 0; n < 1000; ++n) {
        std::string line;
        REQUIRE_FALSE(g.next(line));
        const size_t at = line.find("\"event_time\":");
        REQUIRE(at != std::string::npos);
        const int64_t t = std::stoll(line.substr(at + 13));
        const int64_t nominal = o.baseTimeMs + n * o.stepMs;
        CHECK(t <= nominal);
        CHECK(t >= nominal - o.jitterMs);
        someJitter = someJitter || t != nominal;
    }
    CHECK(someJitter);
}
