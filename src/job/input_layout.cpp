#include "job/input_layout.h"

namespace sluice::job {
namespace {

using Role = contract::RecordLayout::Role;
using Slot = contract::RecordLayout::Slot;

// What an input name does: a contract field (by its own name or a rename), ignored, or one of
// the job's own fields (which may fill a contract field too).
Slot slotOf(const JobSpec& job, const std::string& name, std::string& field)
{
    const ContractSpec& contract = job.contract();
    Slot slot;
    field.clear();
    bool ruled = false;
    for (const ColumnRule& r : job.input.columns) {
        if (r.input != name)
            continue;
        ruled = true;
        if (r.field)
            field = *r.field;
    }
    if (!ruled && contract.fieldIndex(name) >= 0)
        field = name;
    slot.field = field.empty() ? -1 : contract.fieldIndex(field);
    if (name == job.timestamp.column)
        slot.role = Role::kTime;
    else if (!job.consent.column.empty() && name == job.consent.column)
        slot.role = Role::kConsent;
    else if (!job.eventIdField.empty() && name == job.eventIdField)
        slot.role = Role::kEventId;
    else if (slot.field >= 0)
        slot.role = Role::kField;
    else if (ruled)
        slot.role = Role::kIgnore;
    return slot;
}

}  // namespace

std::shared_ptr<const InputLayout> makeLayout(const JobSpec& job, const std::vector<std::string>& header)
{
    auto out = std::make_shared<InputLayout>();
    out->layout.contract = 0;
    out->header = header;
    std::string field;
    auto remember = [&](const std::string& name, const Slot& slot) {
        if (slot.field >= 0)
            out->columnOf.emplace(job.contract().fields[static_cast<size_t>(slot.field)].name, name);
    };
    if (job.input.format == InputFormat::kCsv) {
        for (const std::string& name : header) {
            const Slot slot = slotOf(job, name, field);
            out->layout.byColumn.push_back(slot);
            remember(name, slot);
        }
        return out;
    }
    // JSON lines: every name the job file or the contract knows; others are unknown fields.
    std::vector<std::string> names;
    for (const FieldSpec& f : job.contract().fields)
        names.push_back(f.name);
    for (const ColumnRule& r : job.input.columns)
        names.push_back(r.input);
    for (const std::string* special : {&job.timestamp.column, &job.consent.column, &job.eventIdField})
        if (!special->empty())
            names.push_back(*special);
    for (const std::string& name : names) {
        if (out->layout.byName.count(name))
            continue;
        const Slot slot = slotOf(job, name, field);
        if (slot.role == Role::kUnknown)
            continue;  // a contract field renamed away: its own name is no longer accepted
        out->layout.byName.emplace(name, slot);
        remember(name, slot);
    }
    return out;
}

}  // namespace sluice::job
