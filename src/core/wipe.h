// Overwriting secrets held in std::string (key text read from a file, a CURVE key, a decrypted
// keyset) before the memory is released. explicit_bzero is not optimised away.
#pragma once

#include <string.h>

#include <string>

namespace sluice {

inline void wipe(std::string& s)
{
    if (!s.empty())
        explicit_bzero(s.data(), s.size());
    s.clear();
}

}  // namespace sluice
