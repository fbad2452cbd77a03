#include "core/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

namespace sluice::log {
namespace {

std::atomic<Level> gLevel{Level::kInfo};
std::atomic<bool> gPrefixes{true};
std::mutex gWriteMutex;

const char* levelWord(Level level)
{
    switch (level) {
    case Level::kError: return "error";
    case Level::kWarning: return "warning";
    case Level::kNotice: return "notice";
    case Level::kInfo: return "info";
    case Level::kDebug: return "debug";
    }
    return "info";
}

}  // namespace

void setLevel(Level level) { gLevel = level; }
Level level() { return gLevel.load(std::memory_order_relaxed); }
void setPrefixes(bool on) { gPrefixes = on; }

bool parseLevel(std::string_view text, Level& out)
{
    for (Level l : {Level::kError, Level::kWarning, Level::kNotice, Level::kInfo, Level::kDebug}) {
        if (text == levelWord(l)) {
            out = l;
            return true;
        }
    }
    return false;
}

void write(Level level, std::string_view message)
{
    std::string line;
    line.reserve(message.size() + 16);
    if (gPrefixes) {
        line += '<';
        line += static_cast<char>('0' + static_cast<int>(level));
        line += '>';
    } else {
        line += levelWord(level);
        line += ": ";
    }
    // One event per line: embedded newlines would split a message into several journal entries.
    for (char c : message)
        line += (c == '\n' || c == '\r') ? ' ' : c;
    line += '\n';
    std::lock_guard lock(gWriteMutex);
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
}

}  // namespace sluice::log
