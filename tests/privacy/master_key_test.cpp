// Where the master key comes from: the systemd credential before the configured file, the unit's
// "absent" marker, the demo's new key, and the refusals that say how to provide one.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>

#include "privacy/key_wrap.h"
#include "privacy/master_key.h"
#include "support/temp_dir.h"

using namespace sluice;
using namespace sluice::privacy;
using sluice::testing::TempDir;

namespace {

const std::string kHexA(64, 'a');
const std::string kHexB(64, 'b');

// Sets CREDENTIALS_DIRECTORY for one scope.
class Credentials {
public:
    explicit Credentials(const std::string& dir) { ::setenv("CREDENTIALS_DIRECTORY", dir.c_str(), 1); }
    ~Credentials() { ::unsetenv("CREDENTIALS_DIRECTORY"); }
};

}  // namespace

TEST_CASE("the master key: credential first, then the file; never guessed", "[master_key]")
{
    TempDir dir("sluice-master");
    ::unsetenv("CREDENTIALS_DIRECTORY");
    const MasterKeyLocation where{dir.file("master.key"), "master.key", dir.file("sluiced.conf")};

    auto missing = loadMasterKey(where, false);
    REQUIRE_FALSE(missing);
    CHECK(missing.status().code() == StatusCode::kPermission);
    CHECK(missing.status().message().find("no master key") == 0);
    CHECK(missing.status().message().find(dir.file("master.key")) != std::string::npos);

    dir.write("master.key", kHexA + "\n");
    auto fromFile = loadMasterKey(where, false);
    REQUIRE(fromFile);
    CHECK(fromFile->source == dir.file("master.key"));
    CHECK(fromFile->bytes.view() == std::string(32, '\xaa'));
    CHECK_FALSE(fromFile->created);

    std::filesystem::create_directories(dir.file("credentials"));
    dir.write("credentials/master.key", kHexB);
    {
        Credentials credentials(dir.file("credentials"));
        auto fromCredential = loadMasterKey(where, false);
        REQUIRE(fromCredential);
        CHECK(fromCredential->source == dir.file("credentials/master.key"));
        CHECK(fromCredential->bytes.view() == std::string(32, '\xbb'));

        // The unit's SetCredential= fallback: the file the unit loads is missing.
        dir.write("credentials/master.key", "absent");
        std::filesystem::remove(dir.file("master.key"));
        auto absent = loadMasterKey(where, false);
        REQUIRE_FALSE(absent);
        CHECK(absent.status().message().find("credential 'master.key' is absent: create " + dir.file("master.key")) !=
              std::string::npos);
    }
}

TEST_CASE("the demo creates a missing master key file, mode 0600", "[master_key]")
{
    TempDir dir("sluice-master");
    ::unsetenv("CREDENTIALS_DIRECTORY");
    const MasterKeyLocation where{dir.file("state/master.key"), "master.key", ""};
    auto created = loadMasterKey(where, true);
    REQUIRE(created);
    CHECK(created->created);
    CHECK(created->bytes.size() == kMasterKeySize);
    struct stat st {};
    REQUIRE(::stat(dir.file("state/master.key").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0600);
    auto again = loadMasterKey(where, true);
    REQUIRE(again);
    CHECK_FALSE(again->created);
    CHECK(again->bytes.view() == created->bytes.view());
}
