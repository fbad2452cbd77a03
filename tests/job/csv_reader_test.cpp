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

TEST_CASE("CSV: lines split without libcsv give libcsv's cells, problems and line numbers", "[job][csv]")
{
    // A line without '\r' that is a whole, well-formed record is split by the reader itself;
    // every other line goes through libcsv. The same records with CRLF line ends never take the
    // short way ('\r' is in every line), so both files must read alike (the '\r' of a line end
    // inside a quoted field aside). Fields of every shape, well-formed and not, at random.
    const std::vector<std::string> shapes = {
        "plain", "", "two words", "\"quoted\"", "\"a, b\"", "\"say \"\"hi\"\"\"", "\"\"", "\"\"\"\"",
        "\"two\nlines\"", "\"open", "x\"y", "\"closed\"after", "\"q\" ", " lead", "trail ", "caf\xE9",
        "\"a\"\"\nb\"", "\",\"",
    };
    uint64_t state = 0x9E3779B97F4A7C15ull;
    auto next = [&](uint64_t n) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        return state % n;
    };
    std::string lf = "a,b,c\n";
    for (int r = 0; r < 2000; ++r) {
        const uint64_t fields = 2 + next(3);  // 2 to 4: some rows have the wrong count
        for (uint64_t f = 0; f < fields; ++f) {
            if (f)
                lf += ',';
            // Mostly well-formed fields, as in real files.
            lf += next(4) ? shapes[next(8)] : shapes[next(shapes.size())];
        }
        lf += next(50) ? "\n" : "\n\n";  // now and then a blank line
    }
    std::string crlf;
    for (char c : lf) {
        if (c == '\n')
            crlf += '\r';
        crlf += c;
    }
    TempDir dir;
    const auto fast = readAll(dir.write("lf.csv", lf), 7);
    const auto slow = readAll(dir.write("crlf.csv", crlf), 7);
    CHECK(fast.header == slow.header);
    REQUIRE(fast.rows.size() == slow.rows.size());
    size_t plain = 0, malformed = 0;
    for (size_t i = 0; i < fast.rows.size(); ++i) {
        const Row& a = fast.rows[i];
        Row b = slow.rows[i];
        for (std::string& cell : b.cells)
            std::erase(cell, '\r');
        INFO("row " << i + 1 << " at line " << a.line);
        CHECK(a.line == b.line);
        CHECK(a.row == b.row);
        CHECK(a.problem == b.problem);
        CHECK(a.cells == b.cells);
        plain += a.problem == RowProblem::kNone;
        malformed += a.problem == RowProblem::kBadQuote;
    }
    CHECK(plain > 500);  // both kinds occur
    CHECK(malformed > 50);
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
