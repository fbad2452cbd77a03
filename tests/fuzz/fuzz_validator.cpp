// Fuzz target: one ZeroMQ message body as the daemon receives it, through the same steps the
// ingest thread and the processor apply to untrusted bytes: event counting, the acknowledged
// header parser, the reply formatter, line splitting and contract validation of every line
// (against the built-in reference contract and a second contract with arrays and patterns).
// Built as a libFuzzer binary with -Dfuzz=true (clang); its corpus is replayed in every test run.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>

#include "config/config.h"
#include "contract/validator.h"
#include "core/arena.h"
#include "core/batch.h"
#include "ingest/protocol.h"

namespace {

using namespace sluice;

std::shared_ptr<const contract::ContractSet> contracts()
{
    static std::shared_ptr<const contract::ContractSet> set = [] {
        auto cfg = config::loadForTools("", "/nonexistent-state-dir-for-fuzzing");
        PipelineSpec spec = *cfg->pipelineSpec;
        auto field = [](const char* name, FieldType type, bool array, bool required, int pii, const char* pattern,
                        uint32_t maxLength) {
            return FieldSpec{name, type, array, required, pii, pattern, maxLength};
        };
        ContractSpec tags{
            .ref = "fuzz/tags/1.0.0",
            .keyField = "id",
            .subjectField = "",
            .retentionDays = 0,
            .fields = {field("id", FieldType::kString, false, true, 0, "", 0),
                       field("labels", FieldType::kString, true, false, 1, "^[a-z]+$", 16),
                       field("scores", FieldType::kNumber, true, false, -1, "", 0),
                       field("ok", FieldType::kBoolean, false, false, -1, "", 0),
                       field("n", FieldType::kInteger, false, false, -1, "", 0)},
            .path = "fuzz",
            .definition = "{}",
            .keyFieldIndex = 0,
            .subjectFieldIndex = -1,
        };
        spec.contracts.push_back(tags);
        auto built = contract::ContractSet::build(std::make_shared<PipelineSpec>(std::move(spec)));
        return *built;
    }();
    return set;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    static contract::Validator validator(contracts(), contract::Limits{4096, 16, 300'000});
    const Payload payload(std::string_view(reinterpret_cast<const char*>(data), size));
    const std::string_view body = payload.view();

    (void)countEvents(body);
    if (auto header = ingest::parseHeader(body)) {
        RequestOutcome o;
        o.producer = header->producer;
        o.seq = header->seq;
        o.errors.push_back(EventError{0, Reason::kNotJson, std::string(body.substr(0, 64))});
        (void)ingest::formatReply(o);
    }

    Arena arena(1024);
    size_t pos = 0;
    while (pos < body.size()) {
        const void* nl = std::memchr(body.data() + pos, '\n', body.size() - pos);
        const size_t end = nl ? static_cast<size_t>(static_cast<const char*>(nl) - body.data()) : body.size();
        std::string_view line = body.substr(pos, end - pos);
        pos = end + 1;
        if (line.empty())
            continue;
        contract::ParsedEvent event;
        contract::Rejection why;
        if (validator.validate(line, 1'763'712'000'000, 1'763'712'000'000, arena, event, why)) {
            // Every value must be readable; touch them all.
            for (const Value& v : event.fields) {
                volatile size_t sink = v.text.size() + v.items.size();
                (void)sink;
            }
        } else if (why.message.empty()) {
            __builtin_trap();  // every rejection says why
        }
    }
    return 0;
}
