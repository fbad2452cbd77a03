#include "store/committed_reader.h"

#include <charconv>

#include "store/schema.h"

namespace sluice::store {
namespace {

bool parseInt(std::string_view text, int64_t& out)
{
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

const RowRange* CommittedBatch::range(std::string_view table) const
{
    for (const RowRange& r : ranges)
        if (r.table == table)
            return &r;
    return nullptr;
}

std::vector<RowRange> parseRowRanges(std::string_view text)
{
    std::vector<RowRange> ranges;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t end = text.find('\n', pos);
        if (end == std::string_view::npos)
            end = text.size();
        std::string_view line = text.substr(pos, end - pos);
        pos = end + 1;
        const size_t a = line.find(' ');
        const size_t b = a == std::string_view::npos ? a : line.find(' ', a + 1);
        if (b == std::string_view::npos)
            continue;
        RowRange r;
        r.table = std::string(line.substr(0, a));
        if (parseInt(line.substr(a + 1, b - a - 1), r.first) && parseInt(line.substr(b + 1), r.last) && !r.table.empty())
            ranges.push_back(std::move(r));
    }
    return ranges;
}

RowQuery RowQuery::tableRows(const std::string& table)
{
    return {"SELECT * FROM " + quoteIdent(table) + " WHERE seq BETWEEN ?1 AND ?2 AND batch_id = ?3 ORDER BY seq"};
}

RowQuery RowQuery::derivedRows(const OutputSpec& output, const ContractSpec& contract,
                               const std::vector<bool>& ownFields)
{
    return {derivedRowsSql(output, contract, ownFields) +
            " WHERE d.seq BETWEEN ?1 AND ?2 AND d.batch_id = ?3 ORDER BY d.seq"};
}

RowQuery RowQuery::finalWindows(const std::string& view)
{
    // ?3 is not needed: a window is made final once, by one batch.
    return {"SELECT * FROM " + quoteIdent(view) +
            " WHERE window_start_ms BETWEEN ?1 AND ?2 AND final = 1 AND ?3 IS NOT NULL ORDER BY window_start_ms"};
}

RowQuery RowQuery::dataKeys()
{
    return {"SELECT id, key_link, key_id, contract, wrapped, created_at, expires_at FROM keys "
            "WHERE id BETWEEN ?1 AND ?2 AND batch_id = ?3 AND kind = 'data' ORDER BY id"};
}

Result<CommittedReader> CommittedReader::open(const std::string& path)
{
    Db::Options options;
    options.readOnly = true;
    // Each snapshot sees new commits, and SQLite drops its page cache when the database changed:
    // a cache holds little more than the b-tree's inner pages for one chunk (2 MiB: +4.5 MiB of
    // RSS with three exporters, for nothing measured).
    options.cacheBytes = 512 * 1024;
    auto db = Db::open(path, options);
    if (!db)
        return db.status();
    CommittedReader reader;
    reader.db_ = std::move(*db);
    return reader;
}

Status CommittedReader::begin()
{
    end();
    SLUICE_RETURN_IF_ERROR(beginRead(db_));
    open_ = true;
    return Status::ok();
}

void CommittedReader::end()
{
    if (!open_)
        return;
    open_ = false;
    statements_.resetAll();
    (void)endRead(db_);
}

Result<int64_t> CommittedReader::queryId(const std::string& sql)
{
    auto stmt = statements_.get(db_, sql);
    if (!stmt)
        return stmt.status();
    Stmt& s = **stmt;
    auto row = s.step();
    if (!row)
        return row.status();
    const int64_t id = *row && !s.columnIsNull(0) ? s.columnInt(0) : 0;
    s.reset();
    return id;
}

Result<uint64_t> CommittedReader::lastBatchId()
{
    auto id = queryId("SELECT max(id) FROM batches");
    if (!id)
        return id.status();
    return static_cast<uint64_t>(*id);
}

Result<std::vector<CommittedBatch>> CommittedReader::batchesAfter(uint64_t after, size_t limit)
{
    auto stmt = statements_.get(db_, "SELECT id, committed_at, row_ranges FROM batches WHERE id > ?1 ORDER BY id LIMIT ?2");
    if (!stmt)
        return stmt.status();
    Stmt& s = **stmt;
    s.bind(1, static_cast<int64_t>(after)).bind(2, static_cast<int64_t>(limit));
    std::vector<CommittedBatch> batches;
    SLUICE_RETURN_IF_ERROR(s.forEachRow([&](const Stmt& row) {
        CommittedBatch b;
        b.id = static_cast<uint64_t>(row.columnInt(0));
        b.committedAtMs = row.columnInt(1);
        b.ranges = parseRowRanges(row.columnText(2));
        batches.push_back(std::move(b));
    }));
    return batches;
}

Status CommittedReader::forEachRow(const RowQuery& query, uint64_t batch, const RowRange& range,
                                   const std::function<void(const RowView&)>& fn)
{
    auto stmt = statements_.get(db_, query.sql);
    if (!stmt)
        return stmt.status();
    Stmt& s = **stmt;
    s.bind(1, range.first).bind(2, range.last).bind(3, static_cast<int64_t>(batch));
    const int columns = s.columnCount();
    names_.clear();
    for (int c = 0; c < columns; ++c)
        names_.emplace_back(s.columnName(c));
    cells_.resize(static_cast<size_t>(columns));
    return s.forEachRow([&](const Stmt& row) {
               for (int c = 0; c < columns; ++c)
                   cells_[static_cast<size_t>(c)] = row.columnCell(c);
               fn(RowView{names_, cells_});
           })
        .withContext("reading " + range.table + " of batch " + std::to_string(batch));
}

Result<int64_t> CommittedReader::countRows(uint64_t batch, const RowRange& range)
{
    auto stmt = statements_.get(
        db_, "SELECT count(*) FROM " + quoteIdent(range.table) + " WHERE seq BETWEEN ?1 AND ?2 AND batch_id = ?3");
    if (!stmt)
        return stmt.status();
    Stmt& s = **stmt;
    s.bind(1, range.first).bind(2, range.last).bind(3, static_cast<int64_t>(batch));
    auto row = s.step();
    if (!row)
        return row.status().withContext("counting " + range.table + " of batch " + std::to_string(batch));
    const int64_t n = *row ? s.columnInt(0) : 0;
    s.reset();
    return n;
}

Result<std::vector<ShredEntry>> CommittedReader::shredsAfter(int64_t after, size_t limit)
{
    auto stmt = statements_.get(db_, "SELECT id, at, cause, key_links FROM shred_log WHERE id > ?1 ORDER BY id LIMIT ?2");
    if (!stmt)
        return stmt.status();
    Stmt& s = **stmt;
    s.bind(1, after).bind(2, static_cast<int64_t>(limit));
    std::vector<ShredEntry> entries;
    SLUICE_RETURN_IF_ERROR(s.forEachRow([&](const Stmt& row) {
        ShredEntry e;
        e.id = row.columnInt(0);
        e.atMs = row.columnInt(1);
        e.cause = std::string(row.columnText(2));
        std::string_view links = row.columnText(3);
        size_t pos = 0;
        while (pos < links.size()) {
            size_t end = links.find('\n', pos);
            if (end == std::string_view::npos)
                end = links.size();
            if (end > pos)
                e.keyLinks.emplace_back(links.substr(pos, end - pos));
            pos = end + 1;
        }
        entries.push_back(std::move(e));
    }));
    return entries;
}

Result<int64_t> CommittedReader::lastShredId() { return queryId("SELECT max(id) FROM shred_log"); }

Result<std::optional<ExportCursor>> loadCursor(Db& db, std::string_view exporter)
{
    auto stmt = db.prepare("SELECT batch_id, shred_id, state FROM export_cursors WHERE exporter = ?1");
    if (!stmt)
        return stmt.status();
    stmt->bindText(1, exporter);
    auto row = stmt->step();
    if (!row)
        return row.status();
    if (!*row)
        return std::optional<ExportCursor>();
    ExportCursor c;
    c.batchId = static_cast<uint64_t>(stmt->columnInt(0));
    c.shredId = stmt->columnInt(1);
    c.state = std::string(stmt->columnText(2));
    return std::optional<ExportCursor>(std::move(c));
}

Status saveCursor(Db& db, std::string_view exporter, const ExportCursor& cursor, int64_t nowMs)
{
    auto stmt = db.prepare(
        "INSERT INTO export_cursors(exporter, batch_id, shred_id, state, updated_at) VALUES(?1, ?2, ?3, ?4, ?5) "
        "ON CONFLICT(exporter) DO UPDATE SET batch_id = excluded.batch_id, shred_id = excluded.shred_id, "
        "state = excluded.state, updated_at = excluded.updated_at");
    if (!stmt)
        return stmt.status();
    stmt->bindText(1, exporter)
        .bind(2, static_cast<int64_t>(cursor.batchId))
        .bind(3, cursor.shredId)
        .bindText(4, cursor.state)
        .bind(5, nowMs);
    return stmt->run().withContext("saving the cursor of exporter " + std::string(exporter));
}

Result<std::vector<std::pair<std::string, ExportCursor>>> loadCursors(Db& db)
{
    auto stmt = db.prepare("SELECT exporter, batch_id, shred_id, state FROM export_cursors ORDER BY exporter");
    if (!stmt)
        return stmt.status();
    std::vector<std::pair<std::string, ExportCursor>> cursors;
    SLUICE_RETURN_IF_ERROR(stmt->forEachRow([&](const Stmt& row) {
        ExportCursor c;
        c.batchId = static_cast<uint64_t>(row.columnInt(1));
        c.shredId = row.columnInt(2);
        c.state = std::string(row.columnText(3));
        cursors.emplace_back(std::string(row.columnText(0)), std::move(c));
    }));
    return cursors;
}

}  // namespace sluice::store
