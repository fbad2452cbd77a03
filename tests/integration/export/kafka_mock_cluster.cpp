// A test fixture: librdkafka's mock cluster (rdkafka_mock.h) in a process of its own, so that
// sluiced and an independent consumer talk to it over TCP like to a real cluster.
//
//   kafka_mock_cluster [TOPIC:PARTITIONS ...]
//
// Prints the bootstrap address on the first line of standard output, then reads commands from
// standard input, one per line: "down" (every broker disconnects and refuses connections),
// "up" (accepts them again). End of input or SIGTERM stops it.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

int main(int argc, char** argv)
{
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    // The mock cluster needs a handle for its bookkeeping only; it never connects anywhere.
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
        std::fprintf(stderr, "kafka_mock_cluster: %s\n", err);
        return 1;
    }
    rd_kafka_mock_cluster_t* cluster = rd_kafka_mock_cluster_new(rk, 1);
    if (!cluster) {
        std::fprintf(stderr, "kafka_mock_cluster: cannot create the mock cluster\n");
        return 1;
    }
    for (int i = 1; i < argc; ++i) {
        const std::string spec = argv[i];
        const auto colon = spec.rfind(':');
        const std::string topic = spec.substr(0, colon);
        const int partitions = colon == std::string::npos ? 1 : std::atoi(spec.c_str() + colon + 1);
        if (rd_kafka_mock_topic_create(cluster, topic.c_str(), partitions, 1) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            std::fprintf(stderr, "kafka_mock_cluster: cannot create topic %s\n", topic.c_str());
            return 1;
        }
    }
    std::printf("%s\n", rd_kafka_mock_cluster_bootstraps(cluster));
    std::fflush(stdout);
    std::string line;
    while (std::getline(std::cin, line)) {
        if (line == "down")
            rd_kafka_mock_broker_set_down(cluster, -1);
        else if (line == "up")
            rd_kafka_mock_broker_set_up(cluster, -1);
        std::printf("ok %s\n", line.c_str());
        std::fflush(stdout);
    }
    rd_kafka_mock_cluster_destroy(cluster);
    rd_kafka_destroy(rk);
    return 0;
}
