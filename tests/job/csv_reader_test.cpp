// The CSV reader on real files: RFC 4180 records, BOM and CRLF, quoted delimiters and newlines,
// and the malformed records that become rejected rows while reading goes on (unbalanced quote,
// wrong column count, too large); gzip input read the same as plain.
#include <zlib.h>

#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "job/byte_source.h"
#include "job/record_reader.h"
#include "support/temp_dir.h"

namespace sluice::job {
namespace {

using testing::TempDir;

struct Row {
    uint64_t line = 0;
    uint64_t row = 0;
    RowProblem problem = RowProblem::kNone;
    std::vector<std::string> cells;
};

struct ReadResult {
    std::vector<std::string> header;
    std::vector<Row> rows;
};

// Reads the whole file in chunks of `chunkRows` rows.
ReadResult readAll(const std::string& path, size_t chunkRows = 2, size_t maxRowBytes = 1 << 20,
                   Compression compression = Compression::kAuto)
{
    auto source = ByteSource::open(path, compression);
    REQUIRE(source.isOk());
    auto reader = makeCsvReader(**source, CsvOptions{}, maxRowBytes);
    ReadResult out;
    auto header = reader->header();
    REQUIRE(header.isOk());
    out.header = *header;
    bool more = true;
    while (more) {
        Chunk chunk;
        auto r = reader->read(chunk, chunkRows, 1 << 20);
        REQUIRE(r.isOk());
        more = *r;
        for (const RawRow& raw : chunk.rows) {
            Row row{raw.line, raw.row, raw.problem, {}};
            for (uint32_t c = 0; c < raw.cellCount; ++c) {
                const auto [offset, size] = chunk.cells[raw.firstCell + c];
                row.cells.emplace_back(chunk.text.data() + offset, size);
            }
            out.rows.push_back(std::move(row));
        }
    }
    return out;
}

std::string gzip(const std::string& text)
{
    z_stream z{};
    REQUIRE(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    std::string out(deflateBound(&z, text.size()) + 64, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
    z.avail_in = static_cast<uInt>(text.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
}

}  // namespace

TEST_CASE("CSV: BOM and CRLF read like a plain LF file", "[job][csv]")
{
    TempDir dir;
    const auto plain = readAll(dir.write("lf.csv", "a,b\n1,x\n2,y\n"));
    const auto bom = readAll(dir.write("bom-crlf.csv", "\xEF\xBB\xBF" "a,b\r\n1,x\r\n2,y\r\n"));
    CHECK(bom.header == std::vector<std::string>{"a", "b"});
    REQUIRE(bom.rows.size() == 2);
    for (size_t i = 0; i < 2; ++i) {
        CHECK(bom.rows[i].cells == plain.rows[i].cells);
        CHECK(bom.rows[i].line == i + 2);
        CHECK(bom.rows[i].row == i + 1);
        CHECK(bom.rows[i].problem == RowProblem::kNone);
    }
    // No newline after the last record.
    const auto noEnd = readAll(dir.write("no-end.csv", "a,b\r\n1,x\r\n2,y"));
    REQUIRE(noEnd.rows.size() == 2);
    CHECK(noEnd.rows[1].cells == std::vector<std::string>{"2", "y"});
}

TEST_CASE("CSV: quoted delimiters, quotes and newlines stay in their cell", "[job][csv]")
{
    TempDir dir;
    const auto r = readAll(dir.write("quoted.csv", "id,text,n\r\n"
                                                   "1,\"a, b\",2\r\n"
                                                   "2,\"say \"\"hi\"\"\",3\r\n"
                                                   "3,\"two\r\nlines\",4\r\n"
                                                   "4,\"\",5\r\n"));
    REQUIRE(r.rows.size() == 4);
    CHECK(r.rows[0].cells == std::vector<std::string>{"1", "a, b", "2"});
    CHECK(r.rows[1].cells == std::vector<std::string>{"2", "say \"hi\"", "3"});
    CHECK(r.rows[2].cells[1].find("two") == 0);
    CHECK(r.rows[2].cells[1].find("lines") != std::string::npos);
    CHECK(r.rows[2].line == 4);
    CHECK(r.rows[3].line == 6);  // the record after the two-line one
    CHECK(r.rows[3].row == 4);
    CHECK(r.rows[3].cells == std::vector<std::string>{"4", "", "5"});
}

TEST_CASE("CSV: malformed records become rejected rows and reading goes on", "[job][csv]")
{
    TempDir dir;
    SECTION("a quote out of place")
    {
        const auto r = readAll(dir.write("quote.csv", "a,b\n1,x\"y\n2,ok\n"));
        REQUIRE(r.rows.size() == 2);
        CHECK(r.rows[0].problem == RowProblem::kBadQuote);
        CHECK(r.rows[0].line == 2);
        CHECK(r.rows[1].problem == RowProblem::kNone);
        CHECK(r.rows[1].cells == std::vector<std::string>{"2", "ok"});
    }
    SECTION("a quoted field never closed, at the end of the file")
    {
        const auto r = readAll(dir.write("open.csv", "a,b\n1,ok\n2,\"never closed\n"));
        REQUIRE(r.rows.size() == 2);
        CHECK(r.rows[0].problem == RowProblem::kNone);
        CHECK(r.rows[1].problem == RowProblem::kBadQuote);
        CHECK(r.rows[1].line == 3);
    }
    SECTION("a quoted field open past max_row_bytes: the rows after it are read")
    {
        std::string text = "a,b\n1,\"open\n";
        for (int i = 0; i < 40; ++i)
            text += "filler line " + std::to_string(i) + "\n";
        const auto r = readAll(dir.write("long.csv", text), 2, 128);
        REQUIRE(!r.rows.empty());
        CHECK(r.rows[0].problem == RowProblem::kBadQuote);
        CHECK(r.rows[0].line == 2);
    }
    SECTION("more or fewer cells than the header")
    {
        const auto r = readAll(dir.write("count.csv", "a,b,c\n1,2,3\n1,2\n1,2,3,4\n5,6,7\n"));
        REQUIRE(r.rows.size() == 4);
        CHECK(r.rows[0].problem == RowProblem::kNone);
        CHECK(r.rows[1].problem == RowProblem::kColumnCount);
        CHECK(r.rows[2].problem == RowProblem::kColumnCount);
        CHECK(r.rows[3].problem == RowProblem::kNone);
        CHECK(r.rows[3].row == 4);
    }
    SECTION("bytes that are not UTF-8 are read as they are (the row parser rejects them)")
    {
        const auto r = readAll(dir.write("latin1.csv", "a,b\n1,caf\xE9\n"));
        REQUIRE(r.rows.size() == 1);
        CHECK(r.rows[0].problem == RowProblem::kNone);
        CHECK(r.rows[0].cells[1] == "caf\xE9");
    }
}

TEST_CASE("CSV: a gzip file reads as its content", "[job][csv]")
{
    TempDir dir;
    const std::string text = "\xEF\xBB\xBF" "a,b\r\n1,\"x,y\"\r\n2,z\r\n";
    const auto plain = readAll(dir.write("plain.csv", text));
    const auto packed = readAll(dir.write("packed.csv.gz", gzip(text)));
    CHECK(packed.header == plain.header);
    REQUIRE(packed.rows.size() == plain.rows.size());
    for (size_t i = 0; i < plain.rows.size(); ++i)
        CHECK(packed.rows[i].cells == plain.rows[i].cells);
}

TEST_CASE("CSV: an empty file or a broken header is refused", "[job][csv]")
{
    TempDir dir;
    for (const char* text : {"", "a,\"b\n"}) {
        auto source = ByteSource::open(dir.write("bad.csv", text), Compression::kNone);
        REQUIRE(source.isOk());
        auto reader = makeCsvReader(**source, CsvOptions{}, 1 << 20);
        CHECK_FALSE(reader->header().isOk());
    }
}

}  // namespace sluice::job
