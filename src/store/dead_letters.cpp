#include "store/dead_letters.h"

namespace sluice::store {

Result<std::vector<EventError>> requestErrors(Db& db, std::string_view producer, uint64_t seq, size_t limit)
{
    // The request's mark names its batch, so the lookup follows rejects' batch index instead of
    // scanning the table (a refused resend of the same seq is in another batch, as a whole message).
    auto stmt = db.prepare(
        "SELECT event_index, reason, message FROM rejects "
        "WHERE batch_id = (SELECT batch_id FROM producer_marks WHERE producer = ?1 AND seq = ?2) "
        "AND producer = ?1 AND seq = ?2 AND event_index IS NOT NULL ORDER BY event_index LIMIT ?3");
    if (!stmt)
        return stmt.status();
    stmt->bindText(1, producer).bind(2, static_cast<int64_t>(seq)).bind(3, static_cast<int64_t>(limit));
    std::vector<EventError> errors;
    SLUICE_RETURN_IF_ERROR(stmt->forEachRow([&](const Stmt& row) {
        EventError& e = errors.emplace_back();
        e.index = static_cast<uint32_t>(row.columnInt(0));
        e.reason = reasonFromCode(row.columnText(1)).value_or(Reason::kBadRequest);
        e.message = std::string(row.columnText(2));
    }));
    return errors;
}

Status forEachDeadLetter(Db& db, const DeadLetterFilter& filter, const std::function<void(const StoredDeadLetter&)>& fn)
{
    std::string sql =
        "SELECT id, batch_id, received_at, producer, seq, event_index, reason, message, contract, event_id, "
        "input_bytes, input, input_key_link FROM rejects WHERE 1";
    if (!filter.reason.empty())
        sql += " AND reason = ?1";
    if (!filter.contract.empty())
        sql += " AND contract = ?2";
    sql += " ORDER BY id";
    if (filter.limit > 0)
        sql += " LIMIT " + std::to_string(filter.limit);
    auto stmt = db.prepare(sql);
    if (!stmt)
        return stmt.status();
    if (!filter.reason.empty())
        stmt->bindText(1, filter.reason);
    if (!filter.contract.empty())
        stmt->bindText(2, filter.contract);
    auto text = [](const Stmt& row, int column) {
        return row.columnIsNull(column) ? std::optional<std::string>() : std::string(row.columnText(column));
    };
    auto integer = [](const Stmt& row, int column) {
        return row.columnIsNull(column) ? std::optional<int64_t>() : row.columnInt(column);
    };
    return stmt->forEachRow([&](const Stmt& row) {
        StoredDeadLetter d;
        d.id = row.columnInt(0);
        d.batchId = row.columnInt(1);
        d.receivedAtMs = row.columnInt(2);
        d.producer = text(row, 3);
        d.seq = integer(row, 4);
        d.eventIndex = integer(row, 5);
        d.reason = std::string(row.columnText(6));
        d.message = std::string(row.columnText(7));
        d.contract = text(row, 8);
        d.eventId = text(row, 9);
        d.inputBytes = row.columnInt(10);
        if (!row.columnIsNull(11))
            d.input = std::string(row.columnBlob(11));
        d.inputKeyLink = text(row, 12);
        fn(d);
    });
}

}  // namespace sluice::store
