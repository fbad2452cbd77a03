// Reading JSON events and checking them against their contract: the first half of the per-event
// path. The reading (simdjson) is here; the contract's rules are the Checker's (checker.h), which
// the readers of other formats (a batch job's CSV rows: text_record.h) share.
//
// A ContractSet is the pipeline's contracts prepared for lookup (field tables, compiled
// patterns); it is immutable and shared by all workers, and replaced as a whole on reload.
// A Validator is one worker's parser and match state: not thread-safe, one per thread.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "contract/checker.h"
#include "contract/record_layout.h"
#include "core/arena.h"
#include "core/reason.h"
#include "core/spec.h"
#include "core/status.h"
#include "core/value.h"

namespace sluice::contract {

class Pattern;
class PatternMatcher;

struct Limits {
    size_t maxEventBytes = 64 * 1024;
    size_t maxDepth = 16;
    int64_t maxFutureMs = 5 * 60 * 1000;  // event times further ahead of the clock are refused
};

class ContractSet {
public:
    // Compiles every pattern; fails naming the contract file and field of a bad one.
    static Result<std::shared_ptr<const ContractSet>> build(PipelinePtr pipeline);

    const PipelineSpec& pipeline() const { return *pipeline_; }
    const PipelinePtr& pipelinePtr() const { return pipeline_; }
    // Index into pipeline().contracts, or -1.
    int find(std::string_view ref) const;

    struct Compiled {
        const ContractSpec* spec = nullptr;
        std::unordered_map<std::string_view, int> fieldIndex;  // views into spec
        std::vector<std::shared_ptr<const Pattern>> patterns;  // per field; null without pattern
    };
    const Compiled& compiled(int contract) const { return contracts_[static_cast<size_t>(contract)]; }

private:
    PipelinePtr pipeline_;
    std::vector<Compiled> contracts_;
    std::unordered_map<std::string_view, int> byRef_;
};

struct ParsedEvent {
    int contract = -1;
    ConsentMask consent = 0;
    std::string_view eventId;       // in the arena; empty when absent
    int64_t eventTimeMs = 0;        // the receive time when the producer gave none
    std::span<Value> fields;        // in the arena; indexed like ContractSpec::fields
};

class Validator {
public:
    Validator(std::shared_ptr<const ContractSet> contracts, Limits limits);
    ~Validator();
    Validator(const Validator&) = delete;
    Validator& operator=(const Validator&) = delete;

    // Parses and validates one event. `line` must stay readable for Payload::kPadding bytes past
    // its end (the parser reads ahead). On success fills `out`, copying strings into `arena`;
    // otherwise fills `why`. `receivedAtMs` stands in for a missing event time; `nowMs` bounds
    // how far in the future an event time may lie.
    bool validate(std::string_view line, int64_t receivedAtMs, int64_t nowMs, Arena& arena,
                  ParsedEvent& out, Rejection& why);

    // A batch job's JSON line: a flat object whose names `layout` maps onto its contract (no
    // meta). Checks every field as validate() does and fills out.contract and out.fields; the
    // job's own fields go to `extras` (strings there stay valid until the next call). The
    // caller sets consent, event time and event id.
    bool validateRecord(std::string_view line, const RecordLayout& layout, Arena& arena, ParsedEvent& out,
                        RecordExtras& extras, Rejection& why);

    // One cell of a CSV row that holds a JSON array (an array field): its elements checked
    // as validate() checks an array's. `cell` must stay readable for Payload::kPadding bytes
    // past its end.
    bool validateArrayText(std::string_view cell, const FieldSpec& spec, const Pattern* pattern, Arena& arena,
                           Value& out, Rejection& why);

    Checker& checker();

    const ContractSet& contracts() const { return *contracts_; }

private:
    struct Impl;
    std::shared_ptr<const ContractSet> contracts_;
    Limits limits_;
    std::unique_ptr<Impl> impl_;
};

// Canonical text of a consent mask: "[0,1,2]".
std::string consentText(ConsentMask mask);

}  // namespace sluice::contract
