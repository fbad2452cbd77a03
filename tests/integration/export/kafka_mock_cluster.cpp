// A test fixture: librdkafka's mock cluster (exports::KafkaMockCluster) in a process of its own,
// so that sluiced and an independent consumer talk to it over TCP like to a real cluster.
//
//   kafka_mock_cluster [TOPIC:PARTITIONS ...]
//
// Prints the bootstrap address on the first line of standard output, then reads commands from
// standard input, one per line: "down" (every broker disconnects and refuses connections),
// "up" (accepts them again). End of input or SIGTERM stops it.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "export/kafka_mock_cluster.h"

int main(int argc, char** argv)
{
    std::vector<std::pair<std::string, int>> topics;
    for (int i = 1; i < argc; ++i) {
        const std::string spec = argv[i];
        const auto colon = spec.rfind(':');
        topics.emplace_back(spec.substr(0, colon), colon == std::string::npos ? 1 : std::atoi(spec.c_str() + colon + 1));
    }
    auto cluster = sluice::exports::KafkaMockCluster::start(topics);
    if (!cluster) {
        std::fprintf(stderr, "kafka_mock_cluster: %s\n", cluster.status().message().c_str());
        return 1;
    }
    std::printf("%s\n", (*cluster)->bootstrap().c_str());
    std::fflush(stdout);
    std::string line;
    while (std::getline(std::cin, line)) {
        if (line == "down")
            (*cluster)->setUp(false);
        else if (line == "up")
            (*cluster)->setUp(true);
        std::printf("ok %s\n", line.c_str());
        std::fflush(stdout);
    }
    return 0;
}
