#include "cli/bench_child.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

namespace sluice::cli {

std::string selfExe()
{
    std::error_code ec;
    return std::filesystem::read_symlink("/proc/self/exe", ec).string();
}

int runChild(const std::vector<std::string>& argv, std::string& out, rusage& usage)
{
    int pipeFd[2];
    if (::pipe(pipeFd) != 0)
        return -1;
    const pid_t pid = ::fork();
    if (pid < 0) {
        ::close(pipeFd[0]);
        ::close(pipeFd[1]);
        return -1;
    }
    if (pid == 0) {
        ::dup2(pipeFd[1], STDOUT_FILENO);
        ::close(pipeFd[0]);
        ::close(pipeFd[1]);
        std::vector<char*> args;
        for (const std::string& a : argv)
            args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        std::_Exit(127);
    }
    ::close(pipeFd[1]);
    char buf[4096];
    ssize_t n;
    while ((n = ::read(pipeFd[0], buf, sizeof buf)) > 0)
        out.append(buf, static_cast<size_t>(n));
    ::close(pipeFd[0]);
    int status = 0;
    ::wait4(pid, &status, 0, &usage);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

nlohmann::json benchChild(const std::vector<std::string>& args)
{
    const std::string self = selfExe();
    if (self.empty())
        return {};
    std::vector<std::string> argv{self, "bench"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::string out;
    rusage usage{};
    if (runChild(argv, out, usage) != 0)
        return {};
    return nlohmann::json::parse(out, nullptr, false);
}

double cpuSeconds(const rusage& usage)
{
    return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
           static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

void print(std::ostream& out, const char* format, ...)
{
    va_list args;
    va_start(args, format);
    char stack[512];
    va_list again;
    va_copy(again, args);
    const int n = std::vsnprintf(stack, sizeof stack, format, args);
    va_end(args);
    if (n >= 0 && static_cast<size_t>(n) < sizeof stack) {
        out.write(stack, n);
    } else if (n >= 0) {
        std::string big(static_cast<size_t>(n) + 1, '\0');
        std::vsnprintf(big.data(), big.size(), format, again);
        out.write(big.data(), n);
    }
    va_end(again);
}

double median(std::vector<double> values)
{
    if (values.empty())
        return 0;
    std::sort(values.begin(), values.end());
    const size_t n = values.size();
    return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

}  // namespace sluice::cli
