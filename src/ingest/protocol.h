// The acknowledged-mode wire format (docs/protocol.md): the request header a producer sends
// and the reply it gets. Pure functions, no sockets.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/commit.h"
#include "core/status.h"

namespace sluice::ingest {

inline constexpr size_t kMaxProducerBytes = 256;
inline constexpr size_t kMaxErrorsInReply = 1000;

struct RequestHeader {
    std::string producer;
    uint64_t seq = 0;
};

// Parses {"producer": "...", "seq": N}. Unknown keys are ignored, for forward compatibility.
Result<RequestHeader> parseHeader(std::string_view frame);

// The reply frame for an outcome, as JSON text.
std::string formatReply(const RequestOutcome& outcome);

}  // namespace sluice::ingest
