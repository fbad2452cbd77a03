// The other end of the stream exporter (stream_sink.h): a ZeroMQ SUB socket for `sluicectl tap`
// and tools, which reads the three-part messages and notices gaps in the batch/index sequence.
// One thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace sluice::exports {

struct StreamMessage {
    std::string topic;
    std::string header;  // {"batch": B, "index": I, "count": N, "seq": S, "key": K}
    std::string value;   // the record's JSON
};

class StreamSubscriber {
public:
    // Connects to `endpoint` (a bound tcp://0.0.0.0 or tcp://* becomes 127.0.0.1) and subscribes
    // to each topic (all when `topics` is empty).
    static Result<std::unique_ptr<StreamSubscriber>> connect(const std::string& endpoint,
                                                             const std::vector<std::string>& topics);
    ~StreamSubscriber();

    // The next message, or nullopt after `timeoutMs` without one.
    Result<std::optional<StreamMessage>> receive(int timeoutMs);

private:
    struct Socket;
    StreamSubscriber() = default;
    std::unique_ptr<Socket> socket_;
};

// "tcp://0.0.0.0:7410" -> "tcp://127.0.0.1:7410"; other endpoints unchanged.
std::string connectableEndpoint(const std::string& bound);

}  // namespace sluice::exports
