#include "export/stream_subscriber.h"

#include <zmq.hpp>

namespace sluice::exports {

struct StreamSubscriber::Socket {
    zmq::context_t context{1};
    zmq::socket_t sub{context, zmq::socket_type::sub};
};

std::string connectableEndpoint(const std::string& bound)
{
    for (const char* any : {"tcp://0.0.0.0:", "tcp://*:"}) {
        const std::string prefix(any);
        if (bound.rfind(prefix, 0) == 0)
            return "tcp://127.0.0.1:" + bound.substr(prefix.size());
    }
    return bound;
}

Result<std::unique_ptr<StreamSubscriber>> StreamSubscriber::connect(const std::string& endpoint,
                                                                    const std::vector<std::string>& topics)
{
    std::unique_ptr<StreamSubscriber> s(new StreamSubscriber);
    try {
        s->socket_ = std::make_unique<Socket>();
        s->socket_->sub.set(zmq::sockopt::linger, 0);
        s->socket_->sub.set(zmq::sockopt::rcvhwm, 100'000);
        if (topics.empty())
            s->socket_->sub.set(zmq::sockopt::subscribe, "");
        for (const std::string& t : topics)
            s->socket_->sub.set(zmq::sockopt::subscribe, t);
        s->socket_->sub.connect(connectableEndpoint(endpoint));
    } catch (const zmq::error_t& e) {
        return Status::ioError("cannot connect to " + endpoint + ": " + e.what());
    }
    return s;
}

StreamSubscriber::~StreamSubscriber() = default;

Result<std::optional<StreamMessage>> StreamSubscriber::receive(int timeoutMs)
{
    try {
        zmq::pollitem_t item{static_cast<void*>(socket_->sub), 0, ZMQ_POLLIN, 0};
        if (zmq::poll(&item, 1, std::chrono::milliseconds(timeoutMs)) == 0)
            return std::optional<StreamMessage>();
        StreamMessage m;
        std::string* parts[] = {&m.topic, &m.header, &m.value};
        for (size_t i = 0; i < 3; ++i) {
            zmq::message_t part;
            if (!socket_->sub.recv(part))
                return Status::ioError("receive interrupted");
            *parts[i] = part.to_string();
            if (!part.more() && i < 2)
                return Status::corruption("a stream message with " + std::to_string(i + 1) + " part(s) instead of 3");
            if (part.more() && i == 2) {
                // Not ours: drain the rest of it.
                while (part.more() && socket_->sub.recv(part)) {
                }
                return Status::corruption("a stream message with more than 3 parts");
            }
        }
        return std::optional<StreamMessage>(std::move(m));
    } catch (const zmq::error_t& e) {
        return Status::ioError(std::string("receiving: ") + e.what());
    }
}

}  // namespace sluice::exports
