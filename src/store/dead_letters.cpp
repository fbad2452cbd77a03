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

}  // namespace sluice::store
