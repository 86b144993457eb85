// The hashes that name attributes, models and cells in a segment (xxh3).
// Text hashes use the segment's seed; they are never 0, which stands for
// "wildcard" in compiled match terms and "empty" in the key table.
#pragma once

#include <xxhash.h>

#include <cstdint>
#include <string_view>

namespace sluice {

inline std::uint64_t nonzero(std::uint64_t h) { return h == 0 ? 1 : h; }

inline std::uint64_t hash_text(std::uint64_t seed, std::string_view s) {
  return nonzero(XXH3_64bits_withSeed(s.data(), s.size(), seed));
}

inline std::uint64_t hash_words(std::uint64_t seed, const std::uint64_t* words, int n) {
  return nonzero(XXH3_64bits_withSeed(words, static_cast<std::size_t>(n) * 8, seed));
}

}  // namespace sluice
