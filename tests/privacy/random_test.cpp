#include <catch2/catch.hpp>

#include <cstring>
#include <set>

#include <sys/wait.h>
#include <unistd.h>

#include "privacy/random.h"

using namespace sluice;
using namespace sluice::privacy;

TEST_CASE("uuidV4 is lowercase RFC 4122 version 4 text", "[random]")
{
    std::set<std::string> seen;
    for (int i = 0; i < 1000; ++i) {
        auto uuid = uuidV4();
        REQUIRE(uuid);
        const std::string& u = *uuid;
        REQUIRE(u.size() == 36);
        for (size_t j = 0; j < u.size(); ++j) {
            if (j == 8 || j == 13 || j == 18 || j == 23)
                CHECK(u[j] == '-');
            else
                CHECK(std::string_view("0123456789abcdef").find(u[j]) != std::string_view::npos);
        }
        CHECK(u[14] == '4');
        CHECK(std::string_view("89ab").find(u[19]) != std::string_view::npos);
        seen.insert(u);
    }
    CHECK(seen.size() == 1000);
}

TEST_CASE("randomKeyId is nonzero and randomBytes has the asked size", "[random]")
{
    std::set<uint32_t> ids;
    for (int i = 0; i < 1000; ++i) {
        auto id = randomKeyId();
        REQUIRE(id);
        CHECK(*id != 0);
        ids.insert(*id);
    }
    CHECK(ids.size() > 990);
    auto a = randomBytes(64);
    auto b = randomBytes(64);
    REQUIRE(a);
    REQUIRE(b);
    CHECK(a->size() == 64);
    CHECK_FALSE(secretEquals(*a, *b));
    CHECK(randomBytes(0)->empty());
}

TEST_CASE("RandomPool hands out each drawn byte once, across blocks", "[random]")
{
    RandomPool pool(64);  // a refill every 64 bytes
    std::set<std::string> seen;
    for (int i = 0; i < 200; ++i) {
        uint8_t b[24];
        REQUIRE(pool.fill(b, sizeof b));
        seen.insert(std::string(reinterpret_cast<const char*>(b), sizeof b));
    }
    CHECK(seen.size() == 200);
    auto big = pool.bytes(1000);  // more than a block in one call
    REQUIRE(big);
    CHECK(big->size() == 1000);
    auto uuid = pool.uuidV4();
    REQUIRE(uuid);
    CHECK(uuid->size() == 36);
    CHECK((*uuid)[14] == '4');
    CHECK(std::string_view("89ab").find((*uuid)[19]) != std::string_view::npos);
    for (int i = 0; i < 100; ++i)
        CHECK(*pool.keyId() != 0);
}

TEST_CASE("RandomPool: a forked child does not hand out the parent's bytes", "[random]")
{
    RandomPool pool(4096);
    uint8_t first[8];
    REQUIRE(pool.fill(first, sizeof first));  // the block is drawn; 4088 bytes wait in it
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        uint8_t child[32] = {};
        const bool ok = static_cast<bool>(pool.fill(child, sizeof child));
        const ssize_t n = ::write(fds[1], child, sizeof child);
        ::_exit(ok && n == static_cast<ssize_t>(sizeof child) ? 0 : 1);
    }
    ::close(fds[1]);
    uint8_t child[32] = {};
    size_t got = 0;
    while (got < sizeof child) {
        const ssize_t n = ::read(fds[0], child + got, sizeof child - got);
        if (n <= 0)
            break;
        got += static_cast<size_t>(n);
    }
    ::close(fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
    REQUIRE(got == sizeof child);
    uint8_t parent[32];
    REQUIRE(pool.fill(parent, sizeof parent));
    CHECK(std::memcmp(parent, child, sizeof parent) != 0);
}
