// Names the calling thread (shown by top -H, ps -L, gdb and perf), at most 15 characters.
#pragma once

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

namespace sluice {

inline void nameThisThread(const char* name)
{
    pthread_setname_np(pthread_self(), name);
}

// Gives the calling thread (and the threads it starts from now on, which inherit it) the nice
// value `nice` (0-19: higher is lower priority). Linux keeps a nice value per thread. Returns
// false when the system refused.
inline bool niceThisThread(int nice)
{
    return ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), nice) == 0;
}

}  // namespace sluice
