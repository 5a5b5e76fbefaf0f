#include "launcher/cli_policy.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <string>
#include <string_view>

namespace sparkstack::launcher {
namespace {

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// Validators see the raw text before CLI11 converts it; they may rewrite it (leading zeros).
CLI::Validator DecimalInteger(bool is_unsigned) {
  return CLI::Validator(
      [is_unsigned](std::string& input) -> std::string {
        std::string_view digits = input;
        const bool negative = !digits.empty() && digits.front() == '-';
        if (negative || (!digits.empty() && digits.front() == '+')) digits.remove_prefix(1);
        if (!AllDigits(digits)) {
          return "expected " + std::string(is_unsigned ? "a non-negative" : "an") +
                 " integer in decimal, found '" + input + "'";
        }
        if (negative && is_unsigned) {
          return "must not be negative (expected an integer >= 0), found " + input;
        }
        // "010" means ten: drop leading zeros so that strtoll's base detection cannot read octal.
        const size_t first = std::min(digits.find_first_not_of('0'), digits.size() - 1);
        input = (negative ? "-" : "") + std::string(digits.substr(first));
        // Beyond 64 bits CLI11 would only say "Could not convert".
        errno = 0;
        if (is_unsigned) {
          std::strtoull(input.c_str(), nullptr, 10);
        } else {
          std::strtoll(input.c_str(), nullptr, 10);
        }
        if (errno == ERANGE) return "'" + input + "' is out of range for a 64-bit integer";
        return "";
      },
      "", "SPARKSTACK_DECIMAL");
}

// Replaces the message of CLI11's NonNegativeNumber / PositiveNumber (Ranges up to DBL_MAX that
// print both bounds with std::to_string), keeping the check. They carry their name as the
// validator's description ("NONNEGATIVE", "POSITIVE"), which is what --help shows.
void HumanizeRanges(CLI::Option* option) {
  for (int i = 0;; ++i) {
    CLI::Validator* validator = nullptr;
    try {
      validator = option->get_validator(i);
    } catch (const CLI::OptionNotFound&) {
      return;
    }
    const std::string description = validator->get_description();
    if (description != "NONNEGATIVE" && description != "POSITIVE") continue;
    const bool strictly_positive = description == "POSITIVE";
    validator->operation([strictly_positive](std::string& input) -> std::string {
      double value = 0;
      if (!CLI::detail::lexical_cast(input, value)) {
        return "expected a number, found '" + input + "'";
      }
      if (strictly_positive ? value > 0 : value >= 0) return "";
      return std::string(strictly_positive ? "must be > 0" : "must be >= 0") + ", found " + input;
    });
  }
}

CLI::Validator PositiveSeconds() {
  return CLI::Validator(
      [](std::string& input) -> std::string {
        double value = 0;
        if (CLI::detail::lexical_cast(input, value) && value > 0) return "";
        return "must be a positive number of seconds, found " + input;
      },
      "", "SPARKSTACK_POSITIVE_SECONDS");
}

void ApplyToApp(CLI::App& app) {
  for (CLI::Option* option : app.get_options()) {
    if (option->get_expected_max() == 0) continue;  // flags take no value
    HumanizeRanges(option);
    // get_type_name() is the value type ("INT", "UINT", "FLOAT", "TEXT") plus ":" validators.
    const std::string type = option->get_type_name();
    const std::string base = type.substr(0, type.find(':'));
    if (base == "INT" || base == "UINT") option->check(DecimalInteger(base == "UINT"));
    if (option->check_lname("timeout")) option->check(PositiveSeconds());
  }
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) ApplyToApp(*sub);
}

}  // namespace

void ApplyCliPolicy(CLI::App& root) { ApplyToApp(root); }

}  // namespace sparkstack::launcher
