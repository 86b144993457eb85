#include "frame.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>

namespace sluice::audit {
namespace {

std::uint64_t load_le(const std::uint8_t* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

void store_le(std::uint8_t* p, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}

bool all_zero(std::span<const std::uint8_t> bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](std::uint8_t b) { return b == 0; });
}

}  // namespace

std::uint64_t frame_checksum(std::span<const std::uint8_t> payload) {
  return XXH3_64bits_withSeed(payload.data(), payload.size(), payload.size());
}

std::size_t encode_frame(std::span<const std::uint8_t> payload, std::span<std::uint8_t> out) {
  const std::size_t n = payload.size();
  if (n == 0 || n > kMaxPayloadBytes || out.size() < frame_size(n)) return 0;
  std::uint8_t* p = out.data();
  store_le(p, n, 4);
  store_le(p + 4, 0, 4);
  store_le(p + 8, frame_checksum(payload), 8);
  std::memcpy(p + kFrameHeaderBytes, payload.data(), n);
  const std::size_t size = frame_size(n);
  std::memset(p + kFrameHeaderBytes + n, 0, size - kFrameHeaderBytes - n);
  return size;
}

std::string_view frame_check_name(FrameCheck check) {
  switch (check) {
    case FrameCheck::kOk:
      return "ok";
    case FrameCheck::kEnd:
      return "end";
    case FrameCheck::kTruncated:
      return "truncated";
    case FrameCheck::kBadLength:
      return "bad length";
    case FrameCheck::kBadReserved:
      return "bad reserved bits";
    case FrameCheck::kBadChecksum:
      return "checksum mismatch";
  }
  return "unknown";
}

FrameView decode_frame(std::span<const std::uint8_t> bytes) {
  FrameView v;
  if (bytes.size() < kFrameHeaderBytes) {
    if (bytes.size() >= 4) v.length = static_cast<std::uint32_t>(load_le(bytes.data(), 4));
    v.check = all_zero(bytes) ? FrameCheck::kEnd : FrameCheck::kTruncated;
    return v;
  }
  const std::uint8_t* p = bytes.data();
  v.length = static_cast<std::uint32_t>(load_le(p, 4));
  const std::uint64_t reserved = load_le(p + 4, 4);
  const std::uint64_t checksum = load_le(p + 8, 8);
  if (v.length == 0 && reserved == 0 && checksum == 0) {
    v.check = FrameCheck::kEnd;
    return v;
  }
  if (v.length == 0 || v.length > kMaxPayloadBytes) {
    v.check = FrameCheck::kBadLength;
    return v;
  }
  v.size = frame_size(v.length);
  if (reserved != 0) {
    v.check = FrameCheck::kBadReserved;
    return v;
  }
  if (bytes.size() < v.size) {
    v.check = FrameCheck::kTruncated;
    return v;
  }
  const std::span<const std::uint8_t> payload = bytes.subspan(kFrameHeaderBytes, v.length);
  if (frame_checksum(payload) != checksum) {
    v.check = FrameCheck::kBadChecksum;
    return v;
  }
  if (!all_zero(
          bytes.subspan(kFrameHeaderBytes + v.length, v.size - kFrameHeaderBytes - v.length))) {
    v.check = FrameCheck::kBadReserved;
    return v;
  }
  v.check = FrameCheck::kOk;
  v.payload = payload;
  return v;
}

}  // namespace sluice::audit
