// Times as people read them: ISO-8601 UTC with milliseconds, and durations like "200ms", "5m".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice {

// 1763712000123 -> "2025-11-21T08:00:00.123Z"
std::string isoTimeMs(int64_t epochMs);

// Epoch milliseconds from "1763712000123" (epoch ms), or ISO-8601: "2025-11-21",
// "2025-11-21T08:00", "2025-11-21T08:00:00Z", "2025-11-21T08:00:00.123+01:00". No zone means
// UTC. nullopt when it is neither.
std::optional<int64_t> parseTimeMs(std::string_view text);

// "250ms", "30s", "5m", "2h", "1d" (and a bare number of milliseconds) -> milliseconds.
std::optional<int64_t> parseDurationMs(std::string_view text);

// "64", "64k", "8M", "1G", "8MiB" -> bytes.
std::optional<uint64_t> parseSize(std::string_view text);

}  // namespace sluice
