#include "store/reprocess.h"

#include <utility>

#include "core/schema.h"
#include "store/batch_writer.h"

namespace sluice::store {

Status forEachEventInOrder(Db& db, const std::string& table, const std::vector<std::string>& columns,
                           int64_t afterSeq, int64_t uptoSeq, const std::function<Status(const Stmt&)>& fn)
{
    std::string list;
    for (const std::string& c : columns)
        list += (list.empty() ? "" : ", ") + quoteIdent(c);
    auto stmt = db.prepare("SELECT " + list + " FROM " + quoteIdent(table) + " WHERE seq > ? AND seq <= ? ORDER BY seq");
    if (!stmt)
        return stmt.status();
    stmt->bind(1, afterSeq).bind(2, uptoSeq);
    return stmt->forEachRow([&](const Stmt& row) { return fn(row); });
}

Result<int64_t> lastEventSeq(Db& db, const std::string& table)
{
    auto seq = db.queryInt("SELECT max(seq) FROM " + quoteIdent(table));
    if (!seq)
        return seq.status();
    return seq->value_or(0);
}

Result<int64_t> lastSeqOfBatch(Db& db, const std::string& table, uint64_t batchId)
{
    // The first row at or after a seq, with its batch.
    auto next = db.prepare("SELECT seq, batch_id FROM " + quoteIdent(table) + " WHERE seq >= ? ORDER BY seq LIMIT 1");
    if (!next)
        return next.status();
    auto last = lastEventSeq(db, table);
    if (!last)
        return last.status();
    // Invariant: every row with seq < lo has batch_id <= batchId; found is the largest such seq.
    int64_t lo = 0, hi = *last + 1, found = 0;
    while (lo < hi) {
        const int64_t mid = lo + (hi - lo) / 2;
        next->bind(1, mid);
        auto row = next->step();
        if (!row)
            return row.status();
        const bool have = *row;
        const int64_t seq = have ? next->columnInt(0) : 0;
        const bool inside = have && static_cast<uint64_t>(next->columnInt(1)) <= batchId;
        next->reset();
        if (inside) {
            found = seq;
            lo = seq + 1;
        } else {
            hi = mid;
        }
    }
    return found;
}

Result<std::optional<SessionSnapshot>> loadSessionSnapshot(Db& db, const std::string& aggregation)
{
    auto stmt = db.prepare("SELECT batch_id, max_event_time FROM session_snapshots WHERE aggregation = ?");
    if (!stmt)
        return stmt.status();
    stmt->bindText(1, aggregation);
    std::optional<SessionSnapshot> out;
    SLUICE_RETURN_IF_ERROR(stmt->forEachRow([&](const Stmt& row) {
        SessionSnapshot s;
        s.batchId = static_cast<uint64_t>(row.columnInt(0));
        if (!row.columnIsNull(1))
            s.maxEventTimeMs = row.columnInt(1);
        out = s;
    }));
    return out;
}

Status forEachSessionState(Db& db, const std::string& aggregation,
                           const std::function<Status(std::string_view state)>& fn)
{
    auto stmt = db.prepare("SELECT state FROM session_snapshot_rows WHERE aggregation = ?");
    if (!stmt)
        return stmt.status();
    stmt->bindText(1, aggregation);
    return stmt->forEachRow([&](const Stmt& row) { return fn(row.columnBlob(0)); });
}

Result<std::optional<int64_t>> storedMaxEventTime(Db& db, const std::string& contract)
{
    auto stmt = db.prepare("SELECT max_event_time FROM watermarks WHERE contract = ?");
    if (!stmt)
        return stmt.status();
    stmt->bindText(1, contract);
    std::optional<int64_t> out;
    SLUICE_RETURN_IF_ERROR(stmt->forEachRow([&](const Stmt& row) { out = row.columnInt(0); }));
    return out;
}

Result<std::optional<std::string>> storedAggregationDefinition(Db& db, const std::string& name)
{
    auto stmt = db.prepare("SELECT definition FROM aggregations WHERE name = ?");
    if (!stmt)
        return stmt.status();
    stmt->bindText(1, name);
    std::optional<std::string> out;
    SLUICE_RETURN_IF_ERROR(stmt->forEachRow([&](const Stmt& row) { out = std::string(row.columnText(0)); }));
    return out;
}

namespace {
constexpr const char* kKeyLinkTable = "temp.sluice_reprocess_key_links";
}  // namespace

Result<KeyLinkIndex> KeyLinkIndex::create(Db& db)
{
    KeyLinkIndex index;
    index.db_ = &db;
    SLUICE_RETURN_IF_ERROR(db.exec(std::string("DROP TABLE IF EXISTS ") + kKeyLinkTable));
    SLUICE_RETURN_IF_ERROR(db.exec(std::string("CREATE TABLE ") + kKeyLinkTable +
                                   " (key_link TEXT PRIMARY KEY, id INTEGER NOT NULL) WITHOUT ROWID"));
    auto find = db.prepare(std::string("SELECT key_id, wrapped FROM keys WHERE id = (SELECT id FROM ") +
                               kKeyLinkTable + " WHERE key_link = ?)",
                           true);
    if (!find)
        return find.status();
    index.find_ = std::move(*find);
    // OR IGNORE in rowid order: a link stored twice resolves to its first row, as keyByLink's scan.
    auto add = db.prepare(std::string("INSERT OR IGNORE INTO ") + kKeyLinkTable +
                              " (key_link, id) SELECT key_link, id FROM keys WHERE id > ? ORDER BY id",
                          true);
    if (!add)
        return add.status();
    index.addAfter_ = std::move(*add);
    auto last = db.prepare("SELECT max(id) FROM keys", true);
    if (!last)
        return last.status();
    index.maxRowid_ = std::move(*last);
    SLUICE_RETURN_IF_ERROR(index.indexNewKeys());
    return index;
}

KeyLinkIndex::KeyLinkIndex(KeyLinkIndex&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)),
      find_(std::move(other.find_)),
      addAfter_(std::move(other.addAfter_)),
      maxRowid_(std::move(other.maxRowid_)),
      lastRowid_(other.lastRowid_),
      size_(other.size_)
{
}

KeyLinkIndex::~KeyLinkIndex()
{
    if (!db_)
        return;
    find_ = Stmt();
    addAfter_ = Stmt();
    maxRowid_ = Stmt();
    (void)db_->exec(std::string("DROP TABLE IF EXISTS ") + kKeyLinkTable);  // frees its temp pages now
}

Status KeyLinkIndex::indexNewKeys()
{
    auto row = maxRowid_.step();
    if (!row)
        return row.status();
    const int64_t upTo = *row && !maxRowid_.columnIsNull(0) ? maxRowid_.columnInt(0) : 0;
    maxRowid_.reset();
    if (upTo <= lastRowid_)
        return Status::ok();
    addAfter_.bind(1, lastRowid_);
    SLUICE_RETURN_IF_ERROR(addAfter_.run().withContext("indexing the keys by link"));
    size_ += db_->changes();
    lastRowid_ = upTo;
    return Status::ok();
}

Result<std::optional<KeyLinkIndex::Key>> KeyLinkIndex::find(std::string_view keyLink)
{
    find_.bindText(1, keyLink);
    auto row = find_.step();
    if (!row)
        return row.status();
    std::optional<Key> key;
    if (*row)
        key = Key{static_cast<uint32_t>(find_.columnInt(0)), std::string(find_.columnBlob(1))};
    find_.reset();
    return key;
}

Result<std::optional<KeyLinkIndex::Key>> KeyLinkIndex::byLink(std::string_view keyLink)
{
    auto key = find(keyLink);
    if (!key || *key)
        return key;
    // Stored since the last look? (The link of a shredded key misses every time; that costs it
    // one read of the largest rowid.)
    const int64_t before = lastRowid_;
    SLUICE_RETURN_IF_ERROR(indexNewKeys());
    if (lastRowid_ == before)
        return key;
    return find(keyLink);
}

ShadowAggregation::ShadowAggregation(Db& db, std::string table, std::string aggregation)
    : db_(db),
      table_(std::move(table)),
      shadow_("sluice_reprocess_" + table_),
      aggregation_(std::move(aggregation)),
      lateShadow_("sluice_reprocess_late_" + table_)
{
}

ShadowAggregation::~ShadowAggregation()
{
    statements_.clear();
    // Temp tables vanish with the connection; dropping them early frees their pages.
    (void)db_.exec("DROP TABLE IF EXISTS temp." + quoteIdent(shadow_));
    (void)db_.exec("DROP TABLE IF EXISTS temp." + quoteIdent(lateShadow_));
}

Result<std::unique_ptr<ShadowAggregation>> ShadowAggregation::create(Db& db, const std::string& table,
                                                                     const std::string& aggregation)
{
    std::unique_ptr<ShadowAggregation> s(new ShadowAggregation(db, table, aggregation));
    auto stmt = db.prepare("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?");
    if (!stmt)
        return stmt.status();
    stmt->bindText(1, table);
    std::optional<std::string> createSql;
    SLUICE_RETURN_IF_ERROR(stmt->forEachRow([&](const Stmt& row) { createSql = std::string(row.columnText(0)); }));
    if (!createSql)
        return Status::notFound("the database has no table " + table);
    // "CREATE TABLE <name> (<columns>...)": the same columns and key under the shadow's name.
    const size_t open = createSql->find('(');
    if (open == std::string::npos)
        return Status::corruption("cannot read the layout of " + table);
    SLUICE_RETURN_IF_ERROR(db.exec("DROP TABLE IF EXISTS temp." + quoteIdent(s->shadow_)));
    SLUICE_RETURN_IF_ERROR(db.exec("CREATE TEMP TABLE " + quoteIdent(s->shadow_) + " " + createSql->substr(open)));
    SLUICE_RETURN_IF_ERROR(db.exec("CREATE INDEX temp." + quoteIdent(s->shadow_ + "_group") + " ON " +
                                   quoteIdent(s->shadow_) + " (group_key, window_start)"));
    SLUICE_RETURN_IF_ERROR(db.exec("DROP TABLE IF EXISTS temp." + quoteIdent(s->lateShadow_)));
    SLUICE_RETURN_IF_ERROR(db.exec("CREATE TEMP TABLE " + quoteIdent(s->lateShadow_) +
                                   " (aggregation TEXT NOT NULL, window_start INTEGER NOT NULL, events INTEGER NOT "
                                   "NULL, PRIMARY KEY (aggregation, window_start))"));
    auto info = db.prepare("SELECT name FROM pragma_table_info(?)");
    if (!info)
        return info.status();
    info->bindText(1, table);
    SLUICE_RETURN_IF_ERROR(info->forEachRow([&](const Stmt& row) {
        const std::string name(row.columnText(0));
        if (name != "final" && name != "complete")
            s->columns_ += (s->columns_.empty() ? "" : ", ") + quoteIdent(name);
    }));
    return s;
}

Status ShadowAggregation::apply(const WriteBatch& out)
{
    auto statement = [&](const std::string& sql) { return statements_.get(db_, sql); };
    // One savepoint (a transaction of its own, or part of the caller's) on the temp schema only:
    // outside the caller's transaction the database's write lock is not taken.
    SLUICE_RETURN_IF_ERROR(db_.exec("SAVEPOINT sluice_reprocess"));
    Status s = [&]() -> Status {
        for (const DeleteRows& d : out.deletes) {
            if (d.table != table_ || d.cells.empty())
                continue;
            std::string sql = "DELETE FROM temp." + quoteIdent(shadow_) + " WHERE ";
            for (size_t i = 0; i < d.keyColumns.size(); ++i)
                sql += (i ? " AND " : "") + quoteIdent(d.keyColumns[i]) + " = ?";
            auto stmt = statement(sql);
            if (!stmt)
                return stmt.status();
            SLUICE_RETURN_IF_ERROR(runPerRow(**stmt, d.cells, d.keyColumns.size(), "reprocessing " + table_));
        }
        for (const UpsertRows& u : out.upserts) {
            if (u.cells.empty() || (u.table != table_ && u.table != "late_events"))
                continue;
            UpsertRows renamed;
            renamed.table = u.table == table_ ? shadow_ : lateShadow_;
            renamed.columns = u.columns;
            auto stmt = statement(upsertSql(renamed));
            if (!stmt)
                return stmt.status();
            SLUICE_RETURN_IF_ERROR(runPerRow(**stmt, u.cells, u.columns.size(), "reprocessing " + table_));
        }
        for (const Finalize& f : out.finalizes) {
            if (f.table != table_)
                continue;
            auto stmt = statement("UPDATE temp." + quoteIdent(shadow_) +
                                  " SET final = 1 WHERE window_start BETWEEN ? AND ? AND final = 0");
            if (!stmt)
                return stmt.status();
            (*stmt)->bind(1, f.fromMs).bind(2, f.toMs);
            SLUICE_RETURN_IF_ERROR((*stmt)->run());
        }
        return Status::ok();
    }();
    if (!s) {
        (void)db_.exec("ROLLBACK TO sluice_reprocess");
        (void)db_.exec("RELEASE sluice_reprocess");
        return s;
    }
    return db_.exec("RELEASE sluice_reprocess");
}

Result<int64_t> ShadowAggregation::rows()
{
    auto n = db_.queryInt("SELECT count(*) FROM temp." + quoteIdent(shadow_));
    if (!n)
        return n.status();
    return n->value_or(0);
}

Result<ReplaceSummary> ShadowAggregation::replace(const ReplaceRange& r)
{
    ReplaceSummary summary;
    const std::string agg = quoteIdent(table_);
    const std::string shadow = "temp." + quoteIdent(shadow_);
    auto run = [&](const std::string& sql, int64_t* changed) -> Status {
        auto stmt = db_.prepare(sql);
        if (!stmt)
            return stmt.status();
        // Parameters by name: ?1 from, ?2 to, ?3 watermark, ?4 gap, ?5 size, ?6 aggregation.
        for (int i = 1; i <= stmt->parameterCount(); ++i) {
            switch (i) {
            case 1: stmt->bind(1, r.fromMs); break;
            case 2: stmt->bind(2, r.toMs); break;
            case 3: stmt->bind(3, r.watermarkMs); break;
            case 4: stmt->bind(4, r.gapMs); break;
            case 5: stmt->bind(5, r.sizeMs); break;
            case 6: stmt->bindText(6, r.aggregation); break;
            default: break;
            }
        }
        SLUICE_RETURN_IF_ERROR(stmt->run().withContext("replacing windows of " + table_));
        if (changed)
            *changed += db_.changes();
        return Status::ok();
    };
    const std::string complete = r.complete ? "1" : "0";
    if (r.window != WindowKind::kSession) {
        const std::string inRange = "window_start >= ?1 AND window_start < ?2 AND window_start + ?5 <= ?3";
        SLUICE_RETURN_IF_ERROR(run("DELETE FROM " + agg + " WHERE " + inRange, &summary.deletedRows));
        SLUICE_RETURN_IF_ERROR(run("INSERT INTO " + agg + " (" + columns_ + ", final, complete) SELECT " + columns_ +
                                       ", 1, " + complete + " FROM " + shadow + " WHERE " + inRange,
                                   &summary.writtenRows));
    } else {
        // The sessions written: final, starting in the range. A stored session belongs to the
        // recomputed one that holds its first event.
        const std::string written = "s.window_start >= ?1 AND s.window_start < ?2 AND s.window_end <= ?3";
        const std::string covers = "s.group_key = a.group_key AND a.window_start BETWEEN s.window_start AND "
                                   "s.window_end - ?4";
        SLUICE_RETURN_IF_ERROR(run("DELETE FROM " + agg + " WHERE (window_start, group_key) IN (SELECT a.window_start, "
                                       "a.group_key FROM " + agg + " AS a JOIN " + shadow + " AS s ON " + covers +
                                       " WHERE " + written + ")",
                                   &summary.deletedRows));
        SLUICE_RETURN_IF_ERROR(run("DELETE FROM " + agg + " AS a WHERE a.window_start >= ?1 AND a.window_start < ?2 "
                                       "AND a.final = 1 AND a.window_end <= ?3 AND NOT EXISTS (SELECT 1 FROM " + shadow +
                                       " AS s WHERE " + covers + ")",
                                   &summary.deletedRows));
        SLUICE_RETURN_IF_ERROR(run("INSERT INTO " + agg + " (" + columns_ + ", final, complete) SELECT " + columns_ +
                                       ", 1, " + complete + " FROM " + shadow + " AS s WHERE " + written,
                                   &summary.writtenRows));
    }
    if (!r.complete) {
        SLUICE_RETURN_IF_ERROR(run("DELETE FROM late_events WHERE aggregation = ?6 AND window_start >= ?1 AND "
                                   "window_start < ?2",
                                   nullptr));
        SLUICE_RETURN_IF_ERROR(run("INSERT INTO late_events (aggregation, window_start, events) SELECT ?6, "
                                   "window_start, events FROM temp." + quoteIdent(lateShadow_) +
                                       " WHERE window_start >= ?1 AND window_start < ?2",
                                   &summary.lateWindows));
    }
    return summary;
}

}  // namespace sluice::store
