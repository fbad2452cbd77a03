// sluicectl mask: the masked form of values, exactly as a derived output stores them.
#include <boost/program_options.hpp>

#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "cli/common.h"
#include "privacy/masker.h"

namespace sluice::cli {
namespace {

const Command kMask = {
    "mask",
    "[options] [VALUE...]",
    "Prints the mask of each VALUE (or of each line of standard input), one per line.",
    R"(Give either --output NAME (that output's algorithm and seed: its seed_file, or the seed sluiced
derives from the master key when the output names none) or --algorithm with --seed-file.

  hmac-sha256  lowercase hex of HMAC-SHA256(seed, value), 64 characters
  murmur3      hex(h1) + hex(h2) of MurmurHash3_x64_128(seed + value, 0), each half without
               leading zeros (STRM Privacy compatible; 2 to 32 characters)

A seed file's bytes are the seed; one trailing newline is not part of it. An empty file is an
empty seed: valid for murmur3 (STRM Privacy's outputs made without a seed), refused for
hmac-sha256 (an HMAC with an empty key is no secret).

Examples:
  sluicectl mask --output analytics --config /etc/sluice/sluiced.conf ann@example.com
  printf '%s\n' ann@example.com bob@example.com | sluicectl mask --algorithm murmur3 --seed-file seed.txt
)",
};

MaskAlgorithm parseAlgorithm(const std::string& name)
{
    if (name == "hmac-sha256")
        return MaskAlgorithm::kHmacSha256;
    if (name == "murmur3")
        return MaskAlgorithm::kMurmur3;
    throw Failure(kExitUsage, "--algorithm must be hmac-sha256 or murmur3, not '" + name + "'");
}

privacy::SecretBytes readSeed(const std::string& path, MaskAlgorithm algorithm)
{
    auto seed = privacy::readMaskSeed(path, algorithm);
    if (!seed)
        throw Failure(seed.status().code() == StatusCode::kInvalidArgument ? kExitDataErr : kExitIoErr,
                      seed.status().message());
    return std::move(seed).value();
}

}  // namespace

int runMask(const std::vector<std::string>& args, Io& io)
{
    po::options_description options = optionGroup();
    options.add_options()
        ("algorithm", po::value<std::string>()->value_name("NAME"), "hmac-sha256 (default) or murmur3")
        ("seed-file", po::value<std::string>()->value_name("FILE"), "the masking seed")
        ("output", po::value<std::string>()->value_name("NAME"), "use this derived output's algorithm and seed");
    addConfigOptions(options);
    po::options_description hidden;
    hidden.add_options()("value", po::value<std::vector<std::string>>(), "values");
    po::positional_options_description positional;
    positional.add("value", -1);
    po::variables_map vm;
    if (!parseCommandLine(kMask, args, options, vm, io, &hidden, &positional))
        return kExitOk;

    MaskAlgorithm algorithm = MaskAlgorithm::kHmacSha256;
    if (vm.count("algorithm"))
        algorithm = parseAlgorithm(vm["algorithm"].as<std::string>());
    privacy::SecretBytes seed;
    if (vm.count("output")) {
        if (vm.count("seed-file"))
            throw Failure(kExitUsage, "--output uses that output's seed; do not give --seed-file too");
        const std::string name = vm["output"].as<std::string>();
        const config::Config cfg = loadToolConfig(vm);
        const OutputSpec* output = nullptr;
        for (const OutputSpec& o : cfg.pipelineSpec->outputs)
            if (o.name == name)
                output = &o;
        if (!output)
            throw Failure(kExitUsage, "the configuration has no derived output '" + name + "'");
        if (vm.count("algorithm") && algorithm != output->algorithm)
            throw Failure(kExitUsage, "output '" + name + "' masks with " +
                                          std::string(maskAlgorithmName(output->algorithm)) + ", not " +
                                          vm["algorithm"].as<std::string>());
        algorithm = output->algorithm;
        if (output->maskedFields.empty())
            io.err << "sluicectl mask: note: output '" << name << "' masks no fields\n";
        if (!output->seedFile.empty()) {
            seed = readSeed(output->seedFile, algorithm);
        } else {
            // The seed derives from the master key; check that key against the database when there
            // is one, since a wrong key would silently give masks that match nothing.
            std::optional<store::Db> db;
            std::error_code ec;
            if (std::filesystem::exists(cfg.store.database, ec))
                db.emplace(openDatabase(cfg, false));
            const privacy::KeyWrapper wrapper = loadKeyWrapper(cfg, db ? &*db : nullptr);
            seed = take(wrapper.deriveKey("sluice mask seed v1 " + output->name, 32), "deriving the masking seed");
        }
    } else {
        if (!vm.count("seed-file"))
            throw Failure(kExitUsage, "give --seed-file FILE (with --algorithm), or --output NAME with --config");
        seed = readSeed(vm["seed-file"].as<std::string>(), algorithm);
    }

    auto masker = take(privacy::Masker::create(algorithm, std::move(seed)), "masking");
    const std::vector<std::string> values =
        vm.count("value") ? vm["value"].as<std::vector<std::string>>() : std::vector<std::string>{};
    std::string line;
    forEachValue(values, io, [&](std::string_view value) {
        line.clear();
        check(masker.append(value, line), "masking");
        line.push_back('\n');
        io.out << line;
    });
    io.out.flush();
    return io.out ? kExitOk : kExitIoErr;
}

}  // namespace sluice::cli
