#include "core/batch.h"

namespace sluice {

uint32_t countEvents(std::string_view body)
{
    uint32_t n = 0;
    forEachLine(body, [&n](std::string_view) { ++n; });
    return n;
}

}  // namespace sluice
