// Names the calling thread (shown by top -H, ps -L, gdb and perf), at most 15 characters.
#pragma once

#include <pthread.h>

namespace sluice {

inline void nameThisThread(const char* name)
{
    pthread_setname_np(pthread_self(), name);
}

}  // namespace sluice
