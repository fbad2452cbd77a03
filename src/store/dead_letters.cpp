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
    for (;;) {
        auto row = stmt->step();
        if (!row)
            return row.status();
        if (!*row)
            return errors;
        EventError& e = errors.emplace_back();
        e.index = static_cast<uint32_t>(stmt->columnInt(0));
        e.reason = reasonFromCode(stmt->columnText(1)).value_or(Reason::kBadRequest);
        e.message = std::string(stmt->columnText(2));
    }
}

}  // namespace sluice::store
