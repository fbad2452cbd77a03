#include "support.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "store/db.h"
#include "workload/generator.h"

namespace sluice::testing {

namespace fs = std::filesystem;

std::string eventIdOf(std::string_view line)
{
    constexpr std::string_view key = "\"event_id\":\"";
    auto at = line.find(key);
    if (at == std::string_view::npos)
        return {};
    at += key.size();
    auto end = line.find('"', at);
    return end == std::string_view::npos ? std::string() : std::string(line.substr(at, end - at));
}

std::vector<std::string> referenceEvents(uint64_t seed, size_t count)
{
    workload::Options o;
    o.seed = seed;
    workload::Generator generator(o);
    std::vector<std::string> lines(count);
    for (auto& line : lines)
        generator.next(line);
    return lines;
}

std::string ndjson(const std::vector<std::string>& lines, size_t from, size_t to)
{
    std::string body;
    for (size_t i = from; i < to; ++i) {
        body += lines[i];
        body += '\n';
    }
    return body;
}

std::vector<std::unique_ptr<TrackedProducer>> makeProducers(size_t count, TrackedProducer::Options options,
                                                            const std::string& name)
{
    std::vector<std::unique_ptr<TrackedProducer>> producers;
    for (size_t p = 0; p < count; ++p) {
        options.producerId = name + "-" + std::to_string(p);
        producers.push_back(std::make_unique<TrackedProducer>(options));
    }
    return producers;
}

TrackedProducer::TrackedProducer(Options options) : options_(std::move(options)), nextSeq_(options_.firstSeq)
{
    ingest::AckProducer::Options o;
    o.endpoint = options_.endpoint;
    o.producerId = options_.producerId;
    o.firstSeq = options_.firstSeq;
    o.window = options_.window;
    o.timeoutMs = options_.timeoutMs;
    o.maxBackoffMs = options_.maxBackoffMs;
    o.giveUpMs = options_.giveUpMs;
    o.onReply = [this](const ingest::Reply& r) { onReply(r); };
    auto p = ingest::AckProducer::connect(std::move(o));
    if (!p)
        throw std::runtime_error(p.status().message());
    producer_ = std::move(*p);
    options_.producerId = producer_->producerId();
}

TrackedProducer::~TrackedProducer() = default;

void TrackedProducer::problem(std::string text)
{
    std::lock_guard lock(mutex_);
    problems_.push_back(options_.producerId + ": " + std::move(text));
}

void TrackedProducer::onReply(const ingest::Reply& reply)
{
    std::lock_guard lock(mutex_);
    auto sent = sent_.find(reply.seq);
    if (sent == sent_.end()) {
        problems_.push_back(options_.producerId + ": a reply for seq " + std::to_string(reply.seq) +
                            ", which was never sent");
        return;
    }
    auto [it, fresh] = settled_.emplace(reply.seq, Settled{reply, std::chrono::steady_clock::now()});
    if (!fresh) {
        // AckProducer settles a request once; a second settlement would be a producer bug.
        problems_.push_back(options_.producerId + ": seq " + std::to_string(reply.seq) + " settled twice");
        return;
    }
    settledRequests_.fetch_add(1);
    if (reply.ok)
        ackedEvents_.fetch_add(sent->second.events);
}

bool TrackedProducer::sendBody(std::string body, uint32_t events, std::vector<std::string> eventIds)
{
    const uint64_t seq = nextSeq_++;
    {
        std::lock_guard lock(mutex_);
        Sent& s = sent_[seq];
        s.eventIds = std::move(eventIds);
        s.events = events;
        s.body = body;
        s.firstSent = std::chrono::steady_clock::now();
    }
    sentRequests_.fetch_add(1);
    try {
        auto used = producer_->send(std::move(body), events);
        if (!used) {
            problem("send failed: " + used.status().message());
            return false;
        }
        if (*used != seq) {
            problem("the producer used seq " + std::to_string(*used) + ", expected " + std::to_string(seq));
            return false;
        }
    } catch (const std::exception& e) {
        problem(std::string("send threw: ") + e.what());
        return false;
    }
    std::lock_guard lock(mutex_);
    report_ = producer_->report();
    return true;
}

bool TrackedProducer::send(const std::vector<std::string>& lines, size_t from, size_t to)
{
    std::vector<std::string> ids;
    ids.reserve(to - from);
    for (size_t i = from; i < to; ++i)
        ids.push_back(eventIdOf(lines[i]));
    return sendBody(ndjson(lines, from, to), static_cast<uint32_t>(to - from), std::move(ids));
}

bool TrackedProducer::flush()
{
    bool ok = true;
    try {
        if (Status s = producer_->flush(); !s) {
            problem("flush failed: " + s.message());
            ok = false;
        }
    } catch (const std::exception& e) {
        problem(std::string("flush threw: ") + e.what());
        ok = false;
    }
    std::lock_guard lock(mutex_);
    report_ = producer_->report();
    return ok;
}

std::map<uint64_t, TrackedProducer::Sent> TrackedProducer::sent() const
{
    std::lock_guard lock(mutex_);
    return sent_;
}

std::map<uint64_t, TrackedProducer::Settled> TrackedProducer::settled() const
{
    std::lock_guard lock(mutex_);
    return settled_;
}

std::vector<std::string> TrackedProducer::problems() const
{
    std::lock_guard lock(mutex_);
    return problems_;
}

std::set<std::string> TrackedProducer::ackedEventIds() const
{
    std::lock_guard lock(mutex_);
    std::set<std::string> ids;
    for (const auto& [seq, s] : settled_) {
        if (!s.reply.ok)
            continue;
        const auto& idsOfRequest = sent_.at(seq).eventIds;
        ids.insert(idsOfRequest.begin(), idsOfRequest.end());
    }
    return ids;
}

ingest::ProducerReport TrackedProducer::report() const
{
    std::lock_guard lock(mutex_);
    return report_;
}

JoinOnExit::~JoinOnExit()
{
    stop_ = true;
    for (auto& t : threads_)
        if (t.joinable())
            t.join();
}

OnceCheck compareOnce(const std::map<std::string, int64_t>& stored, const std::set<std::string>& expected)
{
    OnceCheck c;
    for (const std::string& id : expected)
        c.missing += stored.count(id) ? 0 : 1;
    for (const auto& [id, n] : stored) {
        c.repeated += n > 1 ? 1 : 0;
        c.extra += expected.count(id) ? 0 : 1;
    }
    return c;
}

namespace {

store::Db openDb(const std::string& database, bool readOnly)
{
    store::Db::Options o;
    o.readOnly = readOnly;
    o.create = false;
    auto db = store::Db::open(database, o);
    if (!db)
        throw std::runtime_error(db.status().message());
    return std::move(*db);
}

std::vector<std::string> columnOfRows(store::Db& db, const std::string& sql)
{
    auto stmt = db.prepare(sql);
    if (!stmt)
        throw std::runtime_error(stmt.status().message());
    std::vector<std::string> out;
    for (;;) {
        auto row = stmt->step();
        if (!row)
            throw std::runtime_error(row.status().message());
        if (!*row)
            return out;
        out.emplace_back(stmt->columnIsNull(0) ? "NULL" : std::string(stmt->columnText(0)));
    }
}

std::string quoted(const std::string& name) { return "\"" + name + "\""; }

}  // namespace

std::string integrityCheck(const std::string& database)
{
    store::Db db = openDb(database, false);
    std::string out;
    for (const std::string& line : columnOfRows(db, "PRAGMA integrity_check")) {
        if (!out.empty())
            out += "; ";
        out += line;
    }
    return out;
}

std::string integrityCheckOfCopy(const std::string& database, const std::string& scratchDir)
{
    fs::create_directories(scratchDir);
    const std::string copy = (fs::path(scratchDir) / "check.db").string();
    for (const char* suffix : {"", "-wal", "-shm"})
        fs::remove(copy + suffix);
    fs::copy_file(database, copy);
    if (fs::exists(database + "-wal"))
        fs::copy_file(database + "-wal", copy + "-wal");
    // No -shm: SQLite rebuilds the WAL index from the WAL itself, as after a reboot.
    std::string result = integrityCheck(copy);
    for (const char* suffix : {"", "-wal", "-shm"})
        fs::remove(copy + suffix);
    return result;
}

std::map<std::string, int64_t> eventIdCounts(const std::string& database, const std::string& table)
{
    store::Db db = openDb(database, true);
    auto stmt = db.prepare("SELECT event_id, count(*) FROM " + quoted(table) + " GROUP BY event_id");
    if (!stmt)
        throw std::runtime_error(stmt.status().message());
    std::map<std::string, int64_t> counts;
    for (;;) {
        auto row = stmt->step();
        if (!row)
            throw std::runtime_error(row.status().message());
        if (!*row)
            return counts;
        counts[stmt->columnIsNull(0) ? "NULL" : std::string(stmt->columnText(0))] = stmt->columnInt(1);
    }
}

std::map<std::string, std::string> tableContents(const std::string& database, const std::set<std::string>& except)
{
    store::Db db = openDb(database, true);
    std::map<std::string, std::string> out;
    for (const std::string& table :
         columnOfRows(db, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY 1")) {
        if (except.count(table))
            continue;
        auto probe = db.prepare("SELECT * FROM " + quoted(table) + " LIMIT 0");
        if (!probe)
            throw std::runtime_error(probe.status().message());
        const int columns = probe->columnCount();
        std::string order;
        for (int i = 1; i <= columns; ++i) {
            if (i > 1)
                order += ',';
            order += std::to_string(i);
        }
        auto stmt = db.prepare("SELECT * FROM " + quoted(table) + " ORDER BY " + order);
        if (!stmt)
            throw std::runtime_error(stmt.status().message());
        std::string& text = out[table];
        for (;;) {
            auto row = stmt->step();
            if (!row)
                throw std::runtime_error(row.status().message());
            if (!*row)
                break;
            for (int c = 0; c < columns; ++c) {
                if (stmt->columnIsNull(c)) {
                    text += "NULL";
                } else if (stmt->columnIsBlob(c)) {
                    static const char* hex = "0123456789abcdef";
                    text += "x'";
                    for (unsigned char b : stmt->columnBlob(c)) {
                        text += hex[b >> 4];
                        text += hex[b & 15];
                    }
                    text += "'";
                } else {
                    text += stmt->columnText(c);
                }
                text += c + 1 < columns ? '|' : '\n';
            }
        }
    }
    return out;
}

int64_t residentKiB(pid_t pid)
{
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("VmRSS:", 0) == 0) {
            std::istringstream s(line.substr(6));
            int64_t kib = -1;
            s >> kib;
            return kib;
        }
    }
    return -1;
}

}  // namespace sluice::testing
