#include "store/batch_writer.h"

#include <sqlite3.h>

#include <chrono>
#include <type_traits>

#include "store/schema.h"
#include "store/sqlite_error.h"

namespace sluice::store {
namespace {

int64_t microsSince(std::chrono::steady_clock::time_point start)
{
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count();
}

std::optional<std::string_view> blobArg(sqlite3_value* v)
{
    if (sqlite3_value_type(v) == SQLITE_NULL)
        return std::nullopt;
    const void* p = sqlite3_value_blob(v);
    int n = sqlite3_value_bytes(v);
    return std::string_view(static_cast<const char*>(p ? p : ""), static_cast<size_t>(n));
}

const SketchFunctions& functionsOf(sqlite3_context* ctx)
{
    return *static_cast<const SketchFunctions*>(sqlite3_user_data(ctx));
}

// Sets the function's result, or raises its error (which fails the statement and the batch).
template <typename T>
void setResult(sqlite3_context* ctx, const Result<T>& result)
{
    if (!result)
        sqlite3_result_error(ctx, result.status().message().c_str(), -1);
    else if constexpr (std::is_same_v<T, std::string>)
        sqlite3_result_blob64(ctx, result->data(), result->size(), SQLITE_TRANSIENT);
    else if constexpr (std::is_same_v<T, double>)
        sqlite3_result_double(ctx, *result);
    else
        sqlite3_result_int64(ctx, *result);
}

void sketchMerge(sqlite3_context* ctx, int, sqlite3_value** argv)
{
    setResult(ctx, functionsOf(ctx).merge(blobArg(argv[0]), blobArg(argv[1])));
}

void sketchEstimate(sqlite3_context* ctx, int, sqlite3_value** argv)
{
    auto a = blobArg(argv[0]);
    if (!a)
        sqlite3_result_null(ctx);
    else
        setResult(ctx, functionsOf(ctx).estimate(a));
}

void subjectsMerge(sqlite3_context* ctx, int, sqlite3_value** argv)
{
    setResult(ctx, functionsOf(ctx).subjectsMerge(blobArg(argv[0]), blobArg(argv[1])));
}

void subjectsCount(sqlite3_context* ctx, int, sqlite3_value** argv)
{
    setResult(ctx, functionsOf(ctx).subjectsCount(blobArg(argv[0])));
}

}  // namespace

// Runs `stmt` once per row of `cells` (`width` parameters each).
Status runPerRow(Stmt& stmt, const std::vector<Cell>& cells, size_t width, const std::string& context)
{
    for (size_t r = 0; r < cells.size() / width; ++r) {
        for (size_t c = 0; c < width; ++c)
            stmt.bindCell(static_cast<int>(c + 1), cells[r * width + c]);
        SLUICE_RETURN_IF_ERROR(stmt.run().withContext(context));
    }
    return Status::ok();
}

std::string upsertSql(const UpsertRows& rows)
{
    std::string cols, params, keys, sets;
    for (size_t i = 0; i < rows.columns.size(); ++i) {
        const UpsertColumn& c = rows.columns[i];
        const std::string q = quoteIdent(c.name);
        const std::string ex = "excluded." + q;
        cols += (i ? ", " : "") + q;
        params += i ? ", ?" : "?";
        auto set = [&](const std::string& expr) { sets += (sets.empty() ? "" : ", ") + q + " = " + expr; };
        switch (c.op) {
        case MergeOp::kKey: keys += (keys.empty() ? "" : ", ") + q; break;
        case MergeOp::kAdd:
            set("CASE WHEN " + ex + " IS NULL THEN " + q + " WHEN " + q + " IS NULL THEN " + ex + " ELSE " + q + " + " +
                ex + " END");
            break;
        case MergeOp::kMin:
        case MergeOp::kMax: {
            const char* fn = c.op == MergeOp::kMin ? "min" : "max";
            set("CASE WHEN " + ex + " IS NULL THEN " + q + " WHEN " + q + " IS NULL THEN " + ex + " ELSE " + fn + "(" +
                q + ", " + ex + ") END");
            break;
        }
        case MergeOp::kSet: set(ex); break;
        case MergeOp::kHllMerge: set("sluice_hll_merge(" + q + ", " + ex + ")"); break;
        case MergeOp::kHllEstimate: {
            const std::string src = quoteIdent(rows.columns[static_cast<size_t>(c.source)].name);
            set("sluice_hll_estimate(sluice_hll_merge(" + src + ", excluded." + src + "))");
            break;
        }
        case MergeOp::kSubjectsMerge: set("sluice_subjects_merge(" + q + ", " + ex + ")"); break;
        case MergeOp::kSubjectsCount: {
            const std::string src = quoteIdent(rows.columns[static_cast<size_t>(c.source)].name);
            set("sluice_subjects_count(sluice_subjects_merge(" + src + ", excluded." + src + "))");
            break;
        }
        case MergeOp::kKeep: break;
        }
    }
    std::string sql = "INSERT INTO " + quoteIdent(rows.table) + "(" + cols + ") VALUES(" + params + ") ON CONFLICT(" +
                      keys + ") DO ";
    sql += sets.empty() ? "NOTHING" : "UPDATE SET " + sets;
    return sql;
}

Status registerSketchFunctions(Db& db, const SketchFunctions& functions)
{
    sqlite3* h = db.handle();
    // SQLite hands the pointer back to the functions; they only read through it.
    void* data = const_cast<SketchFunctions*>(&functions);
    if (functions.merge && functions.estimate) {
        int rc = sqlite3_create_function_v2(h, "sluice_hll_merge", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC, data,
                                            sketchMerge, nullptr, nullptr, nullptr);
        if (rc == SQLITE_OK)
            rc = sqlite3_create_function_v2(h, "sluice_hll_estimate", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, data,
                                            sketchEstimate, nullptr, nullptr, nullptr);
        if (rc != SQLITE_OK)
            return db.error(rc, "registering sketch functions");
    }
    if (functions.subjectsMerge && functions.subjectsCount) {
        int rc = sqlite3_create_function_v2(h, "sluice_subjects_merge", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC, data,
                                            subjectsMerge, nullptr, nullptr, nullptr);
        if (rc == SQLITE_OK)
            rc = sqlite3_create_function_v2(h, "sluice_subjects_count", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, data,
                                            subjectsCount, nullptr, nullptr, nullptr);
        if (rc != SQLITE_OK)
            return db.error(rc, "registering subject set functions");
    }
    return Status::ok();
}

Result<std::unique_ptr<BatchWriter>> BatchWriter::open(const Options& options)
{
    Db::Options dbOptions;
    dbOptions.cacheBytes = options.cacheBytes;
    dbOptions.vfs = options.vfs;
    dbOptions.syncEveryCommit = options.syncEveryCommit;
    dbOptions.syncNever = options.syncNever;
    dbOptions.rollbackJournal = options.rollbackJournal;
    auto db = Db::open(options.path, dbOptions);
    if (!db)
        return db.status();
    SLUICE_RETURN_IF_ERROR(migrate(*db));
    std::unique_ptr<BatchWriter> writer(new BatchWriter(std::move(*db)));
    writer->sketches_ = options.sketches;
    SLUICE_RETURN_IF_ERROR(registerSketchFunctions(writer->db_, writer->sketches_));

    struct Prepared {
        Stmt* stmt;
        const char* sql;
    };
    const Prepared statements[] = {
        {&writer->batchInsert_,
         "INSERT INTO batches(id, opened_at, closed_at, committed_at, close_reason, requests, received, committed, "
         "duplicates, rejected, bytes, keys_created, late, parse_us, transform_us, aggregate_us, write_us, row_ranges) "
         "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"},
        {&writer->keyInsert_,
         "INSERT INTO keys(key_link, key_id, kind, contract, lookup, wrapped, created_at, expires_at, batch_id) "
         "VALUES(?,?,?,?,?,?,?,?,?)"},
        {&writer->subjectInsert_, "INSERT INTO key_subjects(subject, key_link, batch_id) VALUES(?,?,?)"},
        {&writer->rejectInsert_,
         "INSERT INTO rejects(batch_id, received_at, producer, seq, event_index, reason, message, contract, event_id, "
         "input_bytes, input, input_key_link) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)"},
        {&writer->markInsert_,
         "INSERT INTO producer_marks(producer, seq, batch_id, accepted, rejected) VALUES(?,?,?,?,?)"},
        {&writer->markLookup_, "SELECT accepted, rejected FROM producer_marks WHERE producer = ? AND seq = ?"},
        {&writer->producerUpsert_,
         "INSERT INTO producers(producer, high_seq, last_batch) VALUES(?,?,?) ON CONFLICT(producer) DO UPDATE SET "
         "high_seq = max(high_seq, excluded.high_seq), last_batch = excluded.last_batch"},
    };
    for (const Prepared& p : statements) {
        auto stmt = writer->db_.prepare(p.sql, true);
        if (!stmt)
            return stmt.status();
        *p.stmt = std::move(*stmt);
    }
    if (options.backgroundCheckpoints) {
        // WAL up to 64 MiB before the writer helps; the file is truncated back to that after a restart.
        SLUICE_RETURN_IF_ERROR(writer->db_.exec("PRAGMA journal_size_limit = 67108864"));
        auto checkpointer = Checkpointer::start(options.path, writer->db_, 2048, 16384);
        if (!checkpointer)
            return checkpointer.status();
        writer->checkpointer_ = std::move(*checkpointer);
    }
    auto lastShred = writer->db_.queryInt("SELECT max(id) FROM shred_log");
    if (!lastShred)
        return lastShred.status();
    writer->lastShredId_ = lastShred->value_or(0);
    return writer;
}

Status BatchWriter::applySchema(const PipelineSpec& pipeline, const std::vector<TableDef>& tables, int64_t nowMs)
{
    auto txn = Txn::begin(db_);
    if (!txn)
        return txn.status();
    for (const TableDef& t : tables) {
        SLUICE_RETURN_IF_ERROR(applyTable(db_, t));
        insertColumns_[t.name] = t.insertColumns;
        insertCells_[t.name] = t.insertCells;
        inserts_.erase(t.name);
    }
    SLUICE_RETURN_IF_ERROR(registerPipeline(db_, pipeline, nowMs));
    return txn->commit();
}

Result<uint64_t> BatchWriter::lastBatchId()
{
    auto id = db_.queryInt("SELECT max(id) FROM batches");
    if (!id)
        return id.status();
    return static_cast<uint64_t>(id->value_or(0));
}

Result<Stmt*> BatchWriter::insertFor(const std::string& table)
{
    auto it = inserts_.find(table);
    if (it != inserts_.end())
        return &it->second;
    auto cols = insertColumns_.find(table);
    if (cols == insertColumns_.end())
        return Status::internal("no schema for table " + table);
    std::string sql = "INSERT INTO " + quoteIdent(table) + "(";
    std::string params;
    for (size_t i = 0; i < cols->second.size(); ++i) {
        sql += (i ? ", " : "") + quoteIdent(cols->second[i]);
        params += i ? ", ?" : "?";
    }
    sql += ") VALUES(" + params + ")";
    auto stmt = db_.prepare(sql, true);
    if (!stmt)
        return stmt.status();
    return &inserts_.emplace(table, std::move(*stmt)).first->second;
}

Result<Stmt*> BatchWriter::upsertFor(const UpsertRows& rows)
{
    std::string key = rows.table;
    for (const UpsertColumn& c : rows.columns)
        key += "|" + c.name + ":" + std::to_string(static_cast<int>(c.op));
    auto it = upserts_.find(key);
    if (it != upserts_.end())
        return &it->second;
    auto stmt = db_.prepare(upsertSql(rows), true);
    if (!stmt)
        return stmt.status();
    return &upserts_.emplace(key, std::move(*stmt)).first->second;
}

Result<Stmt*> BatchWriter::deleteFor(const DeleteRows& rows)
{
    std::string key = rows.table;
    for (const std::string& c : rows.keyColumns)
        key += "|" + c;
    auto it = deletes_.find(key);
    if (it != deletes_.end())
        return &it->second;
    std::string sql = "DELETE FROM " + quoteIdent(rows.table) + " WHERE ";
    for (size_t i = 0; i < rows.keyColumns.size(); ++i)
        sql += (i ? " AND " : "") + quoteIdent(rows.keyColumns[i]) + " = ?";
    auto stmt = db_.prepare(sql, true);
    if (!stmt)
        return stmt.status();
    return &deletes_.emplace(key, std::move(*stmt)).first->second;
}

Status BatchWriter::checkShredded(uint64_t batchId, std::unordered_set<std::string>& dropped,
                                  std::vector<std::string>& shredded)
{
    // Batches still in flight when the processor hears of a shred may carry derived rows made
    // with the shredded key; keep dropping those rows for this many batches after the notice.
    constexpr uint64_t kInFlightBatches = 16;
    for (auto it = recentShreds_.begin(); it != recentShreds_.end();) {
        if (it->second + kInFlightBatches < batchId)
            it = recentShreds_.erase(it);
        else
            ++it;
    }
    // data_version changes only when another connection commits: the common case costs one pragma.
    auto version = db_.queryInt("PRAGMA data_version");
    if (!version)
        return version.status();
    const int64_t v = version->value_or(0);
    if (v != dataVersion_) {
        dataVersion_ = v;
        auto stmt = db_.prepare("SELECT id, key_links FROM shred_log WHERE id > ? ORDER BY id");
        if (!stmt)
            return stmt.status();
        stmt->bind(1, lastShredId_);
        SLUICE_RETURN_IF_ERROR(stmt->forEachRow([&](const Stmt& row) {
            lastShredId_ = row.columnInt(0);
            std::string_view links = row.columnText(1);
            size_t pos = 0;
            while (pos < links.size()) {
                size_t end = links.find('\n', pos);
                if (end == std::string_view::npos)
                    end = links.size();
                if (end > pos) {
                    std::string link(links.substr(pos, end - pos));
                    if (recentShreds_.emplace(link, batchId).second)
                        shredded.push_back(std::move(link));
                }
                pos = end + 1;
            }
        }));
    }
    for (const auto& [link, noticed] : recentShreds_)
        dropped.insert(link);
    return Status::ok();
}

Status BatchWriter::writeInserts(WriteBatch& batch, const std::unordered_set<std::string>& dropped)
{
    // Rowids of tables that others reference (events, for their derived rows).
    std::vector<std::vector<int64_t>> rowids(batch.inserts.size());
    std::vector<bool> isParent(batch.inserts.size(), false);
    for (const TableRows& t : batch.inserts)
        if (t.parent >= 0)
            isParent[static_cast<size_t>(t.parent)] = true;

    for (size_t ti = 0; ti < batch.inserts.size(); ++ti) {
        TableRows& t = batch.inserts[ti];
        if (t.cells.empty())
            continue;
        auto stmt = insertFor(t.table);
        if (!stmt)
            return stmt.status();
        Stmt& s = **stmt;
        // The cells the table stores, in the order of its insert columns.
        const std::vector<size_t>& picked = insertCells_[t.table];
        const size_t columns = picked.empty() ? t.width : picked.size();
        for (size_t c : picked)
            if (c >= t.width)
                return Status::internal("rows for " + t.table + " have " + std::to_string(t.width) +
                                        " cells; its layout takes cell " + std::to_string(c));
        const size_t rows = t.rows();
        if (isParent[ti])
            rowids[ti].reserve(rows);
        const bool filter = t.dropIfKeyShredded && !dropped.empty() && t.keyLinkColumn >= 0;
        int64_t first = 0;
        int64_t last = 0;
        for (size_t r = 0; r < rows; ++r) {
            Cell* row = t.cells.data() + r * t.width;
            if (filter) {
                const Cell& link = row[t.keyLinkColumn];
                if (dropped.count(std::string(link.text())))
                    continue;
            }
            for (size_t i = 0; i < columns; ++i) {
                const size_t c = picked.empty() ? i : picked[i];
                if (static_cast<int>(c) == t.parentColumn) {
                    const auto& ids = rowids[static_cast<size_t>(t.parent)];
                    s.bind(static_cast<int>(i + 1), ids[static_cast<size_t>(row[c].i())]);
                } else {
                    s.bindCell(static_cast<int>(i + 1), row[c]);
                }
            }
            SLUICE_RETURN_IF_ERROR(s.run().withContext("inserting into " + t.table));
            last = db_.lastInsertRowid();
            if (first == 0)
                first = last;
            if (isParent[ti])
                rowids[ti].push_back(last);
        }
        // One transaction, one writer: a table's new rowids are consecutive (max(rowid) + 1...).
        if (first != 0)
            addRowRange(t.table, first, last);
    }
    return Status::ok();
}

Status BatchWriter::writeKeysAndRejects(WriteBatch& batch)
{
    const BatchRecord& rec = batch.record;
    const int64_t batchId = static_cast<int64_t>(rec.id);

    int64_t firstKey = 0;
    for (KeyRecord& k : batch.keys) {
        keyInsert_.bindText(1, k.keyLink)
            .bind(2, k.keyId)
            .bindText(3, k.kind)
            .bindText(4, k.contract)
            .bindBlob(5, std::string_view(reinterpret_cast<const char*>(k.lookup.data()), k.lookup.size()))
            .bindBlob(6, k.wrapped)
            .bind(7, k.createdAtMs)
            .bind(8, k.expiresAtMs)
            .bind(9, batchId);
        SLUICE_RETURN_IF_ERROR(keyInsert_.run().withContext("storing key " + k.keyLink));
        k.rowid = db_.lastInsertRowid();
        if (firstKey == 0)
            firstKey = k.rowid;
    }
    if (firstKey != 0)
        addRowRange("keys", firstKey, batch.keys.back().rowid);
    for (const KeySubject& s : batch.subjects) {
        subjectInsert_.bindBlob(1, std::string_view(reinterpret_cast<const char*>(s.subject.data()), s.subject.size()))
            .bindText(2, s.keyLink)
            .bind(3, batchId);
        SLUICE_RETURN_IF_ERROR(subjectInsert_.run());
    }
    for (const DeadLetter& d : batch.deadLetters) {
        rejectInsert_.bind(1, batchId).bind(2, d.receivedAtMs);
        if (d.producer.empty())
            rejectInsert_.bindNull(3);
        else
            rejectInsert_.bindText(3, d.producer);
        if (d.seq < 0)
            rejectInsert_.bindNull(4);
        else
            rejectInsert_.bind(4, d.seq);
        if (d.eventIndex < 0)
            rejectInsert_.bindNull(5);
        else
            rejectInsert_.bind(5, d.eventIndex);
        rejectInsert_.bindText(6, reasonCode(d.reason)).bindText(7, d.message);
        if (d.contract.empty())
            rejectInsert_.bindNull(8);
        else
            rejectInsert_.bindText(8, d.contract);
        if (d.eventId.empty())
            rejectInsert_.bindNull(9);
        else
            rejectInsert_.bindText(9, d.eventId);
        rejectInsert_.bind(10, d.inputBytes);
        if (d.input.empty())
            rejectInsert_.bindNull(11).bindNull(12);
        else
            rejectInsert_.bindBlob(11, d.input).bindText(12, d.inputKeyLink);
        SLUICE_RETURN_IF_ERROR(rejectInsert_.run().withContext("storing a dead letter"));
    }
    return Status::ok();
}

Status BatchWriter::writeBatchEnd(WriteBatch& batch)
{
    const int64_t batchId = static_cast<int64_t>(batch.record.id);
    // One row per producer: its highest sequence number and last batch, for pruning marks.
    std::unordered_map<std::string_view, uint64_t> highest;
    for (const ProducerMark& m : batch.marks) {
        uint64_t& h = highest[m.producer];
        h = std::max(h, m.seq);
    }
    for (const auto& [producer, seq] : highest) {
        producerUpsert_.bindText(1, producer).bind(2, static_cast<int64_t>(seq)).bind(3, batchId);
        SLUICE_RETURN_IF_ERROR(producerUpsert_.run());
    }
    for (const ProducerMark& m : batch.marks) {
        markInsert_.bindText(1, m.producer)
            .bind(2, static_cast<int64_t>(m.seq))
            .bind(3, batchId)
            .bind(4, m.accepted)
            .bind(5, m.rejected);
        SLUICE_RETURN_IF_ERROR(markInsert_.run().withContext("recording producer " + m.producer + " seq " +
                                                             std::to_string(m.seq)));
    }
    return Status::ok();
}

Status BatchWriter::writeAggregates(WriteBatch& part)
{
    // In this part, in this order: a session's stored row is deleted before its rewritten row
    // (which may reuse the key) goes in, and a Finalize also marks rows this part created.
    for (const DeleteRows& d : part.deletes) {
        if (d.cells.empty())
            continue;
        auto stmt = deleteFor(d);
        if (!stmt)
            return stmt.status();
        SLUICE_RETURN_IF_ERROR(runPerRow(**stmt, d.cells, d.keyColumns.size(), "deleting from " + d.table));
    }
    for (const UpsertRows& u : part.upserts) {
        if (u.cells.empty())
            continue;
        auto stmt = upsertFor(u);
        if (!stmt)
            return stmt.status();
        SLUICE_RETURN_IF_ERROR(runPerRow(**stmt, u.cells, u.columns.size(), "merging into " + u.table));
    }
    for (const Finalize& f : part.finalizes) {
        auto it = finalizes_.find(f.table);
        if (it == finalizes_.end()) {
            auto update = db_.prepare("UPDATE " + quoteIdent(f.table) +
                                          " SET final = 1 WHERE window_start BETWEEN ? AND ? AND final = 0",
                                      true);
            if (!update)
                return update.status();
            auto span = db_.prepare("SELECT min(window_start), max(window_start) FROM " + quoteIdent(f.table) +
                                        " WHERE window_start BETWEEN ? AND ? AND final = 0",
                                    true);
            if (!span)
                return span.status();
            it = finalizes_.emplace(f.table, FinalizeStmts{std::move(*update), std::move(*span)}).first;
        }
        // The windows this batch makes final, for exporters (the range asked for may repeat
        // windows an earlier batch already finalized, e.g. after a restart).
        Stmt& span = it->second.span;
        span.bind(1, f.fromMs).bind(2, f.toMs);
        auto row = span.step();
        if (!row)
            return row.status().withContext("finalizing windows of " + f.table);
        if (*row && !span.columnIsNull(0))
            addRowRange(f.table, span.columnInt(0), span.columnInt(1));
        span.reset();
        it->second.update.bind(1, f.fromMs).bind(2, f.toMs);
        SLUICE_RETURN_IF_ERROR(it->second.update.run().withContext("finalizing windows of " + f.table));
    }
    return Status::ok();
}

void BatchWriter::addRowRange(std::string_view table, int64_t first, int64_t last)
{
    // A batch written in parts adds a range per part; within one transaction a table's rowids
    // only grow, so the ranges of one table join into one.
    for (auto& [name, lo, hi] : rowRanges_) {
        if (name == table) {
            lo = std::min(lo, first);
            hi = std::max(hi, last);
            return;
        }
    }
    rowRanges_.emplace_back(std::string(table), first, last);
}

std::string BatchWriter::rowRangesText() const
{
    std::string text;
    for (const auto& [table, first, last] : rowRanges_)
        text.append(table).append(" ").append(std::to_string(first)).append(" ").append(std::to_string(last)) += '\n';
    return text;
}

Status BatchWriter::fillDuplicateOutcomes(WriteBatch& batch)
{
    // A duplicate is answered with what its original's reply said. The original committed in
    // this batch or an earlier one, so its mark is visible here.
    for (RequestOutcome& o : batch.outcomes) {
        if (o.state != RequestState::kDuplicate)
            continue;
        markLookup_.bindText(1, o.producer).bind(2, static_cast<int64_t>(o.seq));
        auto row = markLookup_.step();
        if (!row)
            return row.status();
        if (*row) {
            o.accepted = static_cast<uint32_t>(markLookup_.columnInt(0));
            o.rejected = static_cast<uint32_t>(markLookup_.columnInt(1));
        }
        markLookup_.reset();
    }
    return Status::ok();
}

Status BatchWriter::beginBatch(const WriteBatch& first, std::vector<std::string>& shredded)
{
    if (txn_)
        return Status::internal("batch " + std::to_string(first.record.id) + " begins while another is open");
    if (first.schema) {
        const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
        SLUICE_RETURN_IF_ERROR(applySchema(*first.schema->pipeline, first.schema->tables, now));
    }
    if (checkpointer_)
        SLUICE_RETURN_IF_ERROR(checkpointer_->catchUp());
    const auto start = std::chrono::steady_clock::now();
    rowRanges_.clear();
    auto txn = Txn::begin(db_);
    if (!txn)
        return txn.status();
    txn_.emplace(std::move(*txn));
    dropped_.clear();
    Status s = checkShredded(first.record.id, dropped_, shredded);
    batchWriteUs_ = microsSince(start);
    if (!s)
        abortBatch();
    return s;
}

Status BatchWriter::writePart(WriteBatch& part)
{
    if (!txn_)
        return Status::internal("a part of batch " + std::to_string(part.record.id) + " outside its transaction");
    const auto start = std::chrono::steady_clock::now();
    Status s = writeInserts(part, dropped_);
    if (s)
        s = writeKeysAndRejects(part);
    if (s)
        s = writeAggregates(part);
    batchWriteUs_ += microsSince(start);
    if (!s)
        abortBatch();
    return s;
}

Status BatchWriter::commitBatch(WriteBatch& last, CommitTiming& timing)
{
    SLUICE_RETURN_IF_ERROR(writePart(last));
    const auto start = std::chrono::steady_clock::now();
    Status s = [&]() -> Status {
        SLUICE_RETURN_IF_ERROR(writeBatchEnd(last));
        SLUICE_RETURN_IF_ERROR(fillDuplicateOutcomes(last));
        if (cursors_ && cursors_->pending()) {
            cursorsTaken_ = true;
            SLUICE_RETURN_IF_ERROR(cursors_->writeTo(db_));
        }
        const BatchRecord& rec = last.record;
        const StageTimes& times = last.times;
        const std::string ranges = rowRangesText();  // bound without a copy: lives until run()
        batchInsert_.bind(1, static_cast<int64_t>(rec.id))
            .bind(2, rec.openedAtMs)
            .bind(3, rec.closedAtMs)
            .bind(4, std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count())
            .bindText(5, closeReasonName(rec.closeReason))
            .bind(6, rec.requests)
            .bind(7, static_cast<int64_t>(rec.received))
            .bind(8, static_cast<int64_t>(rec.committed))
            .bind(9, static_cast<int64_t>(rec.duplicates))
            .bind(10, static_cast<int64_t>(rec.rejected))
            .bind(11, static_cast<int64_t>(rec.bytes))
            .bind(12, rec.keysCreated)
            .bind(13, static_cast<int64_t>(last.lateEvents))
            .bind(14, times.parseUs)
            .bind(15, times.transformUs)
            .bind(16, times.aggregateUs)
            .bind(17, batchWriteUs_ + microsSince(start))
            .bindText(18, ranges);
        return batchInsert_.run().withContext("recording batch " + std::to_string(rec.id));
    }();
    if (!s) {
        abortBatch();
        return s;
    }
    timing.writeUs = batchWriteUs_ + microsSince(start);
    const auto commitStart = std::chrono::steady_clock::now();
    s = txn_->commit().withContext("committing batch " + std::to_string(last.record.id));
    txn_.reset();  // after a failed COMMIT the destructor rolls back
    settleCursors(s.isOk());
    if (!s)
        return s;
    timing.commitUs = microsSince(commitStart);
    return Status::ok();
}

void BatchWriter::abortBatch()
{
    txn_.reset();  // rolls back
    dropped_.clear();
    settleCursors(false);
}

void BatchWriter::settleCursors(bool committed)
{
    if (cursorsTaken_)
        cursors_->settle(committed);
    cursorsTaken_ = false;
}

Status BatchWriter::commitState(WriteBatch& state)
{
    if (txn_)
        return Status::internal("aggregation state is written while batch " + std::to_string(state.record.id) +
                                " is open");
    if (!state.finalizes.empty() || !state.inserts.empty())
        return Status::internal("aggregation state carries finalizes or rows");
    auto txn = Txn::begin(db_);
    if (!txn)
        return txn.status();
    SLUICE_RETURN_IF_ERROR(writeAggregates(state).withContext("writing the session snapshot after batch " +
                                                              std::to_string(state.record.id)));
    return txn->commit();
}

Status BatchWriter::commitCursors()
{
    if (!cursors_ || !cursors_->pending() || txn_)
        return Status::ok();
    auto txn = Txn::begin(db_);
    if (!txn)
        return txn.status();
    cursorsTaken_ = true;
    Status s = cursors_->writeTo(db_).withContext("writing exporter cursors");
    if (s)
        s = txn->commit().withContext("committing exporter cursors");
    settleCursors(s.isOk());  // on failure the positions are posted again
    return s;
}

Status BatchWriter::closeCursors(bool write)
{
    if (!cursors_)
        return Status::ok();
    return cursors_->close(write && !txn_ ? &db_ : nullptr).withContext("writing exporter cursors");
}

Status BatchWriter::commit(WriteBatch& batch, std::vector<std::string>& shredded, CommitTiming& timing)
{
    SLUICE_RETURN_IF_ERROR(beginBatch(batch, shredded));
    return commitBatch(batch, timing);
}

}  // namespace sluice::store
