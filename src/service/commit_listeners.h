// The daemon's own CommitListeners: acknowledgements and key notices.
#pragma once

#include "export/export_set.h"
#include "ingest/ack_channel.h"
#include "core/clock.h"
#include "service/commit_listener.h"
#include "service/processor.h"

namespace sluice::service {

// Hands each committed batch's outcomes to the ingest thread, which sends the replies; closes
// the channel when the writer stops (the ingest thread then sends the last replies and exits).
class AckListener final : public CommitListener {
public:
    explicit AckListener(ingest::AckChannel& acks) : acks_(acks) {}
    void committed(const CommitInfo& info) override;
    void writerStopped() override { acks_.close(); }

private:
    ingest::AckChannel& acks_;
};

// Tells the processor which new keys are now stored (it may evict them from memory) and which
// keys were shredded elsewhere or by retention (no new event may use them).
class KeyNoticeListener final : public CommitListener {
public:
    explicit KeyNoticeListener(Processor& processor) : processor_(processor) {}
    void committed(const CommitInfo& info) override
    {
        processor_.committed(info.batch.keys, info.shreddedElsewhere);
    }
    void shreddedByRetention(const std::vector<std::string>& keyLinks) override { processor_.committed({}, keyLinks); }

private:
    Processor& processor_;
};

// Wakes the exporters after each commit (they read what was committed on their own threads) and
// when keys were shredded.
class ExportListener final : public CommitListener {
public:
    ExportListener(exports::ExportSet& exporters, const Clock& clock) : exporters_(exporters), clock_(clock) {}
    void committed(const CommitInfo& info) override
    {
        exporters_.committed(info.batch.record.id, clock_.wallMs());
        if (!info.shreddedElsewhere.empty())
            exporters_.shredded();
    }
    void shreddedByRetention(const std::vector<std::string>&) override { exporters_.shredded(); }

private:
    exports::ExportSet& exporters_;
    const Clock& clock_;
};

}  // namespace sluice::service
