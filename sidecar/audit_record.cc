#include "audit_record.h"

#include <cstring>

namespace sluice {

using namespace shm;  // NOLINT(google-build-using-namespace)

bool split_audit_attributes(std::span<const unsigned char> bytes, std::size_t count,
                            AuditRecordView* out) {
  if (count > out->attributes.size()) return false;
  std::size_t at = 0;
  for (std::size_t i = 0; i < count; ++i) {
    if (bytes.size() - at < 2) return false;
    const std::size_t n = bytes[at], v = bytes[at + 1];
    at += 2;
    if (n > kAuditMaxNameBytes || v > kAuditMaxValueBytes || bytes.size() - at < n + v) {
      return false;
    }
    const char* text = reinterpret_cast<const char*>(bytes.data() + at);
    out->attributes[i] = {std::string_view(text, n), std::string_view(text + n, v)};
    at += n + v;
  }
  if (at != bytes.size()) return false;
  out->attribute_count = count;
  out->attribute_bytes = bytes;
  return true;
}

bool decode_audit_record(std::span<const Word> words, AuditRecordView* out) {
  constexpr std::size_t kFixedWords = sizeof(AuditRecord) / sizeof(Word);
  if (words.size() < kFixedWords || words.size() * sizeof(Word) > kAuditMaxRecordBytes) {
    return false;
  }
  std::memcpy(&out->fixed, words.data(), sizeof(AuditRecord));
  const Word info = out->fixed.info;
  const Word call = out->fixed.call_info;
  const Word bytes = info_attr_bytes(info), version = call_version_bytes(call);
  const std::size_t room = (words.size() - kFixedWords) * sizeof(Word);
  if (info_event(info) > kAuditAbandon || info_decision(info) > kAuditAbandoned ||
      call_outcome(call) >= static_cast<Word>(kCallOutcomes) || version > kAuditMaxVersionBytes ||
      bytes > kAuditMaxAttributeBytes || bytes + version > room ||
      room - bytes - version >= sizeof(Word)) {
    return false;
  }
  // The attributes, then a commit's model version.
  const auto* text = reinterpret_cast<const unsigned char*>(words.data() + kFixedWords);
  out->model_version = std::string_view(reinterpret_cast<const char*>(text + bytes), version);
  return split_audit_attributes({text, bytes}, info_attr_count(info), out);
}

}  // namespace sluice
