#include "core/batch.h"

namespace sluice {

uint32_t countEvents(std::string_view body)
{
    uint32_t n = 0;
    size_t pos = 0;
    while (pos < body.size()) {
        size_t end = body.find('\n', pos);
        if (end == std::string_view::npos)
            end = body.size();
        for (size_t i = pos; i < end; ++i) {
            char c = body[i];
            if (c != ' ' && c != '\t' && c != '\r') {
                ++n;
                break;
            }
        }
        pos = end + 1;
    }
    return n;
}

}  // namespace sluice
