// FUZZ_CHECK(condition): the fuzz targets' assertion. Names the broken property on stderr,
// then traps: libFuzzer saves the input as a crash file, and the replay runner dies with the
// name of the file it was running.
#pragma once

#include <cstdio>

#define FUZZ_CHECK(condition)                                                                 \
  do {                                                                                        \
    if (!(condition)) {                                                                       \
      std::fprintf(stderr, "%s:%d: property violated: %s\n", __FILE__, __LINE__, #condition); \
      __builtin_trap();                                                                       \
    }                                                                                         \
  } while (false)
