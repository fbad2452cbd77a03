#include "contract/validator.h"

#include <simdjson.h>

#include "contract/pattern.h"

namespace sluice::contract {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

constexpr size_t kMaxEventIdBytes = 256;
constexpr size_t kMaxNameInMessage = 64;

// Names from the input may be long or odd; messages quote them shortened and printable.
std::string quoteName(std::string_view name)
{
    std::string out = "'";
    for (size_t i = 0; i < name.size() && i < kMaxNameInMessage; ++i) {
        unsigned char c = static_cast<unsigned char>(name[i]);
        out += (c < 0x20 || c == 0x7f || c == '\'') ? '?' : static_cast<char>(c);
    }
    if (name.size() > kMaxNameInMessage)
        out += "...";
    out += "'";
    return out;
}

std::string_view jsonTypeName(element_type t)
{
    switch (t) {
    case element_type::ARRAY: return "array";
    case element_type::OBJECT: return "object";
    case element_type::INT64:
    case element_type::UINT64: return "integer";
    case element_type::DOUBLE: return "number";
    case element_type::STRING: return "string";
    case element_type::BOOL: return "boolean";
    case element_type::NULL_VALUE: return "null";
    }
    return "?";
}

bool reject(Rejection& why, Reason reason, std::string message)
{
    why.reason = reason;
    why.message = std::move(message);
    return false;
}

}  // namespace

Result<std::shared_ptr<const ContractSet>> ContractSet::build(PipelinePtr pipeline)
{
    auto set = std::make_shared<ContractSet>();
    set->pipeline_ = std::move(pipeline);
    const auto& contracts = set->pipeline_->contracts;
    set->contracts_.resize(contracts.size());
    for (size_t c = 0; c < contracts.size(); ++c) {
        const ContractSpec& spec = contracts[c];
        Compiled& compiled = set->contracts_[c];
        compiled.spec = &spec;
        compiled.patterns.resize(spec.fields.size());
        for (size_t f = 0; f < spec.fields.size(); ++f) {
            const FieldSpec& field = spec.fields[f];
            compiled.fieldIndex.emplace(field.name, static_cast<int>(f));
            if (field.pattern.empty())
                continue;
            auto pattern = Pattern::compile(field.pattern);
            if (!pattern)
                return pattern.status().withContext(spec.path + ": fields." + field.name + ".pattern");
            compiled.patterns[f] = std::move(*pattern);
        }
        if (!set->byRef_.emplace(spec.ref, static_cast<int>(c)).second)
            return Status::invalid(spec.path + ": contract " + spec.ref + " is defined twice");
    }
    return std::shared_ptr<const ContractSet>(std::move(set));
}

int ContractSet::find(std::string_view ref) const
{
    auto it = byRef_.find(ref);
    return it == byRef_.end() ? -1 : it->second;
}

struct Validator::Impl {
    explicit Impl(size_t capacity) : parser(capacity) {}

    simdjson::dom::parser parser;
    PatternMatcher matcher;
    std::vector<uint8_t> seen;

    bool meta(element el, const ContractSet& set, int64_t receivedAtMs, int64_t nowMs, int64_t maxFutureMs,
              Arena& arena, ParsedEvent& out, Rejection& why);
    bool field(const FieldSpec& spec, const Pattern* pattern, element el, Arena& arena, Value& out,
               Rejection& why);
    bool scalar(const FieldSpec& spec, const Pattern* pattern, element el, Arena& arena, Value& out,
                Rejection& why, std::string_view where);
};

Validator::Validator(std::shared_ptr<const ContractSet> contracts, Limits limits)
    : contracts_(std::move(contracts)), limits_(limits), impl_(std::make_unique<Impl>(limits.maxEventBytes))
{
    // On failure to allocate here, parse() allocates on first use and reports MEMALLOC then.
    // simdjson refuses a document whose depth reaches max_depth; we accept maxDepth levels.
    if (impl_->parser.allocate(limits_.maxEventBytes, limits_.maxDepth + 1) != simdjson::SUCCESS)
        impl_->parser = simdjson::dom::parser(limits_.maxEventBytes);
}

Validator::~Validator() = default;

bool Validator::validate(std::string_view line, int64_t receivedAtMs, int64_t nowMs, Arena& arena,
                         ParsedEvent& out, Rejection& why)
{
    why.contract = -1;
    why.eventId.clear();
    if (line.size() > limits_.maxEventBytes)
        return reject(why, Reason::kTooLarge,
                      "event is " + std::to_string(line.size()) + " bytes; the limit is " +
                          std::to_string(limits_.maxEventBytes));

    element root;
    auto error = impl_->parser.parse(line.data(), line.size(), false).get(root);
    if (error) {
        switch (error) {
        case simdjson::UTF8_ERROR: return reject(why, Reason::kBadUtf8, "invalid UTF-8");
        case simdjson::DEPTH_ERROR:
            return reject(why, Reason::kTooDeep,
                          "nesting is deeper than " + std::to_string(limits_.maxDepth) + " levels");
        case simdjson::CAPACITY:
            return reject(why, Reason::kTooLarge, "event exceeds the parser capacity");
        default: return reject(why, Reason::kNotJson, std::string("not JSON: ") + simdjson::error_message(error));
        }
    }
    simdjson::dom::object object;
    if (root.get_object().get(object))
        return reject(why, Reason::kNotObject,
                      "an event must be a JSON object, got " + std::string(jsonTypeName(root.type())));

    // The contract decides how to read every other field, so find meta first.
    element metaElement;
    bool haveMeta = false;
    for (auto [key, value] : object) {
        if (key == "meta") {
            if (haveMeta)
                return reject(why, Reason::kDuplicateField, "field 'meta' appears twice");
            metaElement = value;
            haveMeta = true;
        }
    }
    if (!haveMeta)
        return reject(why, Reason::kBadMeta, "meta is missing");
    if (!impl_->meta(metaElement, *contracts_, receivedAtMs, nowMs, limits_.maxFutureMs, arena, out, why))
        return false;

    const ContractSet::Compiled& compiled = contracts_->compiled(out.contract);
    const ContractSpec& spec = *compiled.spec;
    out.fields = arena.allocateArray<Value>(spec.fields.size());
    impl_->seen.assign(spec.fields.size(), 0);
    for (auto [key, value] : object) {
        if (key == "meta")
            continue;
        auto it = compiled.fieldIndex.find(key);
        if (it == compiled.fieldIndex.end())
            return reject(why, Reason::kUnknownField,
                          "field " + quoteName(key) + " is not in contract " + spec.ref);
        size_t f = static_cast<size_t>(it->second);
        if (impl_->seen[f])
            return reject(why, Reason::kDuplicateField, "field " + quoteName(key) + " appears twice");
        impl_->seen[f] = 1;
        if (!impl_->field(spec.fields[f], compiled.patterns[f].get(), value, arena, out.fields[f], why))
            return false;
    }
    for (size_t f = 0; f < spec.fields.size(); ++f) {
        if (spec.fields[f].required && !out.fields[f].present())
            return reject(why, Reason::kMissingField, "required field '" + spec.fields[f].name + "' is missing");
    }
    return true;
}

bool Validator::Impl::meta(element el, const ContractSet& set, int64_t receivedAtMs, int64_t nowMs,
                           int64_t maxFutureMs, Arena& arena, ParsedEvent& out, Rejection& why)
{
    simdjson::dom::object meta;
    if (el.get_object().get(meta))
        return reject(why, Reason::kBadMeta, "meta must be an object, got " + std::string(jsonTypeName(el.type())));

    element contract, consent, eventId, eventTime;
    bool haveContract = false, haveConsent = false, haveEventId = false, haveEventTime = false;
    for (auto [key, value] : meta) {
        bool* have = nullptr;
        element* slot = nullptr;
        if (key == "contract") {
            have = &haveContract;
            slot = &contract;
        } else if (key == "consent") {
            have = &haveConsent;
            slot = &consent;
        } else if (key == "event_id") {
            have = &haveEventId;
            slot = &eventId;
        } else if (key == "event_time") {
            have = &haveEventTime;
            slot = &eventTime;
        } else if (key == "key_link" || key == "received_at") {
            return reject(why, Reason::kBadMeta, "meta." + std::string(key) + " is set by sluice, not by producers");
        } else {
            return reject(why, Reason::kBadMeta, "unknown meta field " + quoteName(key));
        }
        if (*have)
            return reject(why, Reason::kDuplicateField, "meta." + std::string(key) + " appears twice");
        *have = true;
        *slot = value;
    }

    if (haveEventId) {
        std::string_view id;
        if (eventId.get_string().get(id) || id.size() > kMaxEventIdBytes)
            return reject(why, Reason::kBadMeta,
                          "meta.event_id must be a string of at most " + std::to_string(kMaxEventIdBytes) + " bytes");
        out.eventId = arena.copy(id);
        why.eventId = std::string(id);
    } else {
        out.eventId = {};
    }

    std::string_view ref;
    if (!haveContract)
        return reject(why, Reason::kBadMeta, "meta.contract is missing");
    if (contract.get_string().get(ref))
        return reject(why, Reason::kBadMeta, "meta.contract must be a string");
    out.contract = set.find(ref);
    if (out.contract < 0)
        return reject(why, Reason::kUnknownContract, "unknown contract " + quoteName(ref));
    why.contract = out.contract;

    if (!haveConsent)
        return reject(why, Reason::kBadConsent, "meta.consent is missing");
    simdjson::dom::array levels;
    if (consent.get_array().get(levels))
        return reject(why, Reason::kBadConsent, "meta.consent must be an array of purpose levels");
    out.consent = 0;
    for (element level : levels) {
        int64_t v;
        if (level.get_int64().get(v) || v < 0 || v > kMaxPurposeLevel)
            return reject(why, Reason::kBadConsent,
                          "meta.consent must hold integers from 0 to " + std::to_string(kMaxPurposeLevel));
        out.consent |= ConsentMask{1} << v;
    }

    out.eventTimeMs = receivedAtMs;
    if (haveEventTime) {
        int64_t t;
        if (eventTime.get_int64().get(t))
            return reject(why, Reason::kBadMeta, "meta.event_time must be an integer (epoch milliseconds)");
        if (t < 0)
            return reject(why, Reason::kTimestampOutOfRange, "meta.event_time is negative");
        if (t > nowMs + maxFutureMs)
            return reject(why, Reason::kTimestampOutOfRange,
                          "meta.event_time is more than " + std::to_string(maxFutureMs / 1000) +
                              " s ahead of the host clock");
        out.eventTimeMs = t;
    }
    return true;
}

bool Validator::Impl::field(const FieldSpec& spec, const Pattern* pattern, element el, Arena& arena, Value& out,
                            Rejection& why)
{
    if (el.is_null()) {
        out = Value();  // an optional field sent as null is absent; a required one is reported missing
        return true;
    }
    if (!spec.array)
        return scalar(spec, pattern, el, arena, out, why, {});
    simdjson::dom::array items;
    if (el.get_array().get(items)) {
        if (spec.isPii())
            return reject(why, Reason::kPiiNotString, "PII field '" + spec.name + "' must be an array of strings");
        return reject(why, Reason::kWrongType,
                      "field '" + spec.name + "' must be an " + std::string(fieldTypeName(spec.type, true)) + ", got " +
                          std::string(jsonTypeName(el.type())));
    }
    size_t n = items.size();
    std::span<Value> values = arena.allocateArray<Value>(n);
    size_t i = 0;
    for (element item : items) {
        if (!scalar(spec, pattern, item, arena, values[i], why, "element " + std::to_string(i) + " of "))
            return false;
        ++i;
    }
    out = Value::ofArray(values);
    return true;
}

bool Validator::Impl::scalar(const FieldSpec& spec, const Pattern* pattern, element el, Arena& arena, Value& out,
                             Rejection& why, std::string_view where)
{
    const element_type t = el.type();
    auto wrongType = [&] {
        if (spec.isPii())
            return reject(why, Reason::kPiiNotString,
                          std::string(where) + "PII field '" + spec.name + "' must be a string, got " +
                              std::string(jsonTypeName(t)));
        return reject(why, Reason::kWrongType,
                      std::string(where) + "field '" + spec.name + "' must be " +
                          std::string(fieldTypeName(spec.type, false)) + ", got " + std::string(jsonTypeName(t)));
    };
    switch (spec.type) {
    case FieldType::kString: {
        std::string_view s;
        if (el.get_string().get(s))
            return wrongType();
        if (spec.maxLength && s.size() > spec.maxLength)
            return reject(why, Reason::kTooLarge,
                          std::string(where) + "field '" + spec.name + "' is longer than " +
                              std::to_string(spec.maxLength) + " bytes");
        if (pattern) {
            MatchResult m = matcher.match(*pattern, s);
            if (m != MatchResult::kMatch)
                return reject(why, Reason::kPatternMismatch,
                              std::string(where) + "field '" + spec.name + "' does not match pattern " +
                                  pattern->source() + (m == MatchResult::kLimit ? " (match limit reached)" : ""));
        }
        out = Value::ofString(arena.copy(s));
        return true;
    }
    case FieldType::kInteger:
        if (t == element_type::INT64) {
            out = Value::ofInt(el.get_int64().value_unsafe());
            return true;
        }
        if (t == element_type::UINT64)
            return reject(why, Reason::kWrongType,
                          std::string(where) + "field '" + spec.name + "' is out of the 64-bit integer range");
        if (t == element_type::DOUBLE) {
            // JSON Schema counts 3.0 as an integer; so do we, within the exactly representable range.
            // The range test comes first: casting an out-of-range double to int64_t is undefined.
            double d = el.get_double().value_unsafe();
            if (d >= -9007199254740992.0 && d <= 9007199254740992.0 &&
                d == static_cast<double>(static_cast<int64_t>(d))) {
                out = Value::ofInt(static_cast<int64_t>(d));
                return true;
            }
        }
        return wrongType();
    case FieldType::kNumber:
        if (t == element_type::INT64) {
            out = Value::ofInt(el.get_int64().value_unsafe());
            return true;
        }
        if (t == element_type::UINT64 || t == element_type::DOUBLE) {
            out = Value::ofReal(el.get_double().value_unsafe());
            return true;
        }
        return wrongType();
    case FieldType::kBoolean:
        if (t == element_type::BOOL) {
            out = Value::ofBool(el.get_bool().value_unsafe());
            return true;
        }
        return wrongType();
    }
    return wrongType();
}

std::string consentText(ConsentMask mask)
{
    std::string out = "[";
    bool first = true;
    for (int level = 0; level <= kMaxPurposeLevel; ++level) {
        if (!(mask & (ConsentMask{1} << level)))
            continue;
        if (!first)
            out += ',';
        out += std::to_string(level);
        first = false;
    }
    out += ']';
    return out;
}

}  // namespace sluice::contract
