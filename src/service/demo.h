// `sluiced --demo`: once the daemon is ready, feeds it sample events of the reference workload
// (some of them invalid, on purpose) through its own acknowledged endpoint, like any producer
// would, then prints what landed in the database with plain SQL. The daemon keeps running.
#pragma once

#include <atomic>
#include <string>
#include <thread>

namespace sluice::service {

class Demo {
public:
    Demo(std::string database, std::string endpoint, bool acknowledged);
    ~Demo();
    // Stops feeding (if it still is) and waits for the demo thread.
    void stop();

private:
    void run();
    void printSummary();

    std::string database_;
    std::string endpoint_;
    bool acknowledged_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

}  // namespace sluice::service
