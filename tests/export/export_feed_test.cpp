#include <catch2/catch.hpp>

#include "export/export_feed.h"

using namespace sluice;
using namespace sluice::exports;

namespace {

SharedRecords records(size_t n, size_t valueBytes = 10)
{
    auto v = std::make_shared<RecordSet>();
    const std::string value(valueBytes, 'x');
    for (size_t i = 0; i < n; ++i)
        v->add(static_cast<int64_t>(i + 1), "", value);
    return v;
}

}  // namespace

TEST_CASE("export feed: each other reader of a source takes a batch once, then it goes", "[export]")
{
    ExportFeed feed;
    feed.setReaders({{"contract a", 3}, {"keys", 1}});
    const SharedRecords read = records(4);
    feed.offer(1, "contract a", read);
    CHECK(feed.entries() == 1);
    const SharedRecords second = feed.take(1, "contract a");
    CHECK(second == read);  // the same records, not a copy
    CHECK(feed.entries() == 1);
    CHECK(feed.take(1, "contract a") == read);
    CHECK(feed.entries() == 0);  // the third reader took it: gone
    CHECK(feed.bytes() == 0);
    CHECK(feed.take(1, "contract a") == nullptr);
    // A source with one reader keeps nothing.
    feed.offer(1, "keys", records(2));
    CHECK(feed.entries() == 0);
    // Another source, or another batch, is another entry.
    CHECK(feed.take(2, "contract a") == nullptr);
}

TEST_CASE("export feed: what a laggard reads again is not kept, and the budget drops the oldest", "[export]")
{
    ExportFeed feed(1000);
    feed.setReaders({{"s", 2}});
    feed.offer(5, "s", records(1));
    CHECK(feed.take(5, "s") != nullptr);
    // Batch 3 is older than what the feed already had: a re-read, not kept.
    feed.offer(3, "s", records(1));
    CHECK(feed.take(3, "s") == nullptr);
    // Over the budget: the oldest batches go first.
    feed.offer(6, "s", records(4, 100));
    feed.offer(7, "s", records(4, 100));
    feed.offer(8, "s", records(4, 100));
    CHECK(feed.bytes() <= 1000);
    CHECK(feed.take(6, "s") == nullptr);
    CHECK(feed.take(8, "s") != nullptr);
    // Other readers now: the entries start again.
    feed.offer(9, "s", records(1));
    feed.setReaders({{"s", 3}});
    CHECK(feed.entries() == 0);
}

TEST_CASE("export feed: a source's fingerprint changes with what shapes its JSON", "[export]")
{
    PipelineSpec p;
    OutputSpec o;
    o.name = "analytics";
    o.contract = "acme/checkout/1.0.0";
    o.maskedFields = {"email"};
    p.outputs.push_back(o);
    ExportSourceSpec s;
    s.kind = ExportSourceSpec::Kind::kOutput;
    s.name = "analytics";
    const std::string before = sourceFingerprint(p, s);
    p.outputs[0].maskedFields = {"email", "ip"};
    CHECK(sourceFingerprint(p, s) != before);
    ExportSourceSpec c;
    c.kind = ExportSourceSpec::Kind::kContract;
    c.name = "acme/checkout/1.0.0";
    CHECK(sourceFingerprint(p, c) != sourceFingerprint(p, s));
    CHECK(sourceFingerprint(p, c) != kKeysFingerprint);
}
