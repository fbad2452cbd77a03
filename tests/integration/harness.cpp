#include "harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "store/db.h"

namespace sluice::testing {

namespace fs = std::filesystem;

std::string readFile(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

Daemon::Daemon(const TempDir& dir, DaemonOptions options) : dir_(dir), options_(std::move(options))
{
    configPath_ = dir_.file("sluiced.conf");
    stateDir_ = dir_.file("state");
    logPath_ = dir_.file("sluiced.log");
    fs::create_directories(stateDir_);
    if (options_.masterKey) {
        std::random_device rd;
        std::string hex;
        const char* digits = "0123456789abcdef";
        for (int i = 0; i < 64; ++i)
            hex += digits[rd() % 16];
        std::ofstream key(stateDir_ + "/master.key");
        key << hex << "\n";
        key.close();
        ::chmod((stateDir_ + "/master.key").c_str(), 0600);
    }
    writeConfig();
}

Daemon::~Daemon()
{
    if (pid_ > 0)
        kill9();
}

void Daemon::writeConfig()
{
    std::ofstream c(configPath_);
    c << "[service]\nstate_dir = " << stateDir_ << "\nworkers = " << options_.workers << "\n"
      << "[ingest]\n";
    if (!options_.pull.empty())
        c << "pull = " << options_.pull << "\n";
    if (!options_.router.empty())
        c << "router = " << options_.router << "\n";
    c << "[privacy]\nmaster_key_file = master.key\n"
      << "[pipeline]\ncontracts = " << options_.contracts << "\npipelines = " << options_.pipelines << "\n";
    if (!options_.metrics.empty())
        c << "[metrics]\nlisten = " << options_.metrics << "\n";
    c << options_.extraConfig;
}

bool Daemon::spawn()
{
    const char* binary = std::getenv("SLUICED");
    if (!binary)
        throw std::runtime_error("$SLUICED is not set (run the tests through meson)");
    logOffset_ = readFile(logPath_).size();
    pid_t pid = ::fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        int fd = ::open(logPath_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        ::dup2(fd, 2);
        int devnull = ::open("/dev/null", O_WRONLY);
        ::dup2(devnull, 1);
        for (const auto& [k, v] : options_.env)
            ::setenv(k.c_str(), v.c_str(), 1);
        std::vector<std::string> args = {binary, "--config", configPath_};
        args.insert(args.end(), options_.args.begin(), options_.args.end());
        std::vector<char*> argv;
        for (auto& a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        ::execv(binary, argv.data());
        ::_exit(127);
    }
    pid_ = pid;
    return true;
}

bool Daemon::start(std::chrono::milliseconds timeout)
{
    if (!spawn())
        return false;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        std::string log = readFile(logPath_).substr(logOffset_);
        std::istringstream lines(log);
        std::string line;
        while (std::getline(lines, line)) {
            // "... ready: ...; listening on A, B[; metrics on http://H:P/metrics]"
            const auto ready = line.find(" ready: ");
            const auto listening = line.find("listening on ", ready == std::string::npos ? 0 : ready);
            if (ready == std::string::npos || listening == std::string::npos)
                continue;
            std::string list = line.substr(listening + 13);
            metricsAddress_.clear();
            const auto metrics = list.find("; metrics on http://");
            if (metrics != std::string::npos) {
                std::string url = list.substr(metrics + 20);
                metricsAddress_ = url.substr(0, url.find('/'));
                list.resize(metrics);
            }
            std::vector<std::string> endpoints;
            size_t pos = 0;
            while (pos <= list.size()) {
                size_t end = list.find(", ", pos);
                if (end == std::string::npos)
                    end = list.size();
                endpoints.push_back(list.substr(pos, end - pos));
                pos = end + 2;
            }
            size_t i = 0;
            pullEndpoint_ = options_.pull.empty() ? "" : endpoints.at(i++);
            routerEndpoint_ = options_.router.empty() ? "" : endpoints.at(i++);
            return true;
        }
        int status;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
}

int Daemon::waitExit(std::chrono::milliseconds timeout)
{
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        int status;
        pid_t r = ::waitpid(pid_, &status, WNOHANG);
        if (r == pid_) {
            pid_ = -1;
            if (WIFEXITED(status))
                return WEXITSTATUS(status);
            if (WIFSIGNALED(status))
                return 128 + WTERMSIG(status);
            return -1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -2;  // still running
}

int Daemon::runToExit(std::chrono::milliseconds timeout)
{
    if (!spawn())
        return -1;
    int code = waitExit(timeout);
    if (code == -2)
        kill9();
    return code;
}

int Daemon::stop(int signal, std::chrono::milliseconds timeout)
{
    if (pid_ <= 0)
        return -1;
    ::kill(pid_, signal);
    int code = waitExit(timeout);
    if (code == -2)
        kill9();
    return code;
}

void Daemon::kill9()
{
    if (pid_ <= 0)
        return;
    ::kill(pid_, SIGKILL);
    int status;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
}

bool Daemon::running()
{
    if (pid_ <= 0)
        return false;
    int status;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
    }
    return true;
}

std::string Daemon::log() const { return readFile(logPath_); }

namespace {

store::Db openReadOnly(const std::string& database)
{
    store::Db::Options o;
    o.readOnly = true;
    auto db = store::Db::open(database, o);
    if (!db)
        throw std::runtime_error(db.status().message());
    return std::move(*db);
}

}  // namespace

int64_t queryInt(const std::string& database, const std::string& sql)
{
    store::Db db = openReadOnly(database);
    auto v = db.queryInt(sql);
    if (!v)
        throw std::runtime_error(v.status().message());
    return v->value_or(0);
}

std::vector<std::vector<std::string>> queryRows(const std::string& database, const std::string& sql)
{
    store::Db db = openReadOnly(database);
    auto stmt = db.prepare(sql);
    if (!stmt)
        throw std::runtime_error(stmt.status().message());
    std::vector<std::vector<std::string>> rows;
    for (;;) {
        auto row = stmt->step();
        if (!row)
            throw std::runtime_error(row.status().message());
        if (!*row)
            break;
        std::vector<std::string> cells;
        for (int i = 0; i < stmt->columnCount(); ++i)
            cells.emplace_back(stmt->columnIsNull(i) ? "NULL" : std::string(stmt->columnText(i)));
        rows.push_back(std::move(cells));
    }
    return rows;
}

std::string httpGet(const std::string& hostPort, const std::string& path)
{
    auto colon = hostPort.rfind(':');
    if (colon == std::string::npos)
        return "";
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(std::stoi(hostPort.substr(colon + 1))));
    ::inet_pton(AF_INET, hostPort.substr(0, colon).c_str(), &addr.sin_addr);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return "";
    }
    std::string request = "GET " + path + " HTTP/1.1\r\nHost: " + hostPort + "\r\nConnection: close\r\n\r\n";
    ::send(fd, request.data(), request.size(), 0);
    std::string response;
    char buf[65536];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0)
        response.append(buf, static_cast<size_t>(n));
    ::close(fd);
    auto body = response.find("\r\n\r\n");
    return body == std::string::npos ? "" : response.substr(body + 4);
}

}  // namespace sluice::testing
