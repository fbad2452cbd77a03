// The one place where OpenSSL's per-thread error queue becomes a Status.
#pragma once

#include <string_view>

#include "core/status.h"

namespace sluice::privacy {

// Drains this thread's OpenSSL error queue and returns an error Status whose message is
// `context: <OpenSSL's reasons, oldest first>` (or a note that OpenSSL gave no detail).
// Never returns ok. The queue holds library reasons only, never key or data bytes.
Status opensslError(std::string_view context, StatusCode code = StatusCode::kInternal);

// Empties this thread's error queue; used before a call whose failure is an expected outcome
// (a wrong tag) so that stale entries do not leak into a later message.
void clearOpensslErrors();

}  // namespace sluice::privacy
