// A stand-in for the SQLite writer in tests: applies UpsertRows and Finalize to in-memory
// tables with the merge rules the writer implements in SQL (NULL + x is NULL, min/max ignore
// NULL, integer + integer overflows to REAL, sketches merge with mergeSerialized and subject
// sets with mergeSubjectSets, estimates and counts are recomputed from the merged blob, kKeep
// keeps the inserted value).
#pragma once

#include <cmath>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "aggregate/hyper_log_log.h"
#include "aggregate/subject_set.h"
#include "core/commit.h"

namespace sluice::aggregate::testing {

struct Owned {
    Cell::Kind kind = Cell::Kind::kNull;
    int64_t i = 0;
    double d = 0;
    std::string text;

    static Owned of(const Cell& c) { return {c.kind, c.i(), c.d(), std::string(c.text())}; }
    static Owned ofInt(int64_t v) { return {Cell::Kind::kInt, v, 0, {}}; }
    static Owned ofReal(double v) { return {Cell::Kind::kReal, 0, v, {}}; }
    static Owned ofText(std::string v) { return {Cell::Kind::kText, 0, 0, std::move(v)}; }
    static Owned null() { return {}; }

    bool isNull() const { return kind == Cell::Kind::kNull; }
    bool isNumber() const { return kind == Cell::Kind::kInt || kind == Cell::Kind::kReal; }
    double number() const { return kind == Cell::Kind::kInt ? static_cast<double>(i) : d; }

    friend bool operator==(const Owned& a, const Owned& b)
    {
        if (a.kind != b.kind)
            return false;
        switch (a.kind) {
        case Cell::Kind::kNull: return true;
        case Cell::Kind::kInt: return a.i == b.i;
        case Cell::Kind::kReal: return a.d == b.d;
        default: return a.text == b.text;
        }
    }
    friend bool operator<(const Owned& a, const Owned& b)
    {
        if (a.kind != b.kind)
            return a.kind < b.kind;
        switch (a.kind) {
        case Cell::Kind::kNull: return false;
        case Cell::Kind::kInt: return a.i < b.i;
        case Cell::Kind::kReal: return a.d < b.d;
        default: return a.text < b.text;
        }
    }
};

inline std::ostream& operator<<(std::ostream& out, const Owned& v)
{
    switch (v.kind) {
    case Cell::Kind::kNull: return out << "NULL";
    case Cell::Kind::kInt: return out << v.i;
    case Cell::Kind::kReal: return out << v.d;
    case Cell::Kind::kText: return out << '\'' << v.text << '\'';
    case Cell::Kind::kBlob: return out << "blob(" << v.text.size() << ")";
    }
    return out;
}

using Row = std::vector<Owned>;

struct MiniTable {
    std::vector<UpsertColumn> columns;
    std::map<Row, Row> rows;  // key cells -> all cells

    int column(const std::string& name) const
    {
        for (size_t i = 0; i < columns.size(); ++i)
            if (columns[i].name == name)
                return static_cast<int>(i);
        throw std::runtime_error("no column " + name);
    }
    const Owned& at(const Row& row, const std::string& name) const { return row[static_cast<size_t>(column(name))]; }
};

class MiniDb {
public:
    std::map<std::string, MiniTable> tables;

    // In the writer's order: deletes, upserts, finalizes.
    void apply(const WriteBatch& batch)
    {
        for (const DeleteRows& d : batch.deletes)
            erase(d);
        apply(batch.upserts, batch.finalizes);
    }

    void apply(const std::vector<UpsertRows>& upserts, const std::vector<Finalize>& finalizes)
    {
        for (const UpsertRows& u : upserts)
            upsert(u);
        for (const Finalize& f : finalizes)
            finalize(f);
    }

    const MiniTable& table(const std::string& name) const
    {
        auto it = tables.find(name);
        if (it == tables.end())
            throw std::runtime_error("no table " + name);
        return it->second;
    }
    bool has(const std::string& name) const { return tables.count(name) != 0; }

private:
    static Owned add(const Owned& a, const Owned& b)
    {
        if (a.isNull() || b.isNull())
            return Owned::null();
        if (a.kind == Cell::Kind::kInt && b.kind == Cell::Kind::kInt) {
            int64_t sum = 0;
            if (!__builtin_add_overflow(a.i, b.i, &sum))
                return Owned::ofInt(sum);
        }
        return Owned::ofReal(a.number() + b.number());
    }

    static Owned pick(const Owned& a, const Owned& b, bool smaller)
    {
        if (a.isNull())
            return b;
        if (b.isNull())
            return a;
        bool bWins;
        if (a.kind == Cell::Kind::kInt && b.kind == Cell::Kind::kInt)
            bWins = smaller ? b.i < a.i : b.i > a.i;
        else
            bWins = smaller ? b.number() < a.number() : b.number() > a.number();
        return bWins ? b : a;
    }

    static std::optional<std::string_view> blob(const Owned& v)
    {
        if (v.isNull())
            return std::nullopt;
        return std::string_view(v.text);
    }

    void upsert(const UpsertRows& u)
    {
        MiniTable& t = tables[u.table];
        if (t.columns.empty())
            t.columns = u.columns;
        if (t.columns.size() != u.columns.size())
            throw std::runtime_error("column count changed for " + u.table);
        for (size_t i = 0; i < u.columns.size(); ++i)
            if (t.columns[i].name != u.columns[i].name || t.columns[i].op != u.columns[i].op ||
                t.columns[i].source != u.columns[i].source)
                throw std::runtime_error("columns changed for " + u.table);

        const size_t width = u.columns.size();
        for (size_t r = 0; r < u.rows(); ++r) {
            Row in;
            Row key;
            for (size_t c = 0; c < width; ++c) {
                in.push_back(Owned::of(u.cells[r * width + c]));
                if (u.columns[c].op == MergeOp::kKey)
                    key.push_back(in.back());
            }
            auto it = t.rows.find(key);
            if (it == t.rows.end()) {
                t.rows.emplace(key, std::move(in));
                continue;
            }
            Row& old = it->second;
            Row merged = old;
            for (size_t c = 0; c < width; ++c) {
                switch (u.columns[c].op) {
                case MergeOp::kKey: break;
                case MergeOp::kAdd: merged[c] = add(old[c], in[c]); break;
                case MergeOp::kMin: merged[c] = pick(old[c], in[c], true); break;
                case MergeOp::kMax: merged[c] = pick(old[c], in[c], false); break;
                case MergeOp::kSet: merged[c] = in[c]; break;
                case MergeOp::kKeep: break;
                case MergeOp::kHllEstimate: break;  // below, from the merged sketch
                case MergeOp::kSubjectsCount: break;  // below, from the merged set
                case MergeOp::kHllMerge: {
                    auto m = mergeSerialized(blob(old[c]), blob(in[c]));
                    if (!m)
                        throw std::runtime_error(m.status().message());
                    merged[c] = Owned{Cell::Kind::kBlob, 0, 0, *m};
                    break;
                }
                case MergeOp::kSubjectsMerge: {
                    auto m = mergeSubjectSets(blob(old[c]), blob(in[c]));
                    if (!m)
                        throw std::runtime_error(m.status().message());
                    merged[c] = Owned{Cell::Kind::kBlob, 0, 0, *m};
                    break;
                }
                }
            }
            for (size_t c = 0; c < width; ++c) {
                const Owned& source = u.columns[c].source >= 0 ? merged[static_cast<size_t>(u.columns[c].source)] : merged[c];
                if (u.columns[c].op == MergeOp::kHllEstimate) {
                    auto e = estimateSerialized(blob(source));
                    if (!e)
                        throw std::runtime_error(e.status().message());
                    merged[c] = Owned::ofReal(*e);
                } else if (u.columns[c].op == MergeOp::kSubjectsCount) {
                    auto n = countSubjectSet(blob(source));
                    if (!n)
                        throw std::runtime_error(n.status().message());
                    merged[c] = Owned::ofInt(*n);
                }
            }
            old = std::move(merged);
        }
    }

    void erase(const DeleteRows& d)
    {
        auto it = tables.find(d.table);
        if (it == tables.end())
            return;
        MiniTable& t = it->second;
        std::vector<std::string> keys;
        for (const UpsertColumn& c : t.columns)
            if (c.op == MergeOp::kKey)
                keys.push_back(c.name);
        if (keys != d.keyColumns)
            throw std::runtime_error("a delete from " + d.table + " by other columns than its key");
        const size_t width = d.keyColumns.size();
        for (size_t r = 0; r < d.rows(); ++r) {
            Row key;
            for (size_t c = 0; c < width; ++c)
                key.push_back(Owned::of(d.cells[r * width + c]));
            t.rows.erase(key);
        }
    }

    void finalize(const Finalize& f)
    {
        auto it = tables.find(f.table);
        if (it == tables.end())
            return;  // nothing was ever written: nothing to mark
        MiniTable& t = it->second;
        const size_t start = static_cast<size_t>(t.column("window_start"));
        const size_t final = static_cast<size_t>(t.column("final"));
        for (auto& [key, row] : t.rows)
            if (row[start].i >= f.fromMs && row[start].i <= f.toMs)
                row[final] = Owned::ofInt(1);
    }
};

}  // namespace sluice::aggregate::testing
