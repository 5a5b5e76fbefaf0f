// Bad input gives a clear error (file, field, expected vs found), never a crash.
#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"
#include "runtime/tokenizer/tokenizer.h"
#include "tests/unit/tokenizer/test_tokenizers.h"

namespace sparkstack::tokenizer {
namespace {

using testing::ByteLevelTokenizerJson;

// Expects FromJson to fail with `code` and a message containing every one of `parts`.
void ExpectLoadError(const nlohmann::json& j, absl::StatusCode code,
                     std::vector<std::string> parts, const std::string& config = "") {
  auto tok = Tokenizer::FromJson(j.dump(), config, "model/tokenizer.json");
  ASSERT_FALSE(tok.ok()) << j.dump().substr(0, 200);
  EXPECT_EQ(tok.status().code(), code) << tok.status();
  for (const std::string& part : parts) {
    EXPECT_NE(std::string(tok.status().message()).find(part), std::string::npos)
        << "missing '" << part << "' in: " << tok.status().message();
  }
}

TEST(TokenizerErrorsTest, MissingFileNamesThePath) {
  const auto dir = std::filesystem::temp_directory_path() / "sparkstack_tok_missing";
  std::filesystem::create_directories(dir);
  auto tok = Tokenizer::Load(dir.string());
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(std::string(tok.status().message()).find((dir / "tokenizer.json").string()),
            std::string::npos);
}

TEST(TokenizerErrorsTest, NotJson) {
  auto tok = Tokenizer::FromJson("{\"model\": ", "", "x/tokenizer.json");
  ASSERT_FALSE(tok.ok());
  EXPECT_NE(std::string(tok.status().message()).find("x/tokenizer.json: not valid JSON"),
            std::string::npos);
  tok = Tokenizer::FromJson("[1, 2]", "", "x/tokenizer.json");
  EXPECT_FALSE(tok.ok());
  auto j = ByteLevelTokenizerJson();
  tok = Tokenizer::FromJson(j.dump(), "{oops", "x/tokenizer.json");
  ASSERT_FALSE(tok.ok());
  EXPECT_NE(std::string(tok.status().message()).find("tokenizer_config.json"), std::string::npos);
}

TEST(TokenizerErrorsTest, EachMalformedPiece) {
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  const auto kUnimplemented = absl::StatusCode::kUnimplemented;
  {
    auto j = ByteLevelTokenizerJson();
    j.erase("model");
    ExpectLoadError(j, kInvalid, {"model/tokenizer.json: model", "field missing"});
  }
  {
    auto j = ByteLevelTokenizerJson();
    j["model"]["vocab"] = nlohmann::json::array();
    ExpectLoadError(j, kInvalid, {"model.vocab", "expected an object"});
  }
  {
    auto j = ByteLevelTokenizerJson();
    j["model"]["vocab"]["zz"] = "seven";
    ExpectLoadError(j, kInvalid, {"model.vocab.zz", "integer"});
  }
  {
    auto j = ByteLevelTokenizerJson();
    j["model"]["merges"][3] = "onlyone";
    ExpectLoadError(j, kInvalid, {"model.merges[3]", "two tokens"});
  }
  {
    auto j = ByteLevelTokenizerJson();
    j["model"]["merges"].push_back("q\xC3\xA7 x");
    ExpectLoadError(j, kInvalid, {"model.merges[11]", "is not in", "model.vocab"});
  }
  {
    auto j = ByteLevelTokenizerJson();
    j["model"]["merges"] = 5;
    ExpectLoadError(j, kInvalid, {"model.merges", "expected an array"});
  }
  {
    auto j = ByteLevelTokenizerJson();
    j["model"]["type"] = "Unigram";
    ExpectLoadError(j, kUnimplemented, {"model.type", "Unigram"});
  }
  {
    auto j = ByteLevelTokenizerJson();
    j["model"]["unk_token"] = "<nope>";
    ExpectLoadError(j, kInvalid, {"model.unk_token", "<nope>"});
  }
  {
    auto j = ByteLevelTokenizerJson();
    j["normalizer"] = {{"type", "Sequence"}, {"normalizers", {{{"type", "Bogus"}}}}};
    ExpectLoadError(j, kUnimplemented, {"normalizer.normalizers[0].type", "Bogus"});
  }
  {
    auto j = ByteLevelTokenizerJson();
    j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "a(?=b)"}}},
                          {"behavior", "Isolated"}};
    ExpectLoadError(j, kInvalid, {"pre_tokenizer.pattern.Regex", "look-ahead"});
  }
  {
    auto j = ByteLevelTokenizerJson();
    j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "a"}}}, {"behavior", "Sideways"}};
    ExpectLoadError(j, kInvalid, {"pre_tokenizer.behavior", "Isolated", "Sideways"});
  }
  {
    auto j = ByteLevelTokenizerJson();
    j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"use_regex", "yes"}};
    ExpectLoadError(j, kInvalid, {"pre_tokenizer.use_regex", "true or false"});
  }
  {
    auto j = ByteLevelTokenizerJson();
    j["decoder"] = {{"type", "Strip"}, {"start", 1}};
    ExpectLoadError(j, kInvalid, {"decoder.content"});
  }
  {
    auto j = ByteLevelTokenizerJson();
    j["added_tokens"] = {{{"id", 300}}};
    ExpectLoadError(j, kInvalid, {"added_tokens[0].content"});
  }
  {
    auto j = ByteLevelTokenizerJson();
    j["post_processor"] = {{"type", "TemplateProcessing"},
                           {"single", {{{"SpecialToken", {{"id", "<bos>"}}}}}},
                           {"special_tokens", nlohmann::json::object()}};
    ExpectLoadError(j, kInvalid, {"post_processor.single[0]", "<bos>"});
  }
  ExpectLoadError(ByteLevelTokenizerJson(), kInvalid, {"tokenizer_config.json", "bos_token"},
                  R"({"bos_token": "<missing>"})");
  ExpectLoadError(ByteLevelTokenizerJson(), kInvalid, {"tokenizer_config.json.eos_token"},
                  R"({"eos_token": 7})");
}

// Every field of a full tokenizer.json replaced by every JSON type: loading must either succeed
// or return an error, never crash (run under ASan/UBSan in CI).
TEST(TokenizerErrorsTest, EveryFieldWithEveryWrongTypeNeverCrashes) {
  nlohmann::json base = ByteLevelTokenizerJson();
  base["normalizer"] = {{"type", "Sequence"},
                        {"normalizers", {{{"type", "NFC"}},
                                         {{"type", "Replace"}, {"pattern", {{"String", "x"}}}, {"content", "y"}},
                                         {{"type", "Prepend"}, {"prepend", "p"}}}}};
  base["pre_tokenizer"] = {{"type", "Sequence"},
                           {"pretokenizers", {{{"type", "Split"}, {"pattern", {{"Regex", "\\s+"}}},
                                               {"behavior", "Isolated"}, {"invert", false}},
                                              {{"type", "Digits"}, {"individual_digits", true}},
                                              {{"type", "ByteLevel"}, {"add_prefix_space", false}}}}};
  base["added_tokens"] = {testing::AddedTokenJson(300, "<s>", true)};
  base["post_processor"] = {{"type", "TemplateProcessing"},
                            {"single", {{{"SpecialToken", {{"id", "<s>"}}}}, {{"Sequence", {{"id", "A"}}}}}},
                            {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {300}}}}}}};
  const std::vector<nlohmann::json> replacements = {nullptr, 5, -1, "x", nlohmann::json::array(),
                                                    nlohmann::json::object(), true, 1.5};
  const nlohmann::json flat = base.flatten();
  int errors = 0;
  for (auto it = flat.begin(); it != flat.end(); ++it) {
    const std::string pointer = it.key();
    if (pointer.rfind("/model/vocab/", 0) == 0 && pointer != "/model/vocab/h") continue;
    if (pointer.rfind("/model/merges/", 0) == 0 && pointer != "/model/merges/0") continue;
    for (const auto& value : replacements) {
      nlohmann::json broken = base;
      broken[nlohmann::json::json_pointer(pointer)] = value;
      auto tok = Tokenizer::FromJson(broken.dump(), "");
      if (!tok.ok()) {
        ++errors;
        EXPECT_FALSE(tok.status().message().empty());
        continue;
      }
      // Whatever loaded must still encode and decode without crashing.
      auto ids = (*tok)->Encode("Hello 123 <s>x\xC3\xA9", true);
      ASSERT_TRUE(ids.ok()) << pointer;
      EXPECT_TRUE((*tok)->Decode(*ids, false).ok());
    }
  }
  EXPECT_GT(errors, 50);
}

TEST(TokenizerErrorsTest, InvalidUtf8InputAndBadIds) {
  auto tok = Tokenizer::FromJson(ByteLevelTokenizerJson().dump(), "");
  ASSERT_TRUE(tok.ok());
  auto ids = (*tok)->Encode("hel\xC3(lo", false);
  ASSERT_FALSE(ids.ok());
  EXPECT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(ids.status().message()).find("byte offset 3"), std::string::npos)
      << ids.status();
  auto text = (*tok)->Decode(std::vector<int32_t>{104, 99999}, false);
  ASSERT_FALSE(text.ok());
  EXPECT_NE(std::string(text.status().message()).find("99999"), std::string::npos);
  text = (*tok)->Decode(std::vector<int32_t>{-1}, false);
  EXPECT_FALSE(text.ok());
}

}  // namespace
}  // namespace sparkstack::tokenizer
