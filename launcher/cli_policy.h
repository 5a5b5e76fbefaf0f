// Rules every subcommand's options follow, applied in one place (main) so that commands written
// by different people behave the same and no command can forget them:
//   - defaults are shown in --help ("[16]"), by option_defaults set on the root app before the
//     commands register (see main.cc);
//   - integers are decimal: "010" is ten (not eight, as strtoll's base 0 would read it), "0x10"
//     and "1e3" are refused;
//   - unsigned options (seeds, counts) refuse negative values instead of wrapping "-1" around
//     to 18446744073709551615;
//   - CLI11's NonNegativeNumber / PositiveNumber errors say "must be >= 0, found -1" instead of
//     printing the range up to DBL_MAX (a 309-digit number);
//   - options named --timeout are seconds to wait and must be positive.
#ifndef SPARKSTACK_LAUNCHER_CLI_POLICY_H_
#define SPARKSTACK_LAUNCHER_CLI_POLICY_H_

#include "CLI/CLI.hpp"

namespace sparkstack::launcher {

// Applies the rules above to every option of every subcommand of `root` (recursively). Call once,
// after all commands are added and before parsing.
void ApplyCliPolicy(CLI::App& root);

}  // namespace sparkstack::launcher

#endif  // SPARKSTACK_LAUNCHER_CLI_POLICY_H_
