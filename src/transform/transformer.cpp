#include "transform/transformer.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "aggregate/aggregator.h"
#include "core/encoding.h"
#include "core/log.h"
#include "core/time_format.h"
#include "core/value.h"
#include "privacy/consent.h"
#include "privacy/hmac.h"
#include "privacy/key_cache.h"
#include "privacy/masker.h"
#include "privacy/random.h"
#include "privacy/siv.h"
#include "privacy/tink_ciphertext.h"

namespace sluice::transform {
namespace {

using Steady = std::chrono::steady_clock;

int64_t microsBetween(Steady::time_point from, Steady::time_point to)
{
    return std::chrono::duration_cast<std::chrono::microseconds>(to - from).count();
}

// Columns before the contract's fields in an events row, and in a derived row after event_seq.
constexpr size_t kMetaColumns = 6;
constexpr size_t kKeyLinkColumn = 4;  // within the meta columns

constexpr int64_t kPruneEveryMs = 60'000;
constexpr int64_t kDayMs = 86'400'000;

struct Item {
    Origin origin;
    int32_t request = -1;  // addRequests: index of its request in that call; otherwise -1
    bool ok = false;
    uint8_t shard = 0;
    uint32_t row = 0;      // ok: row in its contract's table; otherwise: index of its rejection
    contract::ParsedEvent ev;
    Digest lookup{};
    std::string_view text;  // rejected events: their input, valid during the add call
};

// One lane's state: everything its threads touch without locks.
struct LaneState {
    std::unique_ptr<contract::Validator> validator;
    std::optional<privacy::SivCipher> cipher;
    std::optional<privacy::HmacSha256> lookupMac;
    std::optional<privacy::HmacSha256> subjectMac;
    std::vector<std::optional<privacy::Masker>> maskers;  // per output of the current pipeline
    std::unique_ptr<privacy::KeySource> source;
    std::unique_ptr<privacy::KeyCache> keys;
    std::optional<aggregate::SipHash24> fingerprint;
    Arena parseArena;      // parsed values, plaintext among them: stays here, reused
    Arena transformArena;  // what rows point to: travels to the writer with the batch
    std::vector<Item> items;
    std::vector<contract::Rejection> rejections;
    std::vector<KeyRecord> created;
    std::vector<KeySubject> subjects;
    std::vector<std::pair<ConsentMask, std::string_view>> consentTexts;
    std::string scratch;
    Status error;
};

}  // namespace

struct Transformer::Impl {
    Impl(TransformOptions o, Parts p) : options(std::move(o)), parts(std::move(p)) {}

    TransformOptions options;
    Parts parts;
    std::vector<LaneState> lanes;
    std::unique_ptr<privacy::KeyCache> deadLetterKeys;  // read through lane 0's source, on the calling thread
    std::shared_ptr<const PipelineRuntime> pipeline;
    std::shared_ptr<const SchemaChange> announced;
    std::vector<std::string> aggregationSignatures;
    std::vector<std::unique_ptr<aggregate::Aggregator>> aggregators;
    std::vector<std::vector<aggregate::Aggregator*>> aggregatorsByContract;
    std::unordered_map<std::string, int64_t> maxEventTimes;  // per contract, as of the last batch
    std::array<uint8_t, 16> sketchKey{};
    int64_t lastPruneMs = 0;
    // Session snapshots: when the last was taken (monotonic), whether the next batch must take
    // one whatever the interval (keys were shredded), and the last batch finished.
    int64_t lastSnapshotNs = 0;
    bool snapshotNext = false;
    uint64_t lastBatchId = 0;

    // The open batch.
    bool open = false;
    WriteBatch wb;
    uint32_t requestsSeen = 0;
    int64_t nowMs = 0;  // of the current add call
    std::vector<uint32_t> rowsPerContract;
    std::vector<uint32_t> rowsPerOutput;
    std::vector<int> contractInsert;  // contract -> index in wb.inserts, -1
    std::vector<int> outputInsert;
    std::string deadLetterDay;        // the UTC day `deadLetterLookup` is for
    Digest deadLetterLookup{};
    std::vector<KeyRecord> deadLetterKeysCreated;
    uint32_t keysCreated = 0;         // in the whole batch
    bool handedOn = false;            // a part of the open batch went out (takePart)
    Status failure;

    // Per add call, reused.
    std::vector<size_t> itemOffsets;
    std::vector<std::vector<int32_t>> derivedRowOf;  // per output: item index of this call -> row, -1

    Status prepareLanes();
    void moveRows(WriteBatch& into);
    Status switchPipeline(std::shared_ptr<const PipelineRuntime> next);
    void fail(const Status& s)
    {
        if (failure.isOk() && !s.isOk())
            failure = s;
    }
    void startAdd();
    void parseRequests(LaneState& lane, std::span<const Request> requests, size_t from, size_t to);
    void accept(LaneState& lane, const contract::ParsedEvent& ev, const Origin& origin, int32_t request);
    void reject(LaneState& lane, contract::Rejection&& why, const Origin& origin, int32_t request,
                std::string_view text);
    Status afterParse(std::span<const Request> requests, const std::vector<int32_t>& outcomeOf);
    void addDeadLetter(Reason reason, std::string message, const Origin& origin, const Request* req,
                       int32_t eventIndex, std::string_view text, int contractIndex, std::string eventId);
    Status deadLetterInput(std::string_view text, DeadLetter& out);
    void transformShard(int shard);
    static void prefetchKeys(const LaneState& w, const std::vector<Item>& items, size_t idx, int shard);
    std::string_view consentText(LaneState& lane, ConsentMask mask);
    void fieldCell(LaneState& lane, const FieldSpec& f, const Value& v, const privacy::ActiveKey& key, Cell& out);
    void derivedCell(LaneState& lane, const OutputPlan& plan, size_t f, const FieldSpec& spec, const Value& v,
                     const Cell& stored, int output, Cell& out);
};

// ---------------------------------------------------------------------------------------------
// Lane

Arena& Transformer::Lane::arena() { return t_.impl_->lanes[static_cast<size_t>(index_)].parseArena; }

contract::Validator& Transformer::Lane::validator()
{
    return *t_.impl_->lanes[static_cast<size_t>(index_)].validator;
}

const contract::ContractSet& Transformer::Lane::contracts() const { return *t_.impl_->pipeline->contracts; }

int64_t Transformer::Lane::nowMs() const { return t_.impl_->nowMs; }

void Transformer::Lane::accept(const contract::ParsedEvent& event, const Origin& origin)
{
    t_.impl_->accept(t_.impl_->lanes[static_cast<size_t>(index_)], event, origin, -1);
}

void Transformer::Lane::reject(contract::Rejection&& why, const Origin& origin, std::string_view text)
{
    t_.impl_->reject(t_.impl_->lanes[static_cast<size_t>(index_)], std::move(why), origin, -1, text);
}

// ---------------------------------------------------------------------------------------------
// Set-up and configuration

Transformer::Transformer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Transformer::~Transformer() = default;

Result<std::unique_ptr<Transformer>> Transformer::create(TransformOptions options, Parts parts,
                                                         std::shared_ptr<const PipelineRuntime> pipeline,
                                                         const std::vector<std::pair<std::string, int64_t>>& watermarks)
{
    auto impl = std::make_unique<Impl>(std::move(options), std::move(parts));
    Impl& m = *impl;
    for (const auto& [contract, ms] : watermarks)
        m.maxEventTimes[contract] = ms;
    auto sketch = m.parts.wrapper.deriveKey(privacy::kLabelSketch, m.sketchKey.size());
    if (!sketch)
        return sketch.status();
    std::memcpy(m.sketchKey.data(), sketch->data(), m.sketchKey.size());
    SLUICE_RETURN_IF_ERROR(m.prepareLanes());
    SLUICE_RETURN_IF_ERROR(m.switchPipeline(std::move(pipeline)));
    return std::unique_ptr<Transformer>(new Transformer(std::move(impl)));
}

Status Transformer::Impl::prepareLanes()
{
    auto lookupKey = parts.wrapper.deriveKey(privacy::kLabelKeyLookup);
    if (!lookupKey)
        return lookupKey.status();
    auto subjectKey = parts.wrapper.deriveKey(privacy::kLabelSubjectLookup);
    if (!subjectKey)
        return subjectKey.status();
    auto fingerprintKey = privacy::randomBytes(aggregate::kSipKeyBytes);
    if (!fingerprintKey)
        return fingerprintKey.status();

    lanes.resize(static_cast<size_t>(std::max(1, parts.executor.lanes())));
    const size_t perShard = options.keyCacheEntries / lanes.size() + 1;
    for (LaneState& lane : lanes) {
        auto cipher = privacy::SivCipher::create();
        if (!cipher)
            return cipher.status();
        lane.cipher.emplace(std::move(*cipher));
        auto lookup = privacy::HmacSha256::create(lookupKey->view());
        if (!lookup)
            return lookup.status();
        lane.lookupMac.emplace(std::move(*lookup));
        auto subject = privacy::HmacSha256::create(subjectKey->view());
        if (!subject)
            return subject.status();
        lane.subjectMac.emplace(std::move(*subject));
        lane.fingerprint.emplace(
            std::span<const uint8_t, aggregate::kSipKeyBytes>(fingerprintKey->data(), aggregate::kSipKeyBytes));
        auto source = parts.keySources();
        if (!source)
            return source.status();
        lane.source = std::move(*source);
        // The rolling lifetime given here is used only by the policy-free acquire(); every
        // acquire below passes the policy's term.
        lane.keys = std::make_unique<privacy::KeyCache>(perShard, kDayMs, "data", parts.wrapper, *lane.source);
        lane.keys->reportFirstUses(options.reportKeyFirstUses);
    }
    const int64_t now = parts.clock.wallMs();
    const int64_t preloadAt = parts.keyPolicy.preloadAtMs(now);
    const size_t shards = lanes.size();
    const bool byTerm = options.keyDirectoryEntries > 0 && parts.keyPolicy.lookupFixesTerm();
    for (size_t i = 0; i < shards; ++i) {
        auto mine = [i, shards](const Digest& lookup) { return lookup[31] % shards == i; };
        if (byTerm)
            lanes[i].keys->partitionByTerm(options.keyDirectoryEntries / shards + 1, mine);
        else
            SLUICE_RETURN_IF_ERROR(lanes[i].keys->preload(preloadAt, mine));
    }
    if (options.deadLetterInputBytes > 0) {
        // Dead-letter copies use one key per UTC day, kept by the calling thread (lane 0's).
        deadLetterKeys = std::make_unique<privacy::KeyCache>(8, kDayMs, "dead_letter", parts.wrapper, *lanes[0].source);
        SLUICE_RETURN_IF_ERROR(deadLetterKeys->preload(now, [](const Digest&) { return true; }));
    }
    lastPruneMs = now;
    return Status::ok();
}

Status Transformer::Impl::switchPipeline(std::shared_ptr<const PipelineRuntime> next)
{
    const PipelineSpec& spec = *next->spec;
    // Build everything first, so that a failure leaves the running configuration whole.
    std::vector<std::unique_ptr<contract::Validator>> validators;
    std::vector<std::vector<std::optional<privacy::Masker>>> maskers(lanes.size());
    for (size_t l = 0; l < lanes.size(); ++l) {
        validators.push_back(std::make_unique<contract::Validator>(next->contracts, options.limits));
        for (const OutputPlan& plan : next->outputs) {
            auto masker = privacy::Masker::create(plan.spec->algorithm, plan.seed->clone());
            if (!masker)
                return masker.status().withContext("output " + plan.spec->name);
            maskers[l].emplace_back(std::move(*masker));
        }
    }
    // Aggregations whose definition is unchanged keep their state (watermark, finalized range).
    std::unordered_map<std::string, int64_t> maxTimes = maxEventTimes;
    for (const auto& a : aggregators)
        if (auto max = a->maxEventTimeMs())
            maxTimes[a->table().contract()] = std::max(maxTimes[a->table().contract()], *max);
    std::vector<std::unique_ptr<aggregate::Aggregator>> kept;
    std::vector<std::string> signatures;
    std::vector<bool> reused(aggregators.size(), false);
    std::vector<std::unique_ptr<aggregate::Aggregator>> created;
    std::vector<int> source;  // per new aggregation: index of the kept one, or -1 (then in `created`)
    // Per created one: the old aggregator of the same name whose open windows it takes over
    // (they may still be on their way to the database), or -1 (then read from the database).
    std::vector<int> previous;
    for (const AggregationSpec& a : spec.aggregations) {
        const std::string signature = aggregationSignature(a);
        int found = -1;
        for (size_t i = 0; i < aggregators.size(); ++i) {
            if (!reused[i] && aggregators[i]->table().name() == a.name && aggregationSignatures[i] == signature) {
                reused[i] = true;
                found = static_cast<int>(i);
                break;
            }
        }
        if (found < 0) {
            auto made = aggregate::Aggregator::create(a, *spec.findContract(a.contract), sketchKey);
            if (!made)
                return made.status();
            auto agg = std::make_unique<aggregate::Aggregator>(std::move(*made));
            int before = -1;
            for (size_t i = 0; i < aggregators.size(); ++i)
                if (!reused[i] && aggregators[i]->table().name() == a.name)
                    before = static_cast<int>(i);
            // Before the max event time: a session snapshot restores its own and replays from it.
            if (before < 0 && parts.openWindows) {
                auto restored = parts.openWindows(*agg, a, *spec.findContract(a.contract));
                if (!restored)
                    return restored.status().withContext("aggregation " + a.name);
                if (restored->fromSnapshot)
                    log::info("aggregation ", a.name, ": ", restored->sessions, " open session(s) from its snapshot, ",
                              restored->replayed, " event(s) committed after it replayed",
                              restored->missingPii ? " (" + std::to_string(restored->missingPii) +
                                                         " PII value(s) of forgotten subjects missing)"
                                                   : std::string());
            }
            auto it = maxTimes.find(a.contract);
            if (it != maxTimes.end())
                agg->setMaxEventTimeMs(it->second);
            previous.push_back(before);
            created.push_back(std::move(agg));
        }
        source.push_back(found);
        signatures.push_back(signature);
    }

    // Nothing can fail from here on.
    for (size_t k = 0; k < created.size(); ++k)
        if (previous[k] >= 0)
            created[k]->adoptOpenWindows(*aggregators[static_cast<size_t>(previous[k])]);
    size_t nextCreated = 0;
    for (int s : source)
        kept.push_back(s >= 0 ? std::move(aggregators[static_cast<size_t>(s)]) : std::move(created[nextCreated++]));
    for (size_t l = 0; l < lanes.size(); ++l) {
        lanes[l].validator = std::move(validators[l]);
        lanes[l].maskers = std::move(maskers[l]);
    }
    maxEventTimes = std::move(maxTimes);
    aggregators = std::move(kept);
    aggregationSignatures = std::move(signatures);
    aggregatorsByContract.assign(spec.contracts.size(), {});
    for (auto& a : aggregators)
        aggregatorsByContract[static_cast<size_t>(spec.contractIndex(a->table().contract()))].push_back(a.get());
    pipeline = std::move(next);
    return Status::ok();
}

Status Transformer::setPipeline(std::shared_ptr<const PipelineRuntime> pipeline)
{
    return impl_->switchPipeline(std::move(pipeline));
}

const std::shared_ptr<const PipelineRuntime>& Transformer::pipeline() const { return impl_->pipeline; }

void Transformer::keysStored(const std::vector<KeyRecord>& keys)
{
    Impl& m = *impl_;
    if (keys.empty())
        return;
    const size_t shards = m.lanes.size();
    std::vector<std::vector<privacy::StoredKeyRef>> byShard(shards);
    std::vector<privacy::StoredKeyRef> all;
    for (const KeyRecord& k : keys) {
        privacy::StoredKeyRef ref{k.lookup, k.keyLink, k.rowid};
        byShard[k.lookup[31] % shards].push_back(ref);
        all.push_back(std::move(ref));
    }
    for (size_t i = 0; i < shards; ++i)
        m.lanes[i].keys->committedKeys(byShard[i]);
    if (m.deadLetterKeys)
        m.deadLetterKeys->committedKeys(all);
}

void Transformer::keysShredded(const std::vector<std::string>& keyLinks)
{
    Impl& m = *impl_;
    if (keyLinks.empty())
        return;
    std::unordered_set<std::string> links(keyLinks.begin(), keyLinks.end());
    for (LaneState& lane : m.lanes)
        lane.keys->forget(links);
    if (m.deadLetterKeys)
        m.deadLetterKeys->forget(links);
    // A replay after a restart could not decrypt what these keys encrypted: the next batch
    // snapshots the open sessions, so that no replay needs them (docs/aggregation.md).
    m.snapshotNext = true;
}

KeyCacheCounts Transformer::keyCounts() const
{
    KeyCacheCounts c;
    for (const LaneState& lane : impl_->lanes) {
        c.resident += lane.keys->residentSize();
        c.loads += lane.keys->stats().loads;
        c.termsRead += lane.keys->stats().termsRead;
        c.termsDropped += lane.keys->stats().termsDropped;
    }
    return c;
}

// ---------------------------------------------------------------------------------------------
// A batch

void Transformer::begin(uint64_t batchId, int64_t openedAtMs)
{
    Impl& m = *impl_;
    const int64_t now = m.parts.clock.wallMs();
    if (m.parts.keyPolicy.prunesByWallClock() && now - m.lastPruneMs > kPruneEveryMs) {
        for (LaneState& lane : m.lanes)
            lane.keys->prune(now);
        m.lastPruneMs = now;
    }
    for (LaneState& lane : m.lanes) {
        lane.created.clear();
        lane.subjects.clear();
        lane.consentTexts.clear();
        lane.parseArena.rewind();
        lane.error = Status::ok();
    }
    m.wb = WriteBatch();
    m.wb.record.id = batchId;
    m.wb.record.openedAtMs = openedAtMs;
    m.requestsSeen = 0;
    const PipelineSpec& spec = *m.pipeline->spec;
    m.rowsPerContract.assign(spec.contracts.size(), 0);
    m.rowsPerOutput.assign(m.pipeline->outputs.size(), 0);
    m.contractInsert.assign(spec.contracts.size(), -1);
    m.outputInsert.assign(m.pipeline->outputs.size(), -1);
    m.deadLetterKeysCreated.clear();
    m.keysCreated = 0;
    m.handedOn = false;
    m.failure = Status::ok();
    m.open = true;
}

void Transformer::Impl::startAdd()
{
    nowMs = parts.clock.wallMs();
    for (LaneState& lane : lanes) {
        lane.items.clear();
        lane.rejections.clear();
    }
}

void Transformer::Impl::accept(LaneState& lane, const contract::ParsedEvent& ev, const Origin& origin,
                               int32_t request)
{
    Item& item = lane.items.emplace_back();
    item.origin = origin;
    item.request = request;
    item.ok = true;
    item.ev = ev;
    const ContractSpec& spec = *pipeline->contracts->compiled(ev.contract).spec;
    lane.scratch.assign(spec.ref);
    lane.scratch.push_back('\0');
    lane.scratch.append(ev.fields[static_cast<size_t>(spec.keyFieldIndex)].text);
    parts.keyPolicy.appendLookupSuffix(ev.eventTimeMs, lane.scratch);
    Status s = lane.lookupMac->mac(lane.scratch, item.lookup);
    if (!s && lane.error.isOk())
        lane.error = s;
    item.shard = static_cast<uint8_t>(item.lookup[31] % lanes.size());
}

void Transformer::Impl::reject(LaneState& lane, contract::Rejection&& why, const Origin& origin, int32_t request,
                               std::string_view text)
{
    Item& item = lane.items.emplace_back();
    item.origin = origin;
    item.request = request;
    item.ok = false;
    item.row = static_cast<uint32_t>(lane.rejections.size());
    item.text = text;
    lane.rejections.push_back(std::move(why));
}

void Transformer::Impl::parseRequests(LaneState& lane, std::span<const Request> requests, size_t from, size_t to)
{
    for (size_t r = from; r < to; ++r) {
        const Request& req = requests[r];
        if (req.state != RequestState::kNew)
            continue;
        uint32_t lineNo = 0;
        forEachLine(req.payload.view(), [&](std::string_view line) {
            const Origin origin{requestsSeen + static_cast<uint32_t>(r), lineNo++, req.receivedAtMs};
            contract::ParsedEvent ev;
            contract::Rejection why;
            if (lane.validator->validate(line, req.receivedAtMs, nowMs, lane.parseArena, ev, why))
                accept(lane, ev, origin, static_cast<int32_t>(r));
            else
                reject(lane, std::move(why), origin, static_cast<int32_t>(r), line);
        });
    }
}

Status Transformer::addRequests(std::span<const Request> requests)
{
    Impl& m = *impl_;
    if (!m.open)
        return Status::internal("addRequests() outside a batch");
    const auto t0 = Steady::now();
    m.startAdd();
    const size_t lanes = m.lanes.size();

    // Phase A: contiguous request ranges of about equal bytes.
    std::vector<size_t> bounds(lanes + 1, requests.size());
    {
        uint64_t total = 0;
        for (const Request& r : requests)
            total += r.payload.size();
        uint64_t acc = 0;
        size_t l = 1;
        bounds[0] = 0;
        for (size_t r = 0; r < requests.size() && l < lanes; ++r) {
            acc += requests[r].payload.size();
            while (l < lanes && acc * lanes >= total * l)
                bounds[l++] = r + 1;
        }
    }
    m.parts.executor.run([&](int i) {
        const size_t l = static_cast<size_t>(i);
        m.parseRequests(m.lanes[l], requests, bounds[l], bounds[l + 1]);
    });
    m.wb.times.parseUs += microsBetween(t0, Steady::now());

    // Replies, whole-message refusals and duplicates, in arrival order.
    std::vector<int32_t> outcomeOf(requests.size(), -1);
    for (size_t r = 0; r < requests.size(); ++r) {
        const Request& req = requests[r];
        if (req.mode == RequestMode::kAcknowledged) {
            outcomeOf[r] = static_cast<int32_t>(m.wb.outcomes.size());
            m.wb.outcomes.push_back(RequestOutcome::of(req));
        }
        if (req.state == RequestState::kRejected) {
            // One dead letter; each of the message's lines (req.events) is received and rejected.
            m.wb.record.received += req.events;
            m.addDeadLetter(req.rejectReason, req.rejectMessage,
                            Origin{m.requestsSeen + static_cast<uint32_t>(r), 0, req.receivedAtMs}, &req, -1,
                            req.payload.view(), -1, {});
            const uint32_t more = req.events > 1 ? req.events - 1 : 0;
            m.wb.record.rejected += more;
            m.wb.rejectedByReason[static_cast<size_t>(req.rejectReason)] += more;
        } else if (req.state == RequestState::kDuplicate) {
            m.wb.record.received += req.events;
            m.wb.record.duplicates += req.events;
        }
    }
    Status s = m.afterParse(requests, outcomeOf);
    for (size_t r = 0; r < requests.size(); ++r) {
        const Request& req = requests[r];
        if (req.mode != RequestMode::kAcknowledged || req.state != RequestState::kNew)
            continue;
        const RequestOutcome& o = m.wb.outcomes[static_cast<size_t>(outcomeOf[r])];
        m.wb.marks.push_back(ProducerMark{req.producer, req.seq, o.accepted, o.rejected});
    }
    m.requestsSeen += static_cast<uint32_t>(requests.size());
    return s;
}

Status Transformer::addParsed(const ParseTask& task)
{
    Impl& m = *impl_;
    if (!m.open)
        return Status::internal("addParsed() outside a batch");
    const auto t0 = Steady::now();
    m.startAdd();
    m.parts.executor.run([&](int i) {
        Lane lane(*this, i);
        task(lane);
    });
    m.wb.times.parseUs += microsBetween(t0, Steady::now());
    return m.afterParse({}, {});
}

void Transformer::Impl::addDeadLetter(Reason reason, std::string message, const Origin& origin, const Request* req,
                                      int32_t eventIndex, std::string_view text, int contractIndex,
                                      std::string eventId)
{
    DeadLetter& d = wb.deadLetters.emplace_back();
    d.reason = reason;
    d.message = std::move(message);
    d.receivedAtMs = origin.receivedAtMs;
    d.requestIndex = origin.unit;
    d.eventIndex = eventIndex;
    if (req) {
        d.producer = req->producer;
        d.seq = req->mode == RequestMode::kAcknowledged && !req->producer.empty() ? static_cast<int64_t>(req->seq) : -1;
    }
    if (contractIndex >= 0)
        d.contract = pipeline->spec->contracts[static_cast<size_t>(contractIndex)].ref;
    d.eventId = std::move(eventId);
    fail(deadLetterInput(text, d));
    d.inputBytes = static_cast<uint32_t>(req && reason == Reason::kTooLarge && eventIndex < 0 ? req->wireBytes
                                                                                               : text.size());
    ++wb.record.rejected;
    ++wb.rejectedByReason[static_cast<size_t>(reason)];
}

Status Transformer::Impl::deadLetterInput(std::string_view text, DeadLetter& out)
{
    out.inputBytes = static_cast<uint32_t>(text.size());
    if (!deadLetterKeys)
        return Status::ok();
    LaneState& lane = lanes[0];
    const std::string day = isoTimeMs(nowMs).substr(0, 10);
    if (day != deadLetterDay) {
        std::string what = "dead-letter";
        what.push_back('\0');
        what += day;
        SLUICE_RETURN_IF_ERROR(lane.lookupMac->mac(what, deadLetterLookup));
        deadLetterDay = day;
    }
    auto key = deadLetterKeys->acquire(deadLetterLookup, "", nowMs, *lane.cipher, deadLetterKeysCreated);
    SLUICE_RETURN_IF_ERROR(lanes[0].source->endFetches());
    if (!key)
        return key.status();
    std::string_view capped = text.substr(0, options.deadLetterInputBytes);
    SLUICE_RETURN_IF_ERROR(privacy::tinkEncrypt(*lane.cipher, (*key)->keyId, capped, out.input));
    out.inputKeyLink = std::string((*key)->link());
    return Status::ok();
}

Status Transformer::Impl::afterParse(std::span<const Request> requests, const std::vector<int32_t>& outcomeOf)
{
    const auto t0 = Steady::now();
    const PipelineSpec& spec = *pipeline->spec;
    BatchRecord& rec = wb.record;

    // Plan, sequentially, in arrival order.
    const size_t nLanes = lanes.size();
    itemOffsets.assign(nLanes, 0);
    size_t totalItems = 0;
    for (size_t l = 0; l < nLanes; ++l) {
        itemOffsets[l] = totalItems;
        totalItems += lanes[l].items.size();
    }
    derivedRowOf.resize(pipeline->outputs.size());
    for (auto& v : derivedRowOf)
        v.assign(totalItems, -1);
    std::vector<uint32_t> contractRowsBefore = rowsPerContract;
    std::vector<uint32_t> outputRowsBefore = rowsPerOutput;
    for (size_t l = 0; l < nLanes; ++l) {
        LaneState& lane = lanes[l];
        fail(lane.error);
        for (size_t idx = 0; idx < lane.items.size(); ++idx) {
            Item& it = lane.items[idx];
            RequestOutcome* outcome = it.request >= 0 && outcomeOf[static_cast<size_t>(it.request)] >= 0
                                          ? &wb.outcomes[static_cast<size_t>(outcomeOf[static_cast<size_t>(it.request)])]
                                          : nullptr;
            ++rec.received;
            if (it.ok) {
                const size_t c = static_cast<size_t>(it.ev.contract);
                it.row = rowsPerContract[c]++;
                ++rec.committed;
                if (outcome)
                    ++outcome->accepted;
                for (int o : pipeline->outputsByContract[c]) {
                    if (privacy::outputAccepts(*pipeline->outputs[static_cast<size_t>(o)].spec, it.ev.consent))
                        derivedRowOf[static_cast<size_t>(o)][itemOffsets[l] + idx] =
                            static_cast<int32_t>(rowsPerOutput[static_cast<size_t>(o)]++);
                }
            } else {
                contract::Rejection& why = lane.rejections[it.row];
                if (outcome) {
                    ++outcome->rejected;
                    outcome->errors.push_back(EventError{it.origin.index, why.reason, why.message});
                }
                const Request* req = it.request >= 0 ? &requests[static_cast<size_t>(it.request)] : nullptr;
                addDeadLetter(why.reason, std::move(why.message), it.origin, req,
                              static_cast<int32_t>(it.origin.index), it.text, why.contract, std::move(why.eventId));
            }
        }
    }

    // Tables get their rows; a contract's table always comes before its outputs' tables.
    for (size_t c = 0; c < spec.contracts.size(); ++c) {
        if (rowsPerContract[c] == contractRowsBefore[c])
            continue;
        if (contractInsert[c] < 0) {
            contractInsert[c] = static_cast<int>(wb.inserts.size());
            TableRows& t = wb.inserts.emplace_back();
            t.table = spec.contracts[c].tableName();
            t.width = kMetaColumns + spec.contracts[c].fields.size();
        }
        TableRows& t = wb.inserts[static_cast<size_t>(contractInsert[c])];
        t.cells.resize(t.width * rowsPerContract[c]);
    }
    for (size_t o = 0; o < pipeline->outputs.size(); ++o) {
        if (rowsPerOutput[o] == outputRowsBefore[o])
            continue;
        const OutputPlan& plan = pipeline->outputs[o];
        if (outputInsert[o] < 0) {
            outputInsert[o] = static_cast<int>(wb.inserts.size());
            TableRows& t = wb.inserts.emplace_back();
            t.table = plan.spec->tableName();
            t.width = 1 + kMetaColumns + spec.contracts[static_cast<size_t>(plan.contract)].fields.size();
            t.parent = contractInsert[static_cast<size_t>(plan.contract)];
            t.parentColumn = 0;
            t.keyLinkColumn = 1 + static_cast<int>(kKeyLinkColumn);
            t.dropIfKeyShredded = true;
        }
        TableRows& t = wb.inserts[static_cast<size_t>(outputInsert[o])];
        t.cells.resize(t.width * rowsPerOutput[o]);
    }
    const auto t1 = Steady::now();

    // Phase B: per shard. A lane's key fetches of the batch share one read transaction, which
    // ends with the shard.
    parts.executor.run([&](int shard) {
        LaneState& w = lanes[static_cast<size_t>(shard)];
        transformShard(shard);
        Status ended = w.source->endFetches();
        if (!ended && w.error.isOk())
            w.error = ended;
    });
    const auto t2 = Steady::now();

    // Phase C: aggregates, in arrival order.
    for (size_t l = 0; l < nLanes; ++l) {
        for (const Item& it : lanes[l].items) {
            if (!it.ok)
                continue;
            for (aggregate::Aggregator* a : aggregatorsByContract[static_cast<size_t>(it.ev.contract)])
                a->add(it.ev.eventTimeMs, it.ev.consent, it.ev.fields);
        }
    }
    const auto t3 = Steady::now();
    wb.times.parseUs += microsBetween(t0, t1);  // the plan counts with parsing, as it always has
    wb.times.transformUs += microsBetween(t1, t2);
    wb.times.aggregateUs += microsBetween(t2, t3);

    for (LaneState& lane : lanes)
        fail(lane.error);
    return failure;
}

std::string_view Transformer::Impl::consentText(LaneState& lane, ConsentMask mask)
{
    for (const auto& [m, text] : lane.consentTexts)
        if (m == mask)
            return text;
    std::string_view text = lane.transformArena.copy(contract::consentText(mask));
    lane.consentTexts.emplace_back(mask, text);
    return text;
}

void Transformer::Impl::fieldCell(LaneState& lane, const FieldSpec& f, const Value& v, const privacy::ActiveKey& key,
                                  Cell& out)
{
    switch (v.kind) {
    case ValueKind::kMissing: out = Cell::null(); return;
    case ValueKind::kBool: out = Cell::ofInt(v.b ? 1 : 0); return;
    case ValueKind::kInt: out = Cell::ofInt(v.i); return;
    case ValueKind::kReal: out = Cell::ofReal(v.d); return;
    case ValueKind::kString:
        if (!f.isPii()) {
            // Parsed values live in the lane's parse arena, reused by the next batch: what the
            // writer will read is copied to the batch's own arena.
            out = Cell::ofText(lane.transformArena.copy(v.text));
            return;
        }
    {
        // Straight into the batch's arena (no copy through the lane's scratch string).
        const size_t size = privacy::tinkBase64Size(v.text.size());
        char* text = lane.transformArena.allocate(size);
        if (Status s = privacy::writeTinkBase64(*lane.cipher, key.keyId, v.text, text); !s) {
            if (lane.error.isOk())
                lane.error = s;
            out = Cell::null();  // the batch fails: nothing of it is written
            return;
        }
        out = Cell::ofText({text, size});
        return;
    }
    case ValueKind::kArray:
        lane.scratch.clear();
        if (!f.isPii()) {
            appendJson(lane.scratch, v);
        } else {
            std::string element;
            lane.scratch += '[';
            for (size_t i = 0; i < v.items.size(); ++i) {
                if (i)
                    lane.scratch += ',';
                element.clear();
                if (Status s = privacy::appendTinkBase64(*lane.cipher, key.keyId, v.items[i].text, element);
                    !s && lane.error.isOk())
                    lane.error = s;
                lane.scratch += '"';
                lane.scratch += element;  // Base64: nothing to escape
                lane.scratch += '"';
            }
            lane.scratch += ']';
        }
        out = Cell::ofText(lane.transformArena.copy(lane.scratch));
        return;
    }
}

void Transformer::Impl::derivedCell(LaneState& lane, const OutputPlan& plan, size_t f, const FieldSpec& spec,
                                    const Value& v, const Cell& stored, int output, Cell& out)
{
    const bool clear = !spec.isPii() || plan.decrypted[f];
    if (!clear || !v.present()) {
        out = stored;  // still encrypted in this output (or absent)
        return;
    }
    if (!plan.masked[f]) {
        if (spec.isPii()) {
            if (v.kind == ValueKind::kString) {
                out = Cell::ofText(lane.transformArena.copy(v.text));
            } else {
                lane.scratch.clear();
                appendJson(lane.scratch, v);
                out = Cell::ofText(lane.transformArena.copy(lane.scratch));
            }
        } else {
            out = stored;
        }
        return;
    }
    privacy::Masker& masker = *lane.maskers[static_cast<size_t>(output)];
    lane.scratch.clear();
    auto maskOne = [&](const Value& x, std::string& into) {
        Status s;
        if (x.kind == ValueKind::kString) {
            s = masker.append(x.text, into);
        } else {
            std::string text;  // a masked number or boolean: the mask of its JSON text
            appendJson(text, x);
            s = masker.append(text, into);
        }
        if (!s && lane.error.isOk())
            lane.error = s;
    };
    if (v.kind == ValueKind::kArray) {
        std::string element;
        lane.scratch += '[';
        for (size_t i = 0; i < v.items.size(); ++i) {
            if (i)
                lane.scratch += ',';
            element.clear();
            maskOne(v.items[i], element);
            lane.scratch += '"';
            lane.scratch += element;  // hex: nothing to escape
            lane.scratch += '"';
        }
        lane.scratch += ']';
    } else {
        maskOne(v, lane.scratch);
    }
    out = Cell::ofText(lane.transformArena.copy(lane.scratch));
}

void Transformer::Impl::prefetchKeys(const LaneState& w, const std::vector<Item>& items, size_t idx, int shard)
{
    // In items of all shards; about 1/lanes of them are this shard's. An event's transform takes
    // longer than a cache miss, so one of this shard's events ahead is enough for the last step.
    constexpr size_t kBucketAhead = 12;
    constexpr size_t kSlotAhead = 6;
    constexpr size_t kKeyAhead = 3;
    auto mine = [&](size_t ahead) -> const Item* {
        if (idx + ahead >= items.size())
            return nullptr;
        const Item& it = items[idx + ahead];
        return it.ok && it.shard == shard ? &it : nullptr;
    };
    if (const Item* it = mine(kBucketAhead))
        w.keys->prefetch(it->lookup);
    if (const Item* it = mine(kSlotAhead))
        w.keys->prefetchSlot(it->lookup);
    if (const Item* it = mine(kKeyAhead)) {
        w.keys->prefetchKey(it->lookup);
        // Its parsed values too: half of a shard's rows were parsed on the other core.
        const auto* fields = reinterpret_cast<const char*>(it->ev.fields.data());
        for (size_t at = 0; at < it->ev.fields.size_bytes(); at += 64)
            __builtin_prefetch(fields + at);
    }
}

void Transformer::Impl::transformShard(int shard)
{
    LaneState& w = lanes[static_cast<size_t>(shard)];
    const PipelineSpec& spec = *pipeline->spec;
    const uint64_t batchId = wb.record.id;
    for (size_t l = 0; l < lanes.size(); ++l) {
        const std::vector<Item>& items = lanes[l].items;
        for (size_t idx = 0; idx < items.size(); ++idx) {
            // The key directory is bigger than the CPU caches: start loading later events' keys,
            // a step of the lookup's three dependent loads per distance (KeyCache::prefetch).
            prefetchKeys(w, items, idx, shard);
            const Item& it = items[idx];
            if (!it.ok || it.shard != shard)
                continue;
            const size_t global = itemOffsets[l] + idx;
            const size_t c = static_cast<size_t>(it.ev.contract);
            const ContractSpec& contract = spec.contracts[c];
            auto key = w.keys->acquire(it.lookup, contract.ref, parts.keyPolicy.term(it.ev.eventTimeMs, nowMs),
                                       *w.cipher, w.created);
            if (!key) {
                if (w.error.isOk())
                    w.error = key.status();
                return;
            }
            privacy::ActiveKey& k = **key;
            TableRows& rows = wb.inserts[static_cast<size_t>(contractInsert[c])];
            Cell* row = rows.cells.data() + static_cast<size_t>(it.row) * rows.width;
            row[0] = Cell::ofInt(static_cast<int64_t>(batchId));
            row[1] = it.ev.eventId.empty() ? Cell::null() : Cell::ofText(w.transformArena.copy(it.ev.eventId));
            row[2] = Cell::ofInt(it.ev.eventTimeMs);
            row[3] = Cell::ofInt(it.origin.receivedAtMs);
            row[kKeyLinkColumn] = Cell::ofText(w.transformArena.copy(k.link()));
            row[5] = Cell::ofText(consentText(w, it.ev.consent));
            for (size_t f = 0; f < contract.fields.size(); ++f)
                fieldCell(w, contract.fields[f], it.ev.fields[f], k, row[kMetaColumns + f]);

            if (contract.subjectFieldIndex >= 0) {
                const Value& subject = it.ev.fields[static_cast<size_t>(contract.subjectFieldIndex)];
                if (subject.kind == ValueKind::kString) {
                    const uint64_t fp = (*w.fingerprint)(subject.text) | 1;
                    if (k.subjectFingerprint != fp) {
                        KeySubject& ks = w.subjects.emplace_back();
                        ks.keyLink = std::string(k.link());
                        if (Status s = w.subjectMac->mac(subject.text, ks.subject); !s && w.error.isOk())
                            w.error = s;
                        k.subjectFingerprint = fp;
                    }
                }
            }

            for (int o : pipeline->outputsByContract[c]) {
                const int32_t d = derivedRowOf[static_cast<size_t>(o)][global];
                if (d < 0)
                    continue;
                const OutputPlan& plan = pipeline->outputs[static_cast<size_t>(o)];
                TableRows& drows = wb.inserts[static_cast<size_t>(outputInsert[static_cast<size_t>(o)])];
                Cell* drow = drows.cells.data() + static_cast<size_t>(d) * drows.width;
                drow[0] = Cell::ofInt(it.row);  // replaced by the event's rowid when written
                for (size_t m = 0; m < kMetaColumns; ++m)
                    drow[1 + m] = row[m];
                for (size_t f = 0; f < contract.fields.size(); ++f)
                    derivedCell(w, plan, f, contract.fields[f], it.ev.fields[f], row[kMetaColumns + f], o,
                                drow[1 + kMetaColumns + f]);
            }
        }
    }
}

void Transformer::Impl::moveRows(WriteBatch& into)
{
    if (&into != &wb) {
        for (TableRows& t : wb.inserts)
            into.inserts.push_back(std::move(t));
        wb.inserts.clear();
        for (DeadLetter& d : wb.deadLetters)
            into.deadLetters.push_back(std::move(d));
        wb.deadLetters.clear();
    }
    for (LaneState& lane : lanes) {
        fail(lane.error);
        for (KeyRecord& k : lane.created)
            into.keys.push_back(std::move(k));
        for (KeySubject& s : lane.subjects)
            into.subjects.push_back(std::move(s));
        if (options.reportKeyFirstUses) {
            const std::vector<int64_t> used = lane.keys->takeFirstUses();
            into.keysFirstUsed.insert(into.keysFirstUsed.end(), used.begin(), used.end());
        }
        lane.created.clear();
        lane.subjects.clear();
        // The parse arena (plaintext PII among it) stays with the lane and is reused; only the
        // transform arena, which the rows point into, travels to the writer.
        into.arenas.push_back(std::move(lane.transformArena));
        lane.transformArena = Arena();
        lane.consentTexts.clear();  // they pointed into the arena that just left
    }
    for (KeyRecord& k : deadLetterKeysCreated)
        into.keys.push_back(std::move(k));
    deadLetterKeysCreated.clear();
    // Rows of the next part are numbered from 0 again, in tables of its own.
    std::fill(rowsPerContract.begin(), rowsPerContract.end(), 0);
    std::fill(rowsPerOutput.begin(), rowsPerOutput.end(), 0);
    std::fill(contractInsert.begin(), contractInsert.end(), -1);
    std::fill(outputInsert.begin(), outputInsert.end(), -1);
    if (pipeline->schema != announced) {
        into.schema = pipeline->schema;
        announced = pipeline->schema;
    }
}

bool Transformer::hasPart() const
{
    const Impl& m = *impl_;
    if (!m.wb.inserts.empty() || !m.wb.deadLetters.empty() || !m.deadLetterKeysCreated.empty())
        return true;
    for (const LaneState& lane : m.lanes)
        if (!lane.created.empty() || !lane.subjects.empty())
            return true;
    return false;
}

WriteBatch Transformer::takePart()
{
    Impl& m = *impl_;
    WriteBatch part;
    part.record.id = m.wb.record.id;
    part.opensBatch = !m.handedOn;
    part.closesBatch = false;
    m.moveRows(part);
    m.keysCreated += static_cast<uint32_t>(part.keys.size());
    m.handedOn = true;
    return part;
}

Result<WriteBatch> Transformer::finish(const BatchRecord& close)
{
    Impl& m = *impl_;
    if (!m.open)
        return Status::internal("finish() outside a batch");
    m.open = false;
    const auto t0 = Steady::now();
    m.moveRows(m.wb);
    WriteBatch wb = std::move(m.wb);
    wb.opensBatch = !m.handedOn;
    wb.closesBatch = true;
    BatchRecord& rec = wb.record;
    rec.closedAtMs = close.closedAtMs;
    rec.closedMonoNs = close.closedMonoNs;
    rec.closeReason = close.closeReason;
    rec.bytes = close.bytes;
    rec.requests = m.requestsSeen;
    rec.keysCreated = m.keysCreated + static_cast<uint32_t>(wb.keys.size());

    Arena aggregateArena;
    const int64_t nowNs = m.parts.clock.monoNs();
    const bool snapshotAll = m.snapshotNext || nowNs - m.lastSnapshotNs >= m.options.sessionSnapshotIntervalMs * 1'000'000;
    for (auto& a : m.aggregators) {
        const bool snapshot = snapshotAll || a->snapshotDue();
        aggregate::FlushSummary summary =
            a->flush(aggregateArena, wb, snapshot ? std::optional<uint64_t>(rec.id) : std::nullopt);
        wb.lateEvents += summary.lateEvents;
        if (summary.lateEvents)
            wb.lateByAggregation.emplace_back(a->table().name(), summary.lateEvents);
    }
    if (snapshotAll) {
        m.lastSnapshotNs = nowNs;
        m.snapshotNext = false;
    }
    m.lastBatchId = rec.id;
    wb.arenas.push_back(std::move(aggregateArena));
    wb.times.aggregateUs += microsBetween(t0, Steady::now());
    if (!m.failure.isOk())
        return m.failure;
    return wb;
}

std::optional<WriteBatch> Transformer::snapshotSessions()
{
    Impl& m = *impl_;
    if (m.open || m.lastBatchId == 0)
        return std::nullopt;
    WriteBatch wb;
    wb.stateOnly = true;
    wb.record.id = m.lastBatchId;
    Arena arena;
    bool any = false;
    for (auto& a : m.aggregators)
        any = a->flush(arena, wb, m.lastBatchId).snapshot || any;
    if (!any)
        return std::nullopt;
    wb.arenas.push_back(std::move(arena));
    m.lastSnapshotNs = m.parts.clock.monoNs();
    return wb;
}

Result<WriteBatch> Transformer::transform(Batch&& batch)
{
    const auto t0 = Steady::now();
    begin(batch.id, batch.openedAtMs);
    Status added = addRequests(batch.requests);
    BatchRecord close;
    close.closedAtMs = batch.closedAtMs;
    close.closedMonoNs = batch.closedMonoNs;
    close.closeReason = batch.closeReason;
    close.bytes = batch.bytes;
    auto wb = finish(close);
    if (!added)
        return added;
    if (!wb)
        return wb;
    wb->times.queuedUs = (impl_->parts.clock.monoNs() - batch.closedMonoNs) / 1000 - microsBetween(t0, Steady::now());
    // The batch's bytes are no longer needed (events were copied out).
    batch.requests.clear();
    return wb;
}

}  // namespace sluice::transform
