#include "export/kafka_mock_cluster.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

namespace sluice::exports {
namespace {

struct MockKafkaDestroy {
    void operator()(rd_kafka_t* k) const { rd_kafka_destroy(k); }
};
struct ClusterDestroy {
    void operator()(rd_kafka_mock_cluster_t* c) const { rd_kafka_mock_cluster_destroy(c); }
};

}  // namespace

struct KafkaMockCluster::Handles {
    // The cluster needs a handle for its bookkeeping only (it never connects anywhere); the
    // cluster goes first.
    std::unique_ptr<rd_kafka_t, MockKafkaDestroy> handle;
    std::unique_ptr<rd_kafka_mock_cluster_t, ClusterDestroy> cluster;
};

KafkaMockCluster::KafkaMockCluster() : h_(std::make_unique<Handles>()) {}

KafkaMockCluster::~KafkaMockCluster() = default;

Result<std::unique_ptr<KafkaMockCluster>> KafkaMockCluster::start(
    const std::vector<std::pair<std::string, int>>& topics, int brokers)
{
    std::unique_ptr<KafkaMockCluster> m(new KafkaMockCluster);
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    // It has no brokers to talk to; without this it warns that bootstrap.servers is not set.
    (void)rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
    m->h_->handle.reset(rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err));
    if (!m->h_->handle) {
        rd_kafka_conf_destroy(conf);  // rd_kafka_new takes it only when it succeeds
        return Status::internal(std::string("Kafka mock cluster: ") + err);
    }
    m->h_->cluster.reset(rd_kafka_mock_cluster_new(m->h_->handle.get(), brokers));
    if (!m->h_->cluster)
        return Status::internal("Kafka mock cluster: cannot create it");
    for (const auto& [name, partitions] : topics)
        SLUICE_RETURN_IF_ERROR(m->createTopic(name, partitions));
    m->bootstrap_ = rd_kafka_mock_cluster_bootstraps(m->h_->cluster.get());
    return m;
}

void KafkaMockCluster::setUp(bool up)
{
    if (up)
        rd_kafka_mock_broker_set_up(h_->cluster.get(), -1);
    else
        rd_kafka_mock_broker_set_down(h_->cluster.get(), -1);
}

Status KafkaMockCluster::createTopic(const std::string& name, int partitions)
{
    const rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(h_->cluster.get(), name.c_str(), partitions, 1);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        return Status::invalid("Kafka mock cluster: cannot create topic " + name + ": " + rd_kafka_err2str(e));
    return Status::ok();
}

}  // namespace sluice::exports
