// The only way any Sluice code touches a shared-memory word.
//
// Every shared word is a naturally aligned 64-bit integer accessed through
// std::atomic_ref, in the manner of Aeron's get-volatile / put-ordered
// helpers. No code casts segment bytes to std::atomic or reads a shared word
// with a plain load.
#pragma once

#include <atomic>
#include <cstdint>

namespace sluice::shm {

using Word = std::uint64_t;

static_assert(std::atomic_ref<Word>::is_always_lock_free, "shared words must be lock-free");
static_assert(sizeof(Word) == 8 && alignof(Word) == 8);

inline Word load_relaxed(const Word& w) {
  return std::atomic_ref<Word>(const_cast<Word&>(w)).load(std::memory_order_relaxed);
}
inline Word load_acquire(const Word& w) {
  return std::atomic_ref<Word>(const_cast<Word&>(w)).load(std::memory_order_acquire);
}
inline void store_relaxed(Word& w, Word v) {
  std::atomic_ref<Word>(w).store(v, std::memory_order_relaxed);
}
inline void store_release(Word& w, Word v) {
  std::atomic_ref<Word>(w).store(v, std::memory_order_release);
}
// Returns the previous value.
inline Word fetch_add(Word& w, Word delta) {
  return std::atomic_ref<Word>(w).fetch_add(delta, std::memory_order_acq_rel);
}
inline Word fetch_add_relaxed(Word& w, Word delta) {
  return std::atomic_ref<Word>(w).fetch_add(delta, std::memory_order_relaxed);
}
// On failure `expected` is updated with the current value.
inline bool compare_exchange(Word& w, Word& expected, Word desired) {
  return std::atomic_ref<Word>(w).compare_exchange_weak(
      expected, desired, std::memory_order_acq_rel, std::memory_order_acquire);
}
inline bool compare_exchange_strong(Word& w, Word& expected, Word desired) {
  return std::atomic_ref<Word>(w).compare_exchange_strong(
      expected, desired, std::memory_order_acq_rel, std::memory_order_acquire);
}

// Packs a short string into words (zero padded, truncated) and back. Used for
// names that are written once and only displayed.
template <int N>
inline void store_text(Word (&dst)[N], const char* s, std::size_t len) {
  for (int i = 0; i < N; ++i) {
    Word w = 0;
    for (int b = 0; b < 8; ++b) {
      std::size_t at = static_cast<std::size_t>(i) * 8 + b;
      Word c = at < len ? static_cast<unsigned char>(s[at]) : 0;
      w |= c << (8 * b);
    }
    store_relaxed(dst[i], w);
  }
}
template <int N>
inline std::size_t load_text(const Word (&src)[N], char* out) {  // out holds N*8 bytes
  std::size_t len = 0;
  for (int i = 0; i < N; ++i) {
    Word w = load_relaxed(src[i]);
    for (int b = 0; b < 8; ++b) {
      char c = static_cast<char>((w >> (8 * b)) & 0xff);
      out[i * 8 + b] = c;
      if (c != 0 && len == static_cast<std::size_t>(i) * 8 + b) ++len;
    }
  }
  return len;
}

}  // namespace sluice::shm
