// One frame of an audit segment file (FORMAT.md): a 16-byte header (payload
// length, a reserved zero word, an xxh3 checksum seeded with the length), the
// payload, zero padding to a multiple of 8. Payloads are opaque bytes.
//
//   std::vector<std::uint8_t> buf(frame_size(payload.size()));
//   encode_frame(payload, buf);
//   FrameView f = decode_frame(buf);  // f.check == FrameCheck::kOk, f.payload equals payload
//
// decode_frame never reads outside the span it is given; the span is
// everything known to follow the frame's first byte.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace sluice::audit {

inline constexpr std::size_t kFrameHeaderBytes = 16;
inline constexpr std::size_t kFrameAlignment = 8;
inline constexpr std::uint32_t kMaxPayloadBytes = 1u << 20;

// Bytes a frame with `payload_bytes` of payload takes, header and padding included.
constexpr std::size_t frame_size(std::size_t payload_bytes) {
  return (kFrameHeaderBytes + payload_bytes + kFrameAlignment - 1) & ~(kFrameAlignment - 1);
}
inline constexpr std::size_t kMaxFrameBytes = frame_size(kMaxPayloadBytes);

// XXH3_64bits_withSeed(payload, seed = payload length).
std::uint64_t frame_checksum(std::span<const std::uint8_t> payload);

// Writes the frame for `payload` at the start of `out` and returns its size.
// Requires 1 <= payload.size() <= kMaxPayloadBytes and
// out.size() >= frame_size(payload.size()); returns 0 (writing nothing) otherwise.
std::size_t encode_frame(std::span<const std::uint8_t> payload, std::span<std::uint8_t> out);

enum class FrameCheck : std::uint8_t {
  kOk,           // a complete frame whose checksum verifies
  kEnd,          // a zero header, or only zero bytes left: nothing written here yet
  kTruncated,    // the frame runs past the end of the bytes given
  kBadLength,    // length 0 (in a header that is not all zero) or above kMaxPayloadBytes
  kBadReserved,  // the reserved word or a padding byte is not zero
  kBadChecksum,  // the checksum does not match length and payload
};

// "ok", "end", "truncated", "bad length", "bad reserved bits", "checksum mismatch".
std::string_view frame_check_name(FrameCheck check);

struct FrameView {
  FrameCheck check = FrameCheck::kEnd;
  std::uint32_t length = 0;               // the header's length field, whatever the check
  std::size_t size = 0;                   // frame_size(length) when the length is in range, else 0
  std::span<const std::uint8_t> payload;  // kOk only: points into the decoded bytes
};

// Checks the frame that starts at bytes[0].
FrameView decode_frame(std::span<const std::uint8_t> bytes);

}  // namespace sluice::audit
