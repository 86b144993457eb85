// Loading the one YAML document of a policy file, without YAML::LoadAll.
//
// yaml-cpp 0.7's LoadAll never returns on a top-level token no node can
// start with (",", "--- ,"): its parser starts an empty document at that
// token, leaves it unread and starts the next one there, forever, adding a
// node to the result each time until memory runs out (jbeder/yaml-cpp#1040,
// fixed upstream by #1319). Here documents are counted through the parser's
// events, three at most, and one that starts where the one before it did is
// that token: a syntax error.
//
//   int second_line = 0;  // throws YAML::Exception, as YAML::Load does
//   YAML::Node root = detail::load_first_document(text, &second_line);
//   if (second_line != 0) return error("more than one document, the second at line ...");
#pragma once

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <sstream>
#include <string>
#include <vector>

namespace sluice::detail {

// Where each document of a stream starts, and nothing else.
class YamlDocumentStarts final : public YAML::EventHandler {
 public:
  const std::vector<YAML::Mark>& starts() const { return starts_; }

  void OnDocumentStart(const YAML::Mark& mark) override { starts_.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

 private:
  std::vector<YAML::Mark> starts_;
};

// The first document of `text` (a null node when there is none); sets
// `second_line` to the line (1-based) where a second document starts, 0 when
// there is none. Throws YAML::Exception on a syntax error.
inline YAML::Node load_first_document(const std::string& text, int* second_line) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  YamlDocumentStarts docs;
  while (docs.starts().size() < 3 && parser.HandleNextDocument(docs)) {
    const std::vector<YAML::Mark>& s = docs.starts();
    if (s.size() >= 2 && s.back().pos == s[s.size() - 2].pos) {
      const std::size_t at = static_cast<std::size_t>(s.back().pos);
      const char c = at < text.size() ? text[at] : '?';
      const bool printable = c > 0x20 && c < 0x7f;
      throw YAML::ParserException(s.back(), std::string("unexpected '") + (printable ? c : '?') +
                                                "', no node starts with it");
    }
  }
  *second_line = docs.starts().size() >= 2 ? docs.starts()[1].line + 1 : 0;
  return YAML::Load(text);
}

}  // namespace sluice::detail
