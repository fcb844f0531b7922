// A main() for a fuzz target built without libFuzzer: runs LLVMFuzzerTestOneInput once on
// every file named on the command line, and on every regular file directly inside every
// directory named there. `meson test` uses it to replay each seed corpus (crashes that were
// found and fixed included) on every build, with whatever compiler and sanitizers it has.
//
// Each path is printed before it runs, so when a property traps, the last line names the
// input. Exits non-zero if a path cannot be read or no input was found at all.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

namespace fs = std::filesystem;

bool run_one(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    return false;
  }
  const std::vector<char> bytes{std::istreambuf_iterator<char>(in),
                                std::istreambuf_iterator<char>()};
  std::printf("%s (%zu bytes)\n", path.c_str(), bytes.size());
  std::fflush(stdout);
  // libFuzzer never passes a null pointer, not even for an empty input.
  static const std::uint8_t empty = 0;
  const auto* data = bytes.empty() ? &empty : reinterpret_cast<const std::uint8_t*>(bytes.data());
  LLVMFuzzerTestOneInput(data, bytes.size());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
    return 2;
  }
  std::size_t ran = 0;
  bool ok = true;
  for (int i = 1; i < argc; ++i) {
    const fs::path arg = argv[i];
    std::error_code ec;
    if (fs::is_directory(arg, ec)) {
      std::vector<fs::path> files;
      for (const auto& entry : fs::directory_iterator(arg, ec))
        if (entry.is_regular_file()) files.push_back(entry.path());
      if (ec) {
        std::fprintf(stderr, "cannot list %s: %s\n", arg.c_str(), ec.message().c_str());
        ok = false;
        continue;
      }
      std::sort(files.begin(), files.end());  // the same order on every run
      for (const auto& file : files) ran += run_one(file) ? 1 : 0;
    } else if (fs::is_regular_file(arg, ec)) {
      if (run_one(arg)) {
        ++ran;
      } else {
        ok = false;
      }
    } else {
      std::fprintf(stderr, "no such file or directory: %s\n", arg.c_str());
      ok = false;
    }
  }
  std::printf("%zu inputs ran\n", ran);
  if (ran == 0) std::fprintf(stderr, "no inputs found\n");
  return ok && ran > 0 ? 0 : 1;
}
