// A sluice database with the built-in reference pipeline's tables (written by a real
// BatchWriter), a master key and the pipeline's runtime: where tests of the transform and of the
// processor start. Tests derive their rigs from it; its members are theirs to use.
#pragma once

#include <catch2/catch.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "config/config.h"
#include "privacy/key_wrap.h"
#include "privacy/random.h"
#include "privacy/secret.h"
#include "store/batch_writer.h"
#include "support/temp_dir.h"
#include "transform/pipeline_runtime.h"

namespace sluice::testing {

// A new random master key.
inline std::shared_ptr<privacy::SecretBytes> randomMasterKey()
{
    auto bytes = privacy::randomBytes(32);
    REQUIRE(bytes.isOk());
    return std::make_shared<privacy::SecretBytes>(std::move(*bytes));
}

struct ReferenceStore {
    // The database is `database` (another store's, to reuse its keys) or a new one in `dir`;
    // the master key `master` or a random one. The tables are applied at `nowMs`.
    explicit ReferenceStore(int64_t nowMs, std::shared_ptr<privacy::SecretBytes> master = nullptr,
                            const std::string& database = "")
    {
        auto cfg = config::loadForTools("", dir.str());
        REQUIRE(cfg.isOk());
        spec = cfg->pipelineSpec;
        masterKey = master ? master : randomMasterKey();
        auto w = privacy::KeyWrapper::create(masterKey->clone());
        REQUIRE(w.isOk());
        wrapper.emplace(std::move(*w));
        path = database.empty() ? dir.file("sluice.db") : database;
        store::BatchWriter::Options wo;
        wo.path = path;
        wo.sketches = transform::sketchFunctions();
        auto bw = store::BatchWriter::open(wo);
        REQUIRE(bw.isOk());
        writer = std::move(*bw);
        auto rt = transform::PipelineRuntime::build(spec, *wrapper);
        REQUIRE(rt.isOk());
        runtime = *rt;
        REQUIRE(writer->applySchema(*spec, runtime->schema->tables, nowMs).isOk());
    }

    // The first column of the first row of `sql` on the writer's connection; -1 for NULL.
    int64_t count(const std::string& sql)
    {
        auto n = writer->db().queryInt(sql);
        REQUIRE(n.isOk());
        return n->value_or(-1);
    }

    TempDir dir;
    PipelinePtr spec;
    std::shared_ptr<privacy::SecretBytes> masterKey;
    std::optional<privacy::KeyWrapper> wrapper;
    std::string path;
    std::unique_ptr<store::BatchWriter> writer;
    std::shared_ptr<const transform::PipelineRuntime> runtime;
};

}  // namespace sluice::testing
