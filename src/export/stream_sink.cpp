#include "export/stream_sink.h"

#include <charconv>
#include <map>
#include <set>
#include <string_view>
#include <zmq.hpp>

#include "core/value.h"

namespace sluice::exports {
namespace {

void appendDecimal(std::string& out, int64_t n)
{
    char digits[24];
    const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, n);
    out.append(digits, end);
}

}  // namespace

// The socket is made, used and closed on the exporter's thread only.
struct StreamSink::Socket {
    zmq::context_t context{1};
    zmq::socket_t pub{context, zmq::socket_type::xpub};
    // The topic prefixes subscribed to. Without ZMQ_XPUB_VERBOSE, XPUB passes on the first
    // subscription to a prefix and the last unsubscription (a subscriber leaving counts), so a
    // set is enough.
    std::set<std::string, std::less<>> prefixes;

    void takeSubscriptions()
    {
        zmq::message_t m;
        while (pub.recv(m, zmq::recv_flags::dontwait)) {
            if (m.size() == 0)
                continue;
            const std::string prefix(static_cast<const char*>(m.data()) + 1, m.size() - 1);
            if (*static_cast<const uint8_t*>(m.data()) == 1)
                prefixes.insert(prefix);
            else
                prefixes.erase(prefix);
        }
    }

    bool wanted(std::string_view topic) const
    {
        for (const std::string& p : prefixes)
            if (topic.starts_with(p))
                return true;
        return false;
    }
};

StreamSink::StreamSink(const ExporterSpec& spec) : spec_(spec) {}

StreamSink::~StreamSink()
{
    close();
}

Status StreamSink::open(SinkPosition& position)
{
    close();
    try {
        auto s = std::make_unique<Socket>();
        s->pub.set(zmq::sockopt::sndhwm, spec_.sendHwm);
        s->pub.set(zmq::sockopt::linger, 500);
        s->pub.bind(spec_.endpoint);
        socket_ = std::move(s);
    } catch (const zmq::error_t& e) {
        return Status::ioError("cannot bind the stream endpoint " + spec_.endpoint + ": " + e.what());
    }
    position_ = position;
    return Status::ok();
}

Status StreamSink::write(const BatchRecords& batch)
{
    std::string header;
    try {
        socket_->takeSubscriptions();
    } catch (const zmq::error_t& e) {
        return Status::ioError(std::string("reading subscriptions: ") + e.what());
    }
    for (const BatchRecords::Part& part : batch.parts) {
        const std::string& topic =
            part.source == BatchRecords::kKeysSource ? spec_.keysTopic : spec_.sources[part.source].topic;
        if (!socket_->wanted(topic))
            continue;  // no subscriber would get them: PUB would drop them after copying
        // A batch's records of a source may come in pieces: the exporter counted them first.
        size_t next = part.index;
        const size_t total = part.total;
        for (const Record& r : *part.records) {
            header.clear();
            header += "{\"batch\":";
            appendDecimal(header, static_cast<int64_t>(batch.batchId));
            header += ",\"index\":";
            appendDecimal(header, static_cast<int64_t>(next++));
            header += ",\"count\":";
            appendDecimal(header, static_cast<int64_t>(total));
            header += ",\"seq\":";
            appendDecimal(header, r.seq);
            header += ",\"key\":";
            appendJsonString(header, r.key);
            header += '}';
            try {
                // PUB drops at the high-water mark instead of blocking; dontwait makes sure of it.
                socket_->pub.send(zmq::buffer(topic), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
                socket_->pub.send(zmq::buffer(header), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
                socket_->pub.send(zmq::buffer(r.value), zmq::send_flags::dontwait);
            } catch (const zmq::error_t& e) {
                return Status::ioError(std::string("publishing: ") + e.what());
            }
        }
    }
    if (batch.complete)
        position_.batchId = batch.batchId;
    return Status::ok();
}

Status StreamSink::forget(const std::vector<store::ShredEntry>& entries)
{
    try {
        socket_->takeSubscriptions();
    } catch (const zmq::error_t& e) {
        return Status::ioError(std::string("reading subscriptions: ") + e.what());
    }
    for (const store::ShredEntry& e : entries) {
        if (!socket_->wanted(kForgetTopic)) {
            position_.shredId = e.id;
            continue;
        }
        const std::string header = "{\"shred_id\":" + std::to_string(e.id) + "}";
        std::string value = "{\"shred_id\":" + std::to_string(e.id) + ",\"at_ms\":" + std::to_string(e.atMs) +
                            ",\"cause\":";
        appendJsonString(value, e.cause);
        value += ",\"key_links\":[";
        for (size_t i = 0; i < e.keyLinks.size(); ++i) {
            if (i)
                value += ',';
            appendJsonString(value, e.keyLinks[i]);
        }
        value += "]}";
        try {
            socket_->pub.send(zmq::buffer(std::string_view(kForgetTopic)),
                              zmq::send_flags::sndmore | zmq::send_flags::dontwait);
            socket_->pub.send(zmq::buffer(header), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
            socket_->pub.send(zmq::buffer(value), zmq::send_flags::dontwait);
        } catch (const zmq::error_t& e) {
            return Status::ioError(std::string("publishing: ") + e.what());
        }
        position_.shredId = e.id;
    }
    return Status::ok();
}

Result<SinkPosition> StreamSink::sync(int64_t, bool)
{
    return position_;
}

void StreamSink::close()
{
    socket_.reset();
}

}  // namespace sluice::exports
