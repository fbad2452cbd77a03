#include "service/demo.h"

#include <chrono>
#include <iostream>

#include "core/clock.h"
#include "core/log.h"
#include "ingest/producer.h"
#include "store/db.h"
#include "store/table_printer.h"
#include "workload/generator.h"

namespace sluice::service {
namespace {

constexpr uint64_t kEvents = 20'000;
constexpr uint32_t kEventsPerMessage = 100;

}  // namespace

Demo::Demo(std::string database, std::string endpoint, bool acknowledged)
    : database_(std::move(database)), endpoint_(std::move(endpoint)), acknowledged_(acknowledged)
{
    thread_ = std::thread([this] { run(); });
}

Demo::~Demo()
{
    stop();
}

void Demo::stop()
{
    stop_ = true;
    if (thread_.joinable())
        thread_.join();
}

void Demo::run()
{
    workload::Options wo;
    wo.seed = static_cast<uint64_t>(SystemClock::instance().wallMs());
    wo.invalidFraction = 0.01;
    // Ten minutes of event time ending now, slightly out of order: several one-minute windows,
    // the older ones final.
    wo.stepMs = 600'000 / static_cast<int64_t>(kEvents);
    wo.baseTimeMs = SystemClock::instance().wallMs() - 600'000;
    wo.jitterMs = 2'000;
    workload::Generator generator(wo);

    log::notice("demo: sending ", kEvents, " sample events (about 1% invalid on purpose) to ", endpoint_);
    std::unique_ptr<ingest::AckProducer> ack;
    std::unique_ptr<ingest::PushProducer> push;
    if (acknowledged_) {
        ingest::AckProducer::Options o;
        o.endpoint = endpoint_;
        o.producerId = "sluice-demo-" + std::to_string(wo.seed);
        o.window = 16;
        auto p = ingest::AckProducer::connect(o);
        if (!p) {
            log::error("demo: ", p.status().message());
            return;
        }
        ack = std::move(*p);
    } else {
        auto p = ingest::PushProducer::connect(endpoint_);
        if (!p) {
            log::error("demo: ", p.status().message());
            return;
        }
        push = std::move(*p);
    }
    std::string body;
    uint32_t inBody = 0;
    for (uint64_t i = 0; i < kEvents && !stop_; ++i) {
        generator.next(body);
        body += '\n';
        if (++inBody == kEventsPerMessage || i + 1 == kEvents) {
            Status s = ack ? ack->send(std::move(body), inBody).status() : push->send(body);
            if (!s) {
                log::error("demo: ", s.message());
                return;
            }
            body.clear();
            inBody = 0;
        }
    }
    if (stop_)
        return;
    if (ack) {
        (void)ack->flush();
        const auto& r = ack->report();
        log::notice("demo: ", r.acknowledged, " requests acknowledged: ", r.accepted, " events committed, ", r.rejected,
                    " rejected");
    } else {
        push->close(2000);
        std::this_thread::sleep_for(std::chrono::seconds(1));  // let the last batch commit
    }
    printSummary();
}

void Demo::printSummary()
{
    store::Db::Options ro;
    ro.readOnly = true;
    auto db = store::Db::open(database_, ro);
    if (!db) {
        log::error("demo: ", db.status().message());
        return;
    }
    std::ostringstream out;
    out << "\n=== sluice demo: what is in " << database_ << " ===\n";
    store::printDemoReport(*db, out);
    out << "\nsluiced keeps running (Ctrl-C to stop). Look around with plain SQL, for example:\n"
        << "  sqlite3 " << database_ << " \"select country, count(*) from acme_checkout_1_0_0 group by 1\"\n"
        << "  sqlite3 " << database_ << " \"select * from revenue_by_country limit 5\"\n"
        << "Send your own events: build/src/sluicectl send --endpoint " << endpoint_ << " events.jsonl\n\n";
    std::cout << out.str() << std::flush;
}

}  // namespace sluice::service
