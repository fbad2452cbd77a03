#include "service/processor.h"

#include <chrono>
#include <cstring>
#include <optional>
#include <unordered_map>

#include "core/thread_name.h"
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
#include "service/worker_pool.h"
#include "store/key_table.h"

namespace sluice::service {
namespace {

using Clock_ = std::chrono::steady_clock;

int64_t microsSince(Clock_::time_point start)
{
    return std::chrono::duration_cast<std::chrono::microseconds>(Clock_::now() - start).count();
}

// Columns before the contract's fields in an events row, and in a derived row after event_seq.
constexpr size_t kMetaColumns = 6;
constexpr size_t kKeyLinkColumn = 4;  // within the meta columns

class DbKeySource final : public privacy::KeySource {
public:
    explicit DbKeySource(store::KeyReader reader) : reader_(std::move(reader)) {}

    Status forEachActive(std::string_view kind, int64_t nowMs, const Visit& visit) override
    {
        return reader_.forEachActive(kind, nowMs, visit);
    }

    Result<std::optional<Found>> fetch(int64_t rowid) override
    {
        auto key = reader_.byRowid(rowid);
        if (!key)
            return key.status();
        if (!*key)
            return std::optional<Found>();
        Found f;
        f.keyLink = std::move((*key)->keyLink);
        f.keyId = (*key)->keyId;
        f.wrapped = std::move((*key)->wrapped);
        f.createdAtMs = (*key)->createdAtMs;
        f.expiresAtMs = (*key)->expiresAtMs;
        f.lookup = (*key)->lookup;
        return std::optional<Found>(std::move(f));
    }

private:
    store::KeyReader reader_;
};

struct Item {
    uint32_t request = 0;
    uint32_t line = 0;     // position among the request's non-blank lines
    bool ok = false;
    uint8_t shard = 0;
    uint32_t row = 0;      // ok: row in its contract's table; otherwise: index of its rejection
    contract::ParsedEvent ev;
    Digest lookup{};
    std::string_view text;
};

struct Worker {
    std::unique_ptr<contract::Validator> validator;
    std::optional<privacy::SivCipher> cipher;
    std::optional<privacy::HmacSha256> lookupMac;
    std::optional<privacy::HmacSha256> subjectMac;
    std::vector<std::optional<privacy::Masker>> maskers;  // per output of the current pipeline
    std::unique_ptr<DbKeySource> source;
    std::unique_ptr<privacy::KeyCache> keys;
    std::optional<aggregate::SipHash24> fingerprint;
    Arena parseArena;
    Arena transformArena;
    std::vector<Item> items;
    std::vector<contract::Rejection> rejections;
    std::vector<KeyRecord> created;
    std::vector<KeySubject> subjects;
    std::vector<std::pair<ConsentMask, std::string_view>> consentTexts;
    std::string scratch;
    Status error;
};

bool blankLine(std::string_view line)
{
    for (char c : line)
        if (c != ' ' && c != '\t' && c != '\r')
            return false;
    return true;
}

}  // namespace

struct Processor::Impl {
    Impl(Options o, const Clock& c, const privacy::KeyWrapper& w, BoundedQueue<Batch>& i, BoundedQueue<WriteBatch>& q,
         ProcessorStats& s)
        : options(std::move(o)), clock(c), wrapper(w), in(i), out(q), stats(s), pool(options.workers)
    {
    }

    Options options;
    const Clock& clock;
    const privacy::KeyWrapper& wrapper;
    BoundedQueue<Batch>& in;
    BoundedQueue<WriteBatch>& out;
    ProcessorStats& stats;
    WorkerPool pool;
    std::function<void()> beat;
    std::thread thread;

    std::vector<Worker> workers;
    std::unique_ptr<privacy::KeyCache> deadLetterKeys;
    std::shared_ptr<const PipelineRuntime> pipeline;
    std::vector<std::string> aggregationSignatures;
    std::vector<std::unique_ptr<aggregate::Aggregator>> aggregators;
    std::vector<std::vector<aggregate::Aggregator*>> aggregatorsByContract;
    std::unordered_map<std::string, int64_t> maxEventTimes;  // per contract, as of the last batch
    std::array<uint8_t, 16> sketchKey{};

    std::mutex pendingMutex;
    std::shared_ptr<const PipelineRuntime> pendingPipeline;
    std::vector<std::string> pendingShredded;
    std::vector<privacy::StoredKeyRef> pendingStored;
    int64_t lastPruneMs = 0;

    // Per batch scratch, reused.
    std::vector<size_t> itemOffsets;
    std::vector<std::vector<int32_t>> derivedRowOf;  // per output: global item index -> row, -1
    std::vector<int> contractInsert;                 // contract -> index in WriteBatch::inserts, -1
    std::vector<int> outputInsert;

    Status prepareWorkers();
    Status switchPipeline(std::shared_ptr<const PipelineRuntime> next);
    void run();
    WriteBatch process(Batch&& batch);
    void applyNotices();
    void parse(Worker& w, const Batch& batch, size_t from, size_t to, int64_t nowMs);
    void transform(int shard, const Batch& batch, WriteBatch& wb, int64_t nowMs);
    Status deadLetterInput(std::string_view text, int64_t nowMs, const Digest& dayLookup,
                           std::vector<KeyRecord>& created, DeadLetter& out);
    std::string_view consentText(Worker& w, ConsentMask mask);
    void fieldCell(Worker& w, const FieldSpec& f, const Value& v, const privacy::ActiveKey& key, Cell& out);
    void derivedCell(Worker& w, const OutputPlan& plan, size_t f, const FieldSpec& spec, const Value& v,
                     const Cell& stored, int output, Cell& out);
};

Processor::Processor(Options options, const Clock& clock, const privacy::KeyWrapper& wrapper, BoundedQueue<Batch>& in,
                     BoundedQueue<WriteBatch>& out, ProcessorStats& stats)
    : impl_(std::make_unique<Impl>(std::move(options), clock, wrapper, in, out, stats))
{
}

Processor::~Processor()
{
    if (impl_->thread.joinable()) {
        impl_->in.close();
        impl_->thread.join();
    }
}

void Processor::setHeartbeat(std::function<void()> beat) { impl_->beat = std::move(beat); }

void Processor::setPipeline(std::shared_ptr<const PipelineRuntime> pipeline)
{
    std::lock_guard lock(impl_->pendingMutex);
    impl_->pendingPipeline = std::move(pipeline);
}

void Processor::committed(const std::vector<KeyRecord>& keys, const std::vector<std::string>& shredded)
{
    std::lock_guard lock(impl_->pendingMutex);
    for (const KeyRecord& k : keys)
        impl_->pendingStored.push_back(privacy::StoredKeyRef{k.lookup, k.keyLink, k.rowid});
    impl_->pendingShredded.insert(impl_->pendingShredded.end(), shredded.begin(), shredded.end());
}

void Processor::join()
{
    if (impl_->thread.joinable())
        impl_->thread.join();
}

Status Processor::start(std::shared_ptr<const PipelineRuntime> pipeline,
                        const std::vector<std::pair<std::string, int64_t>>& watermarks)
{
    Impl& m = *impl_;
    for (const auto& [contract, ms] : watermarks)
        m.maxEventTimes[contract] = ms;
    auto sketch = m.wrapper.deriveKey(privacy::kLabelSketch, m.sketchKey.size());
    if (!sketch)
        return sketch.status();
    std::memcpy(m.sketchKey.data(), sketch->data(), m.sketchKey.size());
    SLUICE_RETURN_IF_ERROR(m.prepareWorkers());
    SLUICE_RETURN_IF_ERROR(m.switchPipeline(std::move(pipeline)));
    m.thread = std::thread([&m] {
        nameThisThread("sluice-process");
        m.run();
    });
    return Status::ok();
}

Status Processor::Impl::prepareWorkers()
{
    auto lookupKey = wrapper.deriveKey(privacy::kLabelKeyLookup);
    if (!lookupKey)
        return lookupKey.status();
    auto subjectKey = wrapper.deriveKey(privacy::kLabelSubjectLookup);
    if (!subjectKey)
        return subjectKey.status();
    auto fingerprintKey = privacy::randomBytes(aggregate::kSipKeyBytes);
    if (!fingerprintKey)
        return fingerprintKey.status();

    workers.resize(static_cast<size_t>(pool.size()));
    const size_t perShard = options.keyCacheEntries / workers.size() + 1;
    for (Worker& w : workers) {
        auto cipher = privacy::SivCipher::create();
        if (!cipher)
            return cipher.status();
        w.cipher.emplace(std::move(*cipher));
        auto lookup = privacy::HmacSha256::create(lookupKey->view());
        if (!lookup)
            return lookup.status();
        w.lookupMac.emplace(std::move(*lookup));
        auto subject = privacy::HmacSha256::create(subjectKey->view());
        if (!subject)
            return subject.status();
        w.subjectMac.emplace(std::move(*subject));
        w.fingerprint.emplace(std::span<const uint8_t, aggregate::kSipKeyBytes>(fingerprintKey->data(),
                                                                                aggregate::kSipKeyBytes));
        auto reader = store::KeyReader::open(options.databasePath);
        if (!reader)
            return reader.status();
        w.source = std::make_unique<DbKeySource>(std::move(*reader));
        w.keys = std::make_unique<privacy::KeyCache>(perShard, options.keyLifetimeMs, "data", wrapper, *w.source);
    }
    const int64_t now = clock.wallMs();
    for (size_t i = 0; i < workers.size(); ++i) {
        const size_t shards = workers.size();
        SLUICE_RETURN_IF_ERROR(
            workers[i].keys->preload(now, [&](const Digest& lookup) { return lookup[31] % shards == i; }));
    }
    // Dead-letter copies use one key per UTC day, kept by the coordinator (worker 0's thread).
    deadLetterKeys = std::make_unique<privacy::KeyCache>(8, 86'400'000, "dead_letter", wrapper, *workers[0].source);
    SLUICE_RETURN_IF_ERROR(deadLetterKeys->preload(now, [](const Digest&) { return true; }));
    lastPruneMs = now;
    return Status::ok();
}

Status Processor::Impl::switchPipeline(std::shared_ptr<const PipelineRuntime> next)
{
    const PipelineSpec& spec = *next->spec;
    for (Worker& w : workers) {
        w.validator = std::make_unique<contract::Validator>(next->contracts, options.limits);
        w.maskers.clear();
        for (const OutputPlan& plan : next->outputs) {
            auto masker = privacy::Masker::create(plan.spec->algorithm, plan.seed->clone());
            if (!masker)
                return masker.status().withContext("output " + plan.spec->name);
            w.maskers.emplace_back(std::move(*masker));
        }
    }
    // Aggregations whose definition is unchanged keep their state (watermark, finalized range).
    for (const auto& a : aggregators)
        if (auto max = a->maxEventTimeMs())
            maxEventTimes[a->table().contract()] = std::max(maxEventTimes[a->table().contract()], *max);
    std::vector<std::unique_ptr<aggregate::Aggregator>> kept;
    std::vector<std::string> signatures;
    for (const AggregationSpec& a : spec.aggregations) {
        const std::string signature = aggregationSignature(a);
        std::unique_ptr<aggregate::Aggregator> agg;
        for (size_t i = 0; i < aggregators.size(); ++i) {
            if (aggregators[i] && aggregators[i]->table().name() == a.name && aggregationSignatures[i] == signature) {
                agg = std::move(aggregators[i]);
                break;
            }
        }
        if (!agg) {
            auto created = aggregate::Aggregator::create(a, *spec.findContract(a.contract), sketchKey);
            if (!created)
                return created.status();
            agg = std::make_unique<aggregate::Aggregator>(std::move(*created));
            auto it = maxEventTimes.find(a.contract);
            if (it != maxEventTimes.end())
                agg->setMaxEventTimeMs(it->second);
        }
        kept.push_back(std::move(agg));
        signatures.push_back(signature);
    }
    aggregators = std::move(kept);
    aggregationSignatures = std::move(signatures);
    aggregatorsByContract.assign(spec.contracts.size(), {});
    for (auto& a : aggregators)
        aggregatorsByContract[static_cast<size_t>(spec.contractIndex(a->table().contract()))].push_back(a.get());
    pipeline = std::move(next);
    return Status::ok();
}

void Processor::Impl::applyNotices()
{
    std::shared_ptr<const PipelineRuntime> next;
    std::vector<std::string> shredded;
    std::vector<privacy::StoredKeyRef> stored;
    {
        std::lock_guard lock(pendingMutex);
        next = std::move(pendingPipeline);
        shredded.swap(pendingShredded);
        stored.swap(pendingStored);
    }
    if (!stored.empty()) {
        const size_t shards = workers.size();
        std::vector<std::vector<privacy::StoredKeyRef>> byShard(shards);
        for (auto& k : stored)
            byShard[k.lookup[31] % shards].push_back(k);
        for (size_t i = 0; i < shards; ++i)
            workers[i].keys->committedKeys(byShard[i]);
        deadLetterKeys->committedKeys(stored);
    }
    if (!shredded.empty()) {
        std::unordered_set<std::string> links(shredded.begin(), shredded.end());
        for (Worker& w : workers)
            w.keys->forget(links);
        deadLetterKeys->forget(links);
    }
    const int64_t now = clock.wallMs();
    if (now - lastPruneMs > 60'000) {
        for (Worker& w : workers)
            w.keys->prune(now);
        lastPruneMs = now;
    }
    if (next) {
        Status s = switchPipeline(next);
        if (!s)
            log::error("the new configuration could not be applied, keeping the old one: ", s.message());
        else
            log::notice("configuration reloaded: applies from the next batch");
    }
}

void Processor::Impl::run()
{
    std::shared_ptr<const SchemaChange> announced;
    while (true) {
        if (beat)
            beat();
        auto batch = in.popFor(std::chrono::milliseconds(500));
        if (!batch) {
            if (in.closed())
                break;
            continue;
        }
        applyNotices();
        WriteBatch wb = process(std::move(*batch));
        if (pipeline->schema != announced) {
            wb.schema = pipeline->schema;
            announced = pipeline->schema;
        }
        if (beat)
            beat();
        if (!out.push(std::move(wb)))
            break;
    }
    out.close();
}

std::string_view Processor::Impl::consentText(Worker& w, ConsentMask mask)
{
    for (const auto& [m, text] : w.consentTexts)
        if (m == mask)
            return text;
    std::string_view text = w.transformArena.copy(contract::consentText(mask));
    w.consentTexts.emplace_back(mask, text);
    return text;
}

void Processor::Impl::parse(Worker& w, const Batch& batch, size_t from, size_t to, int64_t nowMs)
{
    const contract::ContractSet& contracts = *pipeline->contracts;
    const size_t shards = workers.size();
    for (size_t r = from; r < to; ++r) {
        const Request& req = batch.requests[r];
        if (req.state != RequestState::kNew)
            continue;
        const std::string_view body = req.payload.view();
        uint32_t lineNo = 0;
        size_t pos = 0;
        while (pos < body.size()) {
            const void* nl = std::memchr(body.data() + pos, '\n', body.size() - pos);
            const size_t end = nl ? static_cast<size_t>(static_cast<const char*>(nl) - body.data()) : body.size();
            std::string_view line = body.substr(pos, end - pos);
            pos = end + 1;
            if (blankLine(line))
                continue;
            if (line.back() == '\r')
                line.remove_suffix(1);
            Item& item = w.items.emplace_back();
            item.request = static_cast<uint32_t>(r);
            item.line = lineNo++;
            item.text = line;
            contract::Rejection why;
            if (!w.validator->validate(line, req.receivedAtMs, nowMs, w.parseArena, item.ev, why)) {
                item.ok = false;
                item.row = static_cast<uint32_t>(w.rejections.size());
                w.rejections.push_back(std::move(why));
                continue;
            }
            item.ok = true;
            const ContractSpec& spec = *contracts.compiled(item.ev.contract).spec;
            w.scratch.assign(spec.ref);
            w.scratch.push_back('\0');
            w.scratch.append(item.ev.fields[static_cast<size_t>(spec.keyFieldIndex)].text);
            Status s = w.lookupMac->mac(w.scratch, item.lookup);
            if (!s && w.error.isOk())
                w.error = s;
            item.shard = static_cast<uint8_t>(item.lookup[31] % shards);
        }
    }
}

void Processor::Impl::fieldCell(Worker& w, const FieldSpec& f, const Value& v, const privacy::ActiveKey& key,
                                Cell& out)
{
    switch (v.kind) {
    case ValueKind::kMissing: out = Cell::null(); return;
    case ValueKind::kBool: out = Cell::ofInt(v.b ? 1 : 0); return;
    case ValueKind::kInt: out = Cell::ofInt(v.i); return;
    case ValueKind::kReal: out = Cell::ofReal(v.d); return;
    case ValueKind::kString:
        if (!f.isPii()) {
            // Parsed values live in the worker's parse arena, reused by the next batch: what the
            // writer will read is copied to the batch's own arena.
            out = Cell::ofText(w.transformArena.copy(v.text));
            return;
        }
        w.scratch.clear();
        if (Status s = privacy::appendTinkBase64(*w.cipher, key.keyId, v.text, w.scratch); !s && w.error.isOk())
            w.error = s;
        out = Cell::ofText(w.transformArena.copy(w.scratch));
        return;
    case ValueKind::kArray:
        w.scratch.clear();
        if (!f.isPii()) {
            appendJson(w.scratch, v);
        } else {
            std::string element;
            w.scratch += '[';
            for (size_t i = 0; i < v.items.size(); ++i) {
                if (i)
                    w.scratch += ',';
                element.clear();
                if (Status s = privacy::appendTinkBase64(*w.cipher, key.keyId, v.items[i].text, element);
                    !s && w.error.isOk())
                    w.error = s;
                w.scratch += '"';
                w.scratch += element;  // Base64: nothing to escape
                w.scratch += '"';
            }
            w.scratch += ']';
        }
        out = Cell::ofText(w.transformArena.copy(w.scratch));
        return;
    }
}

void Processor::Impl::derivedCell(Worker& w, const OutputPlan& plan, size_t f, const FieldSpec& spec, const Value& v,
                                  const Cell& stored, int output, Cell& out)
{
    const bool clear = !spec.isPii() || plan.decrypted[f];
    if (!clear || !v.present()) {
        out = stored;  // still encrypted in this output (or absent)
        return;
    }
    if (!plan.masked[f]) {
        if (spec.isPii()) {
            if (v.kind == ValueKind::kString) {
                out = Cell::ofText(w.transformArena.copy(v.text));
            } else {
                w.scratch.clear();
                appendJson(w.scratch, v);
                out = Cell::ofText(w.transformArena.copy(w.scratch));
            }
        } else {
            out = stored;
        }
        return;
    }
    privacy::Masker& masker = *w.maskers[static_cast<size_t>(output)];
    w.scratch.clear();
    auto maskOne = [&](const Value& x, std::string& into) {
        Status s;
        if (x.kind == ValueKind::kString) {
            s = masker.append(x.text, into);
        } else {
            std::string text;  // a masked number or boolean: the mask of its JSON text
            appendJson(text, x);
            s = masker.append(text, into);
        }
        if (!s && w.error.isOk())
            w.error = s;
    };
    if (v.kind == ValueKind::kArray) {
        std::string element;
        w.scratch += '[';
        for (size_t i = 0; i < v.items.size(); ++i) {
            if (i)
                w.scratch += ',';
            element.clear();
            maskOne(v.items[i], element);
            w.scratch += '"';
            w.scratch += element;  // hex: nothing to escape
            w.scratch += '"';
        }
        w.scratch += ']';
    } else {
        maskOne(v, w.scratch);
    }
    out = Cell::ofText(w.transformArena.copy(w.scratch));
}

void Processor::Impl::transform(int shard, const Batch& batch, WriteBatch& wb, int64_t nowMs)
{
    Worker& w = workers[static_cast<size_t>(shard)];
    const PipelineSpec& spec = *pipeline->spec;
    const uint64_t batchId = batch.id;
    for (size_t wi = 0; wi < workers.size(); ++wi) {
        const std::vector<Item>& items = workers[wi].items;
        for (size_t idx = 0; idx < items.size(); ++idx) {
            // The key directory is bigger than the CPU caches: start loading a later event's entry.
            constexpr size_t kPrefetchDistance = 8;
            if (idx + kPrefetchDistance < items.size()) {
                const Item& ahead = items[idx + kPrefetchDistance];
                if (ahead.ok && ahead.shard == shard)
                    w.keys->prefetch(ahead.lookup);
            }
            const Item& it = items[idx];
            if (!it.ok || it.shard != shard)
                continue;
            const size_t global = itemOffsets[wi] + idx;
            const size_t c = static_cast<size_t>(it.ev.contract);
            const ContractSpec& contract = spec.contracts[c];
            auto key = w.keys->acquire(it.lookup, contract.ref, nowMs, *w.cipher, w.created);
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
            row[3] = Cell::ofInt(batch.requests[it.request].receivedAtMs);
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

Status Processor::Impl::deadLetterInput(std::string_view text, int64_t nowMs,
                                        const Digest& dayLookup, std::vector<KeyRecord>& created, DeadLetter& out)
{
    out.inputBytes = static_cast<uint32_t>(text.size());
    if (options.deadLetterInputBytes == 0)
        return Status::ok();
    Worker& w = workers[0];
    auto key = deadLetterKeys->acquire(dayLookup, "", nowMs, *w.cipher, created);
    if (!key)
        return key.status();
    std::string_view capped = text.substr(0, options.deadLetterInputBytes);
    SLUICE_RETURN_IF_ERROR(privacy::tinkEncrypt(*w.cipher, (*key)->keyId, capped, out.input));
    out.inputKeyLink = std::string((*key)->link());
    return Status::ok();
}

WriteBatch Processor::Impl::process(Batch&& batch)
{
    const auto t0 = Clock_::now();
    const int64_t nowMs = clock.wallMs();
    const PipelineSpec& spec = *pipeline->spec;
    const size_t nWorkers = workers.size();
    for (Worker& w : workers) {
        w.items.clear();
        w.rejections.clear();
        w.created.clear();
        w.subjects.clear();
        w.consentTexts.clear();
        w.parseArena.rewind();
        w.error = Status::ok();
    }

    // Phase A: contiguous request ranges of about equal bytes.
    std::vector<size_t> bounds(nWorkers + 1, batch.requests.size());
    {
        uint64_t total = 0;
        for (const Request& r : batch.requests)
            total += r.payload.size();
        uint64_t acc = 0;
        size_t w = 1;
        bounds[0] = 0;
        for (size_t r = 0; r < batch.requests.size() && w < nWorkers; ++r) {
            acc += batch.requests[r].payload.size();
            while (w < nWorkers && acc * nWorkers >= total * w)
                bounds[w++] = r + 1;
        }
    }
    pool.run([&](int i) {
        parse(workers[static_cast<size_t>(i)], batch, bounds[static_cast<size_t>(i)],
              bounds[static_cast<size_t>(i) + 1], nowMs);
    });
    const auto t1 = Clock_::now();

    // Plan, sequentially, in arrival order.
    WriteBatch wb;
    BatchRecord& rec = wb.record;
    rec.id = batch.id;
    rec.openedAtMs = batch.openedAtMs;
    rec.closedAtMs = batch.closedAtMs;
    rec.closedMonoNs = batch.closedMonoNs;
    rec.closeReason = batch.closeReason;
    rec.requests = static_cast<uint32_t>(batch.requests.size());
    rec.bytes = batch.bytes;

    std::vector<int32_t> outcomeOf(batch.requests.size(), -1);
    Digest dayLookup{};
    bool haveDayLookup = false;
    std::vector<KeyRecord> deadLetterKeysCreated;
    Status failure;
    auto addDeadLetter = [&](Reason reason, std::string message, size_t r, int32_t eventIndex, std::string_view text,
                             int contractIndex, std::string eventId) {
        const Request& req = batch.requests[r];
        DeadLetter& d = wb.deadLetters.emplace_back();
        d.reason = reason;
        d.message = std::move(message);
        d.receivedAtMs = req.receivedAtMs;
        d.requestIndex = static_cast<uint32_t>(r);
        d.eventIndex = eventIndex;
        d.producer = req.producer;
        d.seq = req.mode == RequestMode::kAcknowledged && !req.producer.empty() ? static_cast<int64_t>(req.seq) : -1;
        if (contractIndex >= 0)
            d.contract = spec.contracts[static_cast<size_t>(contractIndex)].ref;
        d.eventId = std::move(eventId);
        if (!haveDayLookup) {
            std::string day = "dead-letter";
            day.push_back('\0');
            day += isoTimeMs(nowMs).substr(0, 10);
            Status s = workers[0].lookupMac->mac(day, dayLookup);
            if (!s && failure.isOk())
                failure = s;
            haveDayLookup = true;
        }
        Status s = deadLetterInput(text, nowMs, dayLookup, deadLetterKeysCreated, d);
        if (!s && failure.isOk())
            failure = s;
        d.inputBytes = static_cast<uint32_t>(reason == Reason::kTooLarge && eventIndex < 0 ? req.wireBytes : text.size());
        ++rec.rejected;
        stats.rejected[static_cast<size_t>(reason)].fetch_add(1, std::memory_order_relaxed);
    };

    for (size_t r = 0; r < batch.requests.size(); ++r) {
        const Request& req = batch.requests[r];
        if (req.mode == RequestMode::kAcknowledged) {
            outcomeOf[r] = static_cast<int32_t>(wb.outcomes.size());
            wb.outcomes.push_back(RequestOutcome::of(req));
        }
        if (req.state == RequestState::kRejected) {
            ++rec.received;
            addDeadLetter(req.rejectReason, req.rejectMessage, r, -1, req.payload.view(), -1, {});
        } else if (req.state == RequestState::kDuplicate) {
            rec.received += req.events;
            rec.duplicates += req.events;
        }
    }

    itemOffsets.assign(nWorkers, 0);
    size_t totalItems = 0;
    for (size_t wi = 0; wi < nWorkers; ++wi) {
        itemOffsets[wi] = totalItems;
        totalItems += workers[wi].items.size();
    }
    std::vector<uint32_t> rowsPerContract(spec.contracts.size(), 0);
    derivedRowOf.resize(pipeline->outputs.size());
    std::vector<uint32_t> rowsPerOutput(pipeline->outputs.size(), 0);
    for (auto& v : derivedRowOf)
        v.assign(totalItems, -1);
    for (size_t wi = 0; wi < nWorkers; ++wi) {
        Worker& w = workers[wi];
        if (!w.error.isOk() && failure.isOk())
            failure = w.error;
        for (size_t idx = 0; idx < w.items.size(); ++idx) {
            Item& it = w.items[idx];
            const Request& req = batch.requests[it.request];
            RequestOutcome* outcome = outcomeOf[it.request] >= 0 ? &wb.outcomes[static_cast<size_t>(outcomeOf[it.request])]
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
                        derivedRowOf[static_cast<size_t>(o)][itemOffsets[wi] + idx] =
                            static_cast<int32_t>(rowsPerOutput[static_cast<size_t>(o)]++);
                }
            } else {
                contract::Rejection& why = w.rejections[it.row];
                if (outcome) {
                    ++outcome->rejected;
                    outcome->errors.push_back(EventError{it.line, why.reason, why.message});
                }
                addDeadLetter(why.reason, std::move(why.message), it.request, static_cast<int32_t>(it.line), it.text,
                              why.contract, std::move(why.eventId));
            }
            (void)req;
        }
    }
    for (size_t r = 0; r < batch.requests.size(); ++r) {
        const Request& req = batch.requests[r];
        if (req.mode != RequestMode::kAcknowledged || req.state != RequestState::kNew)
            continue;
        const RequestOutcome& o = wb.outcomes[static_cast<size_t>(outcomeOf[r])];
        wb.marks.push_back(ProducerMark{req.producer, req.seq, o.accepted, o.rejected});
    }

    contractInsert.assign(spec.contracts.size(), -1);
    for (size_t c = 0; c < spec.contracts.size(); ++c) {
        if (!rowsPerContract[c])
            continue;
        contractInsert[c] = static_cast<int>(wb.inserts.size());
        TableRows& t = wb.inserts.emplace_back();
        t.table = spec.contracts[c].tableName();
        t.width = kMetaColumns + spec.contracts[c].fields.size();
        t.cells.resize(t.width * rowsPerContract[c]);
    }
    outputInsert.assign(pipeline->outputs.size(), -1);
    for (size_t o = 0; o < pipeline->outputs.size(); ++o) {
        if (!rowsPerOutput[o])
            continue;
        const OutputPlan& plan = pipeline->outputs[o];
        outputInsert[o] = static_cast<int>(wb.inserts.size());
        TableRows& t = wb.inserts.emplace_back();
        t.table = plan.spec->tableName();
        t.width = 1 + kMetaColumns + spec.contracts[static_cast<size_t>(plan.contract)].fields.size();
        t.cells.resize(t.width * rowsPerOutput[o]);
        t.parent = contractInsert[static_cast<size_t>(plan.contract)];
        t.parentColumn = 0;
        t.keyLinkColumn = 1 + static_cast<int>(kKeyLinkColumn);
        t.dropIfKeyShredded = true;
    }
    const auto t2 = Clock_::now();

    // Phase B: per shard.
    pool.run([&](int i) { transform(i, batch, wb, nowMs); });
    const auto t3 = Clock_::now();

    // Phase C: aggregates, in arrival order.
    for (size_t wi = 0; wi < nWorkers; ++wi) {
        for (const Item& it : workers[wi].items) {
            if (!it.ok)
                continue;
            for (aggregate::Aggregator* a : aggregatorsByContract[static_cast<size_t>(it.ev.contract)])
                a->add(it.ev.eventTimeMs, it.ev.consent, it.ev.fields);
        }
    }
    Arena aggregateArena;
    for (auto& a : aggregators) {
        aggregate::FlushSummary summary = a->flush(aggregateArena, wb.upserts, wb.finalizes);
        wb.lateEvents += summary.lateEvents;
        if (summary.lateEvents) {
            std::lock_guard lock(stats.lateMutex);
            stats.lateByAggregation[a->table().name()] += summary.lateEvents;
        }
    }
    const auto t4 = Clock_::now();

    for (Worker& w : workers) {
        if (!w.error.isOk() && failure.isOk())
            failure = w.error;
        for (KeyRecord& k : w.created)
            wb.keys.push_back(std::move(k));
        for (KeySubject& s : w.subjects)
            wb.subjects.push_back(std::move(s));
        // The parse arena (plaintext PII among it) stays with the worker and is reused; only the
        // transform arena, which the rows point into, travels to the writer.
        wb.arenas.push_back(std::move(w.transformArena));
        w.transformArena = Arena();
    }
    for (KeyRecord& k : deadLetterKeysCreated)
        wb.keys.push_back(std::move(k));
    wb.arenas.push_back(std::move(aggregateArena));
    rec.keysCreated = static_cast<uint32_t>(wb.keys.size());

    if (!failure.isOk()) {
        // A key could not be made or read, or a cipher failed: nothing of this batch may be
        // committed or acknowledged. Stop; systemd restarts the daemon and producers retry.
        log::error("batch ", batch.id, " cannot be transformed: ", failure.message());
        std::fflush(stderr);
        std::_Exit(70);
    }

    wb.times.queuedUs = (clock.monoNs() - batch.closedMonoNs) / 1000 - microsSince(t0);
    wb.times.parseUs = std::chrono::duration_cast<std::chrono::microseconds>(t1 - t0).count();
    wb.times.transformUs = std::chrono::duration_cast<std::chrono::microseconds>(t3 - t1).count();
    wb.times.aggregateUs = std::chrono::duration_cast<std::chrono::microseconds>(t4 - t3).count();
    (void)t2;

    stats.batches.fetch_add(1, std::memory_order_relaxed);
    stats.received.fetch_add(rec.received, std::memory_order_relaxed);
    stats.accepted.fetch_add(rec.committed, std::memory_order_relaxed);
    stats.duplicates.fetch_add(rec.duplicates, std::memory_order_relaxed);
    stats.late.fetch_add(wb.lateEvents, std::memory_order_relaxed);
    stats.keysCreated.fetch_add(wb.keys.size(), std::memory_order_relaxed);
    size_t cached = 0;
    uint64_t loaded = 0;
    for (const Worker& w : workers) {
        cached += w.keys->residentSize();
        loaded += w.keys->stats().loads;
    }
    stats.keysCached.store(cached, std::memory_order_relaxed);
    stats.keysLoaded.store(loaded, std::memory_order_relaxed);
    stats.parseUs.fetch_add(static_cast<uint64_t>(wb.times.parseUs), std::memory_order_relaxed);
    stats.transformUs.fetch_add(static_cast<uint64_t>(wb.times.transformUs), std::memory_order_relaxed);
    stats.aggregateUs.fetch_add(static_cast<uint64_t>(wb.times.aggregateUs), std::memory_order_relaxed);
    // The batch's bytes are no longer needed except for the arenas (events were copied out).
    batch.requests.clear();
    return wb;
}

}  // namespace sluice::service
