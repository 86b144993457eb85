// The key table's one write: find a key's slot by its hash, claiming an
// empty slot for a new key (a CAS of the hash), then writing what the key is
// for display. Used by every decision and by the sidecar when it restores a
// window's spending from the store into a fresh segment.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "segment.h"
#include "segment_layout.h"

namespace sluice::detail {

using shm::Word;

struct Text {
  const char* data;
  std::size_t size;
};

// Finds the slot of `hash`, claiming an empty one if the key is new. Returns
// nullptr when the table holds max_keys keys.
inline shm::KeySlot* find_or_insert(const SegmentMap& seg, Word hash, Word* index_out,
                                    Word identity, Word window_start, const Text* values,
                                    Word n_values) {
  const Word cap = seg.key_capacity();
  Word i = static_cast<Word>((static_cast<unsigned __int128>(hash) * cap) >> 64);
  shm::SegmentHeader& h = seg.header();
  for (Word probe = 0; probe < cap; ++probe, i = (i + 1 == cap ? 0 : i + 1)) {
    shm::KeySlot& k = seg.keys()[i];
    Word seen = shm::load_acquire(k.hash);
    if (seen == hash) {
      *index_out = i;
      return &k;
    }
    if (seen != 0) continue;
    if (shm::fetch_add(h.keys_used, 1) >= shm::load_relaxed(h.max_keys)) {
      shm::fetch_add(h.keys_used, ~Word{0});
      return nullptr;
    }
    if (!shm::compare_exchange_strong(k.hash, seen, hash)) {
      shm::fetch_add(h.keys_used, ~Word{0});
      if (seen != hash) continue;  // another key took it: keep probing
      *index_out = i;
      return &k;
    }
    // New key: write what it is, for display (cold line, once).
    char label[sizeof(k.label)] = {};
    std::size_t at = 0;
    for (Word v = 0; v < n_values && at < sizeof label; ++v) {
      if (v > 0) label[at++] = '|';
      const std::size_t take = std::min(values[v].size, sizeof label - at);
      std::memcpy(label + at, values[v].data, take);
      at += take;
    }
    shm::store_text(k.label, label, at);
    shm::store_relaxed(k.window_start, window_start);
    shm::store_release(k.identity, identity);
    *index_out = i;
    return &k;
  }
  return nullptr;
}

}  // namespace sluice::detail
