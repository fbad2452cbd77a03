#include "contract/validator.h"

#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <climits>
#include <cmath>
#include <functional>
#include <system_error>

#include "contract/pattern.h"

namespace sluice::contract {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

constexpr size_t kMaxEventIdBytes = 256;

// A JSON value as the Checker takes it.
RawScalar rawOf(element el)
{
    using Kind = RawScalar::Kind;
    switch (el.type()) {
    case element_type::STRING: return RawScalar::string(el.get_string().value_unsafe());
    case element_type::INT64: return RawScalar::integer(el.get_int64().value_unsafe());
    case element_type::UINT64: return RawScalar::bigUnsigned(el.get_double().value_unsafe());
    case element_type::DOUBLE: return RawScalar::real(el.get_double().value_unsafe());
    case element_type::BOOL: return RawScalar::boolean(el.get_bool().value_unsafe());
    case element_type::NULL_VALUE: return RawScalar::of(Kind::kNull);
    case element_type::ARRAY: return RawScalar::of(Kind::kArray);
    case element_type::OBJECT: return RawScalar::of(Kind::kObject);
    }
    return RawScalar::of(Kind::kNull);
}

std::string_view jsonTypeName(element el) { return rawOf(el).typeName(); }

// A number the JSON grammar allows but beyond a double's range (1e400), and where it was.
struct Overflow {
    std::string topKey;   // the top-level key it is under (as written, without quotes)
    std::string metaKey;  // under "meta": the meta key
};

// Whether an integer token fits int64 (negative) or uint64 (positive), as simdjson reads them.
bool fits64(std::string_view t)
{
    const bool negative = t.front() == '-';
    std::string_view magnitude = t.substr(negative ? 1 : 0);
    const std::string_view limit = negative ? "9223372036854775808" : "18446744073709551615";
    return magnitude.size() < limit.size() || (magnitude.size() == limit.size() && magnitude <= limit);
}

// The decimal exponent of a number token's first significant digit (0 for zero): positive
// when a double out of range overflows, negative when it underflows (which parses as 0).
int64_t decimalExponent(std::string_view t)
{
    int64_t exponent = 0;
    const size_t e = t.find_first_of("eE");
    if (e != std::string_view::npos) {
        const bool negative = t[e + 1] == '-';
        const char* digits = t.data() + e + 1 + (t[e + 1] == '+' || negative ? 1 : 0);
        if (std::from_chars(digits, t.data() + t.size(), exponent).ec != std::errc())
            exponent = INT64_MAX / 2;  // more digits than an int64: huge either way
        if (negative)
            exponent = -exponent;
        t = t.substr(0, e);
    }
    if (t.front() == '-')
        t.remove_prefix(1);
    const size_t dot = t.find('.');
    const std::string_view whole = t.substr(0, dot);
    const size_t lead = whole.find_first_not_of('0');
    if (lead != std::string_view::npos)
        return exponent + static_cast<int64_t>(whole.size() - lead) - 1;
    if (dot == std::string_view::npos)
        return 0;
    const size_t first = t.find_first_not_of('0', dot + 1);
    return first == std::string_view::npos ? 0 : exponent - static_cast<int64_t>(first - dot);
}

// simdjson refuses a whole document over one number it cannot hold in 64 bits. So that such an
// event gets the reason of the field it is in, the text is rewritten and parsed again: an
// integer beyond 64 bits becomes its double value (a number field takes it, an integer field
// refuses it as out of range), a number beyond a double's range becomes 0 and is listed in
// `overflows` with its place. False when there was nothing to rewrite (a malformed number).
bool rewriteOutOfRange(std::string_view line, std::string& out, std::vector<Overflow>& overflows)
{
    struct Level {
        bool object = false;
        bool expectKey = false;
        std::string_view key;
    };
    std::vector<Level> levels;
    bool rewritten = false;
    out.clear();
    out.reserve(line.size() + 16);
    size_t i = 0;
    while (i < line.size()) {
        const char c = line[i];
        if (c == '"') {
            size_t j = i + 1;
            while (j < line.size() && line[j] != '"')
                j += line[j] == '\\' ? 2 : 1;
            j = std::min(j + 1, line.size());
            if (!levels.empty() && levels.back().object && levels.back().expectKey)
                levels.back().key = line.substr(i + 1, j - i - 2);
            out.append(line.substr(i, j - i));
            i = j;
            continue;
        }
        if (c == '-' || (c >= '0' && c <= '9')) {
            size_t j = i + 1;
            while (j < line.size() && (std::isdigit(static_cast<unsigned char>(line[j])) || line[j] == '.' ||
                                       line[j] == 'e' || line[j] == 'E' || line[j] == '+' || line[j] == '-'))
                ++j;
            const std::string_view token = line.substr(i, j - i);
            i = j;
            bool integer = false;
            if (!jsonNumber(token, integer) || (integer && fits64(token))) {
                out.append(token);
                continue;
            }
            double value = 0;
            const auto parsed = std::from_chars(token.data(), token.data() + token.size(), value);
            if (parsed.ec == std::errc() && std::isfinite(value)) {
                if (integer) {  // beyond 64 bits: as a double
                    char text[32];
                    const auto written = std::to_chars(text, text + sizeof text, value);
                    out.append(text, written.ptr);
                    if (std::string_view(text, written.ptr).find_first_of(".e") == std::string_view::npos)
                        out.append(".0");
                    rewritten = true;
                } else {
                    out.append(token);
                }
                continue;
            }
            if (decimalExponent(token) < 0) {  // underflow: simdjson reads it as 0 already
                out.append(token);
                continue;
            }
            Overflow& o = overflows.emplace_back();
            if (!levels.empty())
                o.topKey = std::string(levels.front().key);
            if (levels.size() > 1 && o.topKey == "meta" && levels[1].object)
                o.metaKey = std::string(levels[1].key);
            out.push_back('0');
            rewritten = true;
            continue;
        }
        switch (c) {
        case '{': levels.push_back({true, true, {}}); break;
        case '[': levels.push_back({false, false, {}}); break;
        case '}':
        case ']':
            if (!levels.empty())
                levels.pop_back();
            break;
        case ':':
            if (!levels.empty())
                levels.back().expectKey = false;
            break;
        case ',':
            if (!levels.empty() && levels.back().object)
                levels.back().expectKey = true;
            break;
        default: break;
        }
        out.push_back(c);
        ++i;
    }
    return rewritten;
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
    Checker checker;
    std::vector<uint8_t> seen;
    std::string rewritten;  // a line whose numbers were rewritten (rewriteOutOfRange)

    // Reads what the document's root holds; `fieldOf` names the contract field a top-level key fills.
    using Document = std::function<bool(element root)>;
    using FieldOf = std::function<const FieldSpec*(std::string_view key)>;
    // The size limit and the parse, then `document` on the root; numbers beyond 64 bits go
    // through outOfRange() (the only place the callables become std::functions).
    template <typename DocumentFn, typename FieldOfFn>
    bool parse(std::string_view line, const Limits& limits, const DocumentFn& document, const FieldOfFn& fieldOf,
               Rejection& why);
    bool outOfRange(std::string_view line, const Document& document, const FieldOf& fieldOf, Rejection& why);
    bool document(element root, const ContractSet& set, const Limits& limits, int64_t receivedAtMs, int64_t nowMs,
                  Arena& arena, ParsedEvent& out, Rejection& why);
    bool record(element root, const ContractSet& set, const RecordLayout& layout, Arena& arena, ParsedEvent& out,
                RecordExtras& extras, Rejection& why);
    bool meta(element el, const ContractSet& set, int64_t receivedAtMs, int64_t nowMs, int64_t maxFutureMs,
              Arena& arena, ParsedEvent& out, Rejection& why);
    bool field(const FieldSpec& spec, const Pattern* pattern, element el, Arena& arena, Value& out, Rejection& why);
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

Checker& Validator::checker() { return impl_->checker; }

template <typename DocumentFn, typename FieldOfFn>
bool Validator::Impl::parse(std::string_view line, const Limits& limits, const DocumentFn& document,
                            const FieldOfFn& fieldOf, Rejection& why)
{
    if (line.size() > limits.maxEventBytes)
        return reject(why, Reason::kTooLarge,
                      "event is " + std::to_string(line.size()) + " bytes; the limit is " +
                          std::to_string(limits.maxEventBytes));
    element root;
    auto error = parser.parse(line.data(), line.size(), false).get(root);
    if (error == simdjson::NUMBER_ERROR)
        return outOfRange(line, Document(document), FieldOf(fieldOf), why);
    if (error) {
        switch (error) {
        case simdjson::UTF8_ERROR: return reject(why, Reason::kBadUtf8, "invalid UTF-8");
        case simdjson::DEPTH_ERROR:
            return reject(why, Reason::kTooDeep, "nesting is deeper than " + std::to_string(limits.maxDepth) + " levels");
        case simdjson::CAPACITY: return reject(why, Reason::kTooLarge, "event exceeds the parser capacity");
        default: return reject(why, Reason::kNotJson, std::string("not JSON: ") + simdjson::error_message(error));
        }
    }
    return document(root);
}

bool Validator::validate(std::string_view line, int64_t receivedAtMs, int64_t nowMs, Arena& arena,
                         ParsedEvent& out, Rejection& why)
{
    why.contract = -1;
    why.eventId.clear();
    why.field.clear();
    const ContractSet& set = *contracts_;
    return impl_->parse(
        line, limits_,
        [&](element root) { return impl_->document(root, set, limits_, receivedAtMs, nowMs, arena, out, why); },
        [&](std::string_view key) -> const FieldSpec* {
            const ContractSet::Compiled& compiled = set.compiled(out.contract);
            const auto it = compiled.fieldIndex.find(key);
            return it == compiled.fieldIndex.end() ? nullptr : &compiled.spec->fields[static_cast<size_t>(it->second)];
        },
        why);
}

bool Validator::validateRecord(std::string_view line, const RecordLayout& layout, Arena& arena, ParsedEvent& out,
                               RecordExtras& extras, Rejection& why)
{
    why.contract = layout.contract;
    why.eventId.clear();
    why.field.clear();
    extras.clear();
    const ContractSet& set = *contracts_;
    return impl_->parse(
        line, limits_, [&](element root) { return impl_->record(root, set, layout, arena, out, extras, why); },
        [&](std::string_view key) -> const FieldSpec* {
            const int f = layout.find(key).field;
            return f < 0 ? nullptr : &set.compiled(layout.contract).spec->fields[static_cast<size_t>(f)];
        },
        why);
}

bool Validator::validateArrayText(std::string_view cell, const FieldSpec& spec, const Pattern* pattern, Arena& arena,
                                  Value& out, Rejection& why)
{
    element root;
    if (cell.size() > limits_.maxEventBytes || impl_->parser.parse(cell.data(), cell.size(), false).get(root))
        return Checker::notAnArray(spec, "string", why);
    return impl_->field(spec, pattern, root, arena, out, why);
}

bool Validator::Impl::outOfRange(std::string_view line, const Document& document, const FieldOf& fieldOf,
                                 Rejection& why)
{
    std::vector<Overflow> overflows;
    if (!rewriteOutOfRange(line, rewritten, overflows))
        return reject(why, Reason::kNotJson,
                      std::string("not JSON: ") + simdjson::error_message(simdjson::NUMBER_ERROR));
    // The rewritten text is at most a few bytes longer; the parser grows for it if it must.
    const simdjson::padded_string text(rewritten);
    element root;
    if (auto error = parser.parse(text).get(root))
        return reject(why, Reason::kNotJson, std::string("not JSON: ") + simdjson::error_message(error));
    if (!document(root))
        return false;  // refused for another reason, found in the usual order
    if (overflows.empty())
        return true;  // integers beyond 64 bits only, and number fields took them as doubles

    // Otherwise valid: refused for its first number beyond a double's range, meta's first.
    const Overflow* o = &overflows.front();
    for (const Overflow& candidate : overflows) {
        if (candidate.topKey == "meta") {
            o = &candidate;
            break;
        }
    }
    if (o->topKey == "meta") {
        if (o->metaKey == "consent")
            return reject(why, Reason::kBadConsent,
                          "meta.consent must hold integers from 0 to " + std::to_string(kMaxPurposeLevel));
        if (o->metaKey == "event_time")
            return reject(why, Reason::kTimestampOutOfRange, "meta.event_time is out of range (epoch milliseconds)");
        return reject(why, Reason::kBadMeta, "meta." + quoteName(o->metaKey) + " holds a number out of range");
    }
    const FieldSpec* found = fieldOf(o->topKey);
    if (!found)
        return reject(why, Reason::kWrongType, "a number is out of the range of a 64-bit floating-point value");
    const FieldSpec& field = *found;
    why.field = field.name;
    if (field.isPii())
        return reject(why, Reason::kPiiNotString, "PII field '" + field.name + "' must be a string, got number");
    return reject(why, Reason::kWrongType,
                  "field '" + field.name + "' is out of the " +
                      (field.type == FieldType::kInteger ? "64-bit integer range"
                                                          : "range of a 64-bit floating-point number"));
}

bool Validator::Impl::document(element root, const ContractSet& set, const Limits& limits, int64_t receivedAtMs,
                               int64_t nowMs, Arena& arena, ParsedEvent& out, Rejection& why)
{
    simdjson::dom::object object;
    if (root.get_object().get(object))
        return reject(why, Reason::kNotObject, "an event must be a JSON object, got " + std::string(jsonTypeName(root)));

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
    if (!meta(metaElement, set, receivedAtMs, nowMs, limits.maxFutureMs, arena, out, why))
        return false;

    const ContractSet::Compiled& compiled = set.compiled(out.contract);
    const ContractSpec& spec = *compiled.spec;
    out.fields = arena.allocateArray<Value>(spec.fields.size());
    seen.assign(spec.fields.size(), 0);
    for (auto [key, value] : object) {
        if (key == "meta")
            continue;
        auto it = compiled.fieldIndex.find(key);
        if (it == compiled.fieldIndex.end())
            return Checker::unknownField(key, spec, why);
        size_t f = static_cast<size_t>(it->second);
        if (seen[f])
            return Checker::duplicateField(key, why);
        seen[f] = 1;
        if (!field(spec.fields[f], compiled.patterns[f].get(), value, arena, out.fields[f], why))
            return false;
    }
    return Checker::required(spec, out.fields, why);
}

bool Validator::Impl::record(element root, const ContractSet& set, const RecordLayout& layout, Arena& arena,
                            ParsedEvent& out, RecordExtras& extras, Rejection& why)
{
    simdjson::dom::object object;
    if (root.get_object().get(object))
        return reject(why, Reason::kNotObject, "a record must be a JSON object, got " + std::string(jsonTypeName(root)));
    const ContractSet::Compiled& compiled = set.compiled(layout.contract);
    const ContractSpec& spec = *compiled.spec;
    out.contract = layout.contract;
    out.fields = arena.allocateArray<Value>(spec.fields.size());
    seen.assign(spec.fields.size(), 0);
    for (auto [key, value] : object) {
        const RecordLayout::Slot slot = layout.find(key);
        using Role = RecordLayout::Role;
        switch (slot.role) {
        case Role::kUnknown: return Checker::unknownField(key, spec, why);
        case Role::kIgnore: continue;
        case Role::kField: break;
        case Role::kTime:
        case Role::kConsent:
        case Role::kEventId: {
            bool& have = slot.role == Role::kTime ? extras.haveTime
                         : slot.role == Role::kConsent ? extras.haveConsent
                                                       : extras.haveEventId;
            if (have)
                return Checker::duplicateField(key, why);
            have = true;
            RawScalar& raw = slot.role == Role::kTime ? extras.time
                             : slot.role == Role::kConsent ? extras.consent
                                                           : extras.eventId;
            raw = rawOf(value);
            if (slot.role == Role::kConsent && raw.kind == RawScalar::Kind::kArray) {
                extras.consentIsLevels = true;
                simdjson::dom::array levels = value.get_array().value_unsafe();
                for (element level : levels) {
                    int64_t v;
                    if (level.get_int64().get(v)) {
                        extras.consentIsLevels = false;
                        break;
                    }
                    extras.consentLevels.push_back(v);
                }
            }
            break;
        }
        }
        if (slot.field < 0)
            continue;
        const size_t f = static_cast<size_t>(slot.field);
        if (seen[f])
            return Checker::duplicateField(key, why);
        seen[f] = 1;
        if (!field(spec.fields[f], compiled.patterns[f].get(), value, arena, out.fields[f], why))
            return false;
    }
    return Checker::required(spec, out.fields, why);
}

bool Validator::Impl::meta(element el, const ContractSet& set, int64_t receivedAtMs, int64_t nowMs,
                           int64_t maxFutureMs, Arena& arena, ParsedEvent& out, Rejection& why)
{
    simdjson::dom::object meta;
    if (el.get_object().get(meta))
        return reject(why, Reason::kBadMeta, "meta must be an object, got " + std::string(jsonTypeName(el)));

    element contract, consent, eventId, eventTime;
    bool haveContract = false, haveConsent = false, haveEventId = false, haveEventTime = false;
    // An unknown or repeated meta key refuses the event, but only after the loop: the dead
    // letter gets the contract and event id whenever they can be read.
    Rejection keyProblem;
    bool badKey = false;
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
        } else if (!badKey) {
            badKey = true;
            if (key == "key_link" || key == "received_at")
                reject(keyProblem, Reason::kBadMeta, "meta." + std::string(key) + " is set by sluice, not by producers");
            else
                reject(keyProblem, Reason::kBadMeta, "unknown meta field " + quoteName(key));
            continue;
        } else {
            continue;
        }
        if (*have) {
            if (!badKey)
                reject(keyProblem, Reason::kDuplicateField, "meta." + std::string(key) + " appears twice");
            badKey = true;
            continue;
        }
        *have = true;
        *slot = value;
    }
    auto keyRejection = [&] { return reject(why, keyProblem.reason, std::move(keyProblem.message)); };

    if (haveEventId) {
        std::string_view id;
        if (eventId.get_string().get(id) || id.size() > kMaxEventIdBytes) {
            if (badKey)
                return keyRejection();
            return reject(why, Reason::kBadMeta,
                          "meta.event_id must be a string of at most " + std::to_string(kMaxEventIdBytes) + " bytes");
        }
        out.eventId = arena.copy(id);
        why.eventId = std::string(id);
    } else {
        out.eventId = {};
    }

    std::string_view ref;
    if (haveContract && !contract.get_string().get(ref)) {
        const int found = set.find(ref);
        if (found >= 0)
            why.contract = found;
    }
    if (badKey)
        return keyRejection();
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
        int64_t t = 0;
        const element_type type = eventTime.type();
        if (type == element_type::UINT64)
            return reject(why, Reason::kTimestampOutOfRange, "meta.event_time is out of range (epoch milliseconds)");
        if (type == element_type::DOUBLE) {
            // An integral number counts as an integer (as for integer fields); one beyond the
            // 64-bit range is a time out of range, not a malformed one.
            const double d = eventTime.get_double().value_unsafe();
            if (d != std::floor(d))
                return reject(why, Reason::kBadMeta, "meta.event_time must be an integer (epoch milliseconds)");
            if (d >= 9223372036854775808.0)
                return reject(why, Reason::kTimestampOutOfRange,
                              "meta.event_time is out of range (epoch milliseconds)");
            t = d < 0 ? -1 : static_cast<int64_t>(d);
        } else if (eventTime.get_int64().get(t)) {
            return reject(why, Reason::kBadMeta, "meta.event_time must be an integer (epoch milliseconds)");
        }
        if (!Checker::eventTime(t, nowMs, maxFutureMs, "meta.event_time", why))
            return false;
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
        return checker.scalar(spec, pattern, rawOf(el), {}, arena, out, why);
    simdjson::dom::array items;
    if (el.get_array().get(items))
        return Checker::notAnArray(spec, jsonTypeName(el), why);
    size_t n = items.size();
    std::span<Value> values = arena.allocateArray<Value>(n);
    size_t i = 0;
    for (element item : items) {
        if (!checker.scalar(spec, pattern, rawOf(item), "element " + std::to_string(i) + " of ", arena, values[i], why))
            return false;
        ++i;
    }
    out = Value::ofArray(values);
    return true;
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
