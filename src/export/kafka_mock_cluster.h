// librdkafka's mock cluster (rdkafka_mock.h, shipped in librdkafka-dev): a Kafka cluster inside
// this process, reachable over TCP on loopback like a real one. For `sluicectl bench --exporters`
// and the Kafka tests' fixture process, never for the daemon. Built with the Kafka feature only.
//
// The cluster runs on librdkafka's own threads; the methods may be called from any one thread.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace sluice::exports {

class KafkaMockCluster {
public:
    // A cluster of `brokers` brokers holding `topics` (name, partitions).
    static Result<std::unique_ptr<KafkaMockCluster>> start(const std::vector<std::pair<std::string, int>>& topics,
                                                           int brokers = 1);
    ~KafkaMockCluster();
    KafkaMockCluster(const KafkaMockCluster&) = delete;
    KafkaMockCluster& operator=(const KafkaMockCluster&) = delete;

    // "127.0.0.1:PORT,...": what clients take as bootstrap.servers.
    const std::string& bootstrap() const { return bootstrap_; }
    // Every broker goes away (disconnects, refuses connections) or comes back.
    void setUp(bool up);
    // Creates a topic after the start, or (an existing name) fails: partition counts are fixed.
    Status createTopic(const std::string& name, int partitions);

private:
    struct Handles;
    KafkaMockCluster();
    std::unique_ptr<Handles> h_;
    std::string bootstrap_;
};

}  // namespace sluice::exports
