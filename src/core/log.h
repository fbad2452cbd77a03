// Logging for a daemon under journald: one line per message on stderr, prefixed with the
// sd-daemon(3) priority "<N>" so journald files it at the right level. Interactive tools
// (sluicectl) turn the prefix off.
//
// Never log event contents, PII or key bytes; log counts, names and reasons.
#pragma once

#include <sstream>
#include <string>
#include <string_view>

namespace sluice::log {

enum class Level { kError = 3, kWarning = 4, kNotice = 5, kInfo = 6, kDebug = 7 };

void setLevel(Level level);
Level level();
bool parseLevel(std::string_view text, Level& out);
// With prefixes on (the default) each line starts with "<N>"; off, with a readable word.
void setPrefixes(bool on);

void write(Level level, std::string_view message);

template <typename... Args>
void emit(Level lv, const Args&... args)
{
    if (static_cast<int>(lv) > static_cast<int>(level()))
        return;
    std::ostringstream out;
    (out << ... << args);
    write(lv, out.str());
}

template <typename... Args> void error(const Args&... args) { emit(Level::kError, args...); }
template <typename... Args> void warning(const Args&... args) { emit(Level::kWarning, args...); }
template <typename... Args> void notice(const Args&... args) { emit(Level::kNotice, args...); }
template <typename... Args> void info(const Args&... args) { emit(Level::kInfo, args...); }
template <typename... Args> void debug(const Args&... args) { emit(Level::kDebug, args...); }

}  // namespace sluice::log
