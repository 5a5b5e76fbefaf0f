// Compares ChatTemplate renders with @huggingface/jinja's, byte for byte. The reference file
// (CHAT_TEMPLATE_REFERENCE) comes from render_reference.mjs; see CMakeLists.txt.
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "runtime/tokenizer/jinja/chat_template.h"

namespace sparkstack {
namespace {

using Json = nlohmann::ordered_json;

// Escapes control characters so a mismatch is readable in the log.
std::string Visible(const std::string& s, size_t from, size_t count) {
  std::string out;
  for (size_t i = from; i < s.size() && i < from + count; ++i) {
    const char c = s[i];
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

TEST(ChatTemplateConformance, MatchesHuggingFaceJinja) {
  const char* path = std::getenv("CHAT_TEMPLATE_REFERENCE");
  if (path == nullptr) GTEST_SKIP() << "CHAT_TEMPLATE_REFERENCE is not set (run through ctest)";
  std::ifstream in(path);
  ASSERT_TRUE(in) << "cannot open " << path;
  std::stringstream buffer;
  buffer << in.rdbuf();
  const Json reference = Json::parse(buffer.str());
  const Json& cases = reference.at("cases");

  std::map<std::string, ChatTemplate> parsed;
  std::map<std::string, int> compared_per_model;
  int compared = 0, mismatches = 0, expected_errors = 0;
  for (const Json& c : cases) {
    const std::string source = c.at("template").get<std::string>();
    auto it = parsed.find(source);
    if (it == parsed.end()) {
      absl::StatusOr<ChatTemplate> t = ChatTemplate::Parse(source);
      if (!t.ok()) {
        ADD_FAILURE() << "parse failed: " << t.status() << "\ntemplate: " << source;
        ++mismatches;
        continue;
      }
      it = parsed.emplace(source, *std::move(t)).first;
    }
    absl::StatusOr<std::string> rendered =
        c.at("kind") == "chat"
            ? RenderChat(it->second, c.at("messages"), c.at("add_generation_prompt").get<bool>(),
                         c.at("bos_token").get<std::string>(),
                         c.at("eos_token").get<std::string>(), c.at("extra"))
            : it->second.Render(c.at("context"));
    const std::string label =
        c.at("kind") == "chat" ? "chat/" + c.at("model").get<std::string>() : "snippet";
    if (c.contains("error")) {
      ++expected_errors;
      const std::string reference_error = c.value("reference_error", "");
      if (rendered.ok()) {
        ++mismatches;
        ADD_FAILURE() << label << ": reference failed (" << reference_error
                      << ") but we rendered: " << *rendered << "\ntemplate: " << source;
      } else if (std::string(rendered.status().message()).find(reference_error) ==
                 std::string::npos) {
        // The reference cases that fail are raise_exception() calls: same message expected.
        ++mismatches;
        ADD_FAILURE() << label << ": reference raised '" << reference_error << "', we said "
                      << rendered.status();
      }
      continue;
    }
    ++compared;
    if (c.at("kind") == "chat") ++compared_per_model[c.at("model").get<std::string>()];
    const std::string expected = c.at("expected").get<std::string>();
    if (!rendered.ok()) {
      ++mismatches;
      if (mismatches <= 8) {
        ADD_FAILURE() << label << ": render failed: " << rendered.status()
                      << "\ntemplate: " << source;
      }
      continue;
    }
    if (*rendered != expected) {
      ++mismatches;
      if (mismatches <= 8) {
        size_t at = 0;
        while (at < expected.size() && at < rendered->size() && expected[at] == (*rendered)[at]) {
          ++at;
        }
        const size_t from = at > 40 ? at - 40 : 0;
        ADD_FAILURE() << label << ": first difference at byte " << at << "\n  expected: ..."
                      << Visible(expected, from, 120) << "\n  ours:     ..."
                      << Visible(*rendered, from, 120) << "\ntemplate: " << source.substr(0, 300)
                      << (c.contains("messages") ? "\nmessages: " + c.at("messages").dump() : "");
      }
    }
  }
  std::cout << "compared " << compared << " renders (" << expected_errors
            << " expected errors), mismatches: " << mismatches << "\n";
  for (const auto& [model, n] : compared_per_model) {
    std::cout << "  " << model << ": " << n << " chat renders\n";
  }
  // The three models: >= 50 conversations each, with and without generation prompt.
  for (const char* model : {"llama3_1", "qwen3", "deepseek_v3"}) {
    EXPECT_GE(compared_per_model[model], 100) << model;
  }
  EXPECT_EQ(mismatches, 0);
}

}  // namespace
}  // namespace sparkstack
