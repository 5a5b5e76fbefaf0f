// Unit tests for the chat-template Jinja subset. Expected strings follow Jinja's documented
// semantics (Python), worked out by hand; the byte-for-byte comparison with @huggingface/jinja
// lives in tests/conformance/chat_template.
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "runtime/tokenizer/jinja/chat_template.h"

namespace sparkstack {
namespace {

using ::testing::HasSubstr;
using OJson = nlohmann::ordered_json;

absl::StatusOr<std::string> TryRender(const std::string& source, const std::string& context = "{}") {
  absl::StatusOr<ChatTemplate> t = ChatTemplate::Parse(source);
  if (!t.ok()) return t.status();
  return t->Render(OJson::parse(context));
}

std::string Render(const std::string& source, const std::string& context = "{}") {
  absl::StatusOr<std::string> out = TryRender(source, context);
  EXPECT_TRUE(out.ok()) << out.status() << "\ntemplate: " << source;
  return out.ok() ? *out : "<error>";
}

std::string ErrorOf(const std::string& source, const std::string& context = "{}") {
  absl::StatusOr<std::string> out = TryRender(source, context);
  EXPECT_FALSE(out.ok()) << "rendered: " << (out.ok() ? *out : "") << "\ntemplate: " << source;
  return out.ok() ? "" : std::string(out.status().message());
}

TEST(ChatTemplateWhitespace, TrimBlocksAndLstripBlocks) {
  // trim_blocks drops the newline after a block tag; lstrip_blocks the indentation before it.
  EXPECT_EQ(Render("a\n  {% if true %}\n  b\n  {% endif %}\nc"), "a\n  b\nc");
  // Expression tags are not block tags: nothing is trimmed around them.
  EXPECT_EQ(Render("  {{ 'x' }}\n|"), "  x\n|");
  // Comments count as blocks for both.
  EXPECT_EQ(Render("a\n  {# note #}\nb"), "a\nb");
  // Text before the tag on the same line keeps its spaces.
  EXPECT_EQ(Render("x  {% if true %}y{% endif %}"), "x  y");
  // '+' turns lstrip_blocks off for one tag.
  EXPECT_EQ(Render("  {%+ if true %}y{% endif %}"), "  y");
  // One trailing newline of the template is dropped, not two.
  EXPECT_EQ(Render("x\n\n"), "x\n");
}

TEST(ChatTemplateWhitespace, DashModifiers) {
  EXPECT_EQ(Render("a \n {{- 'b' -}} \n c"), "abc");
  EXPECT_EQ(Render("a \n {%- if true -%} \n b \n {%- endif -%} \n c"), "abc");
  EXPECT_EQ(Render("a  {#- comment -#}  b"), "ab");
  EXPECT_EQ(Render("{%- set x = 1 -%}\n\n{{ x }}"), "1");
}

TEST(ChatTemplateStatements, IfElifElse) {
  const std::string t = "{% if n > 10 %}big{% elif n > 5 %}mid{% else %}small{% endif %}";
  EXPECT_EQ(Render(t, R"({"n": 11})"), "big");
  EXPECT_EQ(Render(t, R"({"n": 6})"), "mid");
  EXPECT_EQ(Render(t, R"({"n": 1})"), "small");
  EXPECT_EQ(Render("{% if x %}yes{% endif %}"), "");  // undefined is false
}

TEST(ChatTemplateStatements, ForLoopVariables) {
  EXPECT_EQ(Render("{% for x in 'abc' %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}"
                   "{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }};"
                   "{% endfor %}"),
            "1032truefalse3;2121falsefalse3;3210falsetrue3;");
  EXPECT_EQ(Render("{% for x in [1,2,3] %}{{ loop.previtem }}-{{ loop.nextitem }},{% endfor %}"),
            "-2,1-3,2-,");
  EXPECT_EQ(Render("{% for x in [1,2,3] %}{{ loop.cycle('a','b') }}{% endfor %}"), "aba");
  // The filter runs before the loop, so loop.length counts only kept items.
  EXPECT_EQ(Render("{% for x in range(10) if x is even %}{{ x }}/{{ loop.length }} {% endfor %}"),
            "0/5 2/5 4/5 6/5 8/5 ");
  EXPECT_EQ(Render("{% for x in [] %}x{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(Render("{% for x in undefined_thing %}x{% else %}none{% endfor %}"), "none");
  EXPECT_EQ(Render("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}{{ v }}{% endfor %}"),
            "a1b2");
  EXPECT_EQ(Render("{% for x in range(6) %}{% if x == 1 %}{% continue %}{% endif %}"
                   "{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}"),
            "023");
  EXPECT_EQ(Render("{% for a in [1,2] %}{% for b in [3,4] %}{{ a }}{{ b }}{{ loop.index }} "
                   "{% endfor %}{{ loop.index }}|{% endfor %}"),
            "131 142 1|231 242 2|");
}

TEST(ChatTemplateStatements, SetScopingAndNamespace) {
  EXPECT_EQ(Render("{% set x = 1 %}{% for i in [5] %}{% set x = i %}{{ x }}{% endfor %}{{ x }}"),
            "51");
  EXPECT_EQ(Render("{% set x = 1 %}{% if true %}{% set x = 2 %}{% endif %}{{ x }}"), "2");
  EXPECT_EQ(Render("{% set ns = namespace(n=0, s='') %}{% for i in range(4) %}"
                   "{% set ns.n = ns.n + i %}{% set ns.s = ns.s ~ i %}{% endfor %}{{ ns.n }}/{{ ns.s }}"),
            "6/0123");
  EXPECT_EQ(Render("{% set a, b = [1, 2] %}{{ b }}{{ a }}"), "21");
  EXPECT_EQ(Render("{% set t %}x{{ 1 + 1 }}y{% endset %}[{{ t }}]"), "[x2y]");
  EXPECT_THAT(ErrorOf("{% set d = {} %}{% set d.x = 1 %}"), HasSubstr("namespace"));
}

TEST(ChatTemplateStatements, MacrosAndCallBlocks) {
  EXPECT_EQ(Render("{% macro m(a, b='B', c=a ~ '!') %}{{ a }}{{ b }}{{ c }}{% endmacro %}"
                   "{{ m('x') }} {{ m('x', c='C') }} {{ m(b='2', a='1') }}"),
            "xBx! xBC 12" "1!");
  EXPECT_EQ(Render("{% macro m() %}{{ varargs | length }}{{ kwargs.k }}{% endmacro %}{{ m(1, 2, k='v') }}"),
            "2v");
  EXPECT_EQ(Render("{% macro list(items) %}{% for i in items %}{{ caller(i) }}{% endfor %}{% endmacro %}"
                   "{% call(item) list([1, 2]) %}<{{ item }}>{% endcall %}"),
            "<1><2>");
  EXPECT_EQ(Render("{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(3) }}"),
            "321");
}

TEST(ChatTemplateStatements, FilterBlockRawDoGeneration) {
  EXPECT_EQ(Render("{% filter upper | replace('A', '4') %}abc{{ 'a' }}{% endfilter %}"), "4BC4");
  EXPECT_EQ(Render("{% raw %}{{ x }}{% if %}{% endraw %}"), "{{ x }}{% if %}");
  EXPECT_EQ(Render("{% set l = [1] %}{% do l.append(2) %}{{ l }}"), "[1, 2]");
  EXPECT_EQ(Render("a{% generation %}b{% endgeneration %}c"), "abc");
}

TEST(ChatTemplateExpressions, ArithmeticFollowsPython) {
  EXPECT_EQ(Render("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 2 ** -1 }}"),
            "3 -4 1 2 3.5 1024 0.5");
  EXPECT_EQ(Render("{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ -2 ** 2 }} {{ 10 - 2 - 3 }}"), "7 9 4 5");
  EXPECT_EQ(Render("{{ 0.1 + 0.2 }} {{ 1.5 * 2 }} {{ 1e3 }} {{ 2.5e-3 }}"),
            "0.30000000000000004 3.0 1000.0 0.0025");
  EXPECT_EQ(Render("{{ 'ab' * 3 }} {{ [0] * 2 }} {{ 'a' ~ 1 ~ 2.0 ~ none ~ true }}"),
            "ababab [0, 0] a12.0true");
  EXPECT_THAT(ErrorOf("{{ 1 // 0 }}"), HasSubstr("division"));
  EXPECT_THAT(ErrorOf("{{ 9223372036854775807 + 1 }}"), HasSubstr("overflow"));
  EXPECT_THAT(ErrorOf("{{ x + 1 }}"), HasSubstr("undefined"));
  EXPECT_THAT(ErrorOf("{{ none + 1 }}"), HasSubstr("unsupported operand"));
}

TEST(ChatTemplateExpressions, ComparisonsLogicAndMembership) {
  EXPECT_EQ(Render("{{ 1 == 1.0 }} {{ 'a' < 'b' }} {{ [1, 2] == [1, 2] }} {{ {'a': 1} == {'a': 1} }}"),
            "true true true true");
  EXPECT_EQ(Render("{{ 0 or 'x' }} {{ 1 and 'y' }} {{ [] or 'empty' }} {{ not '' }}"),
            "x y empty true");
  EXPECT_EQ(Render("{{ 2 in [1, 2] }} {{ 'b' in 'abc' }} {{ 'k' in {'k': 1} }} {{ 'x' not in 'abc' }}"
                   " {{ 1 in undefined_list }}"),
            "true true true true false");
  EXPECT_EQ(Render("{{ 'a' if false }}|{{ 'a' if 0 else 'b' if 1 else 'c' }}"), "|b");
}

TEST(ChatTemplateExpressions, IndexingSlicingAttributes) {
  const std::string ctx = R"({"l": [1, 2, 3, 4, 5], "s": "héllo", "d": {"a": {"b": [10, 20]}}})";
  EXPECT_EQ(Render("{{ l[0] }}{{ l[-1] }}{{ l[9] }}|{{ l[1:3] }}{{ l[::-2] }}{{ l[-2:] }}{{ l[:0] }}", ctx),
            "15|[2, 3][5, 3, 1][4, 5][]");
  EXPECT_EQ(Render("{{ s[1] }}{{ s[::-1] }}{{ s[1:3] }}", ctx), "éolléhél");
  EXPECT_EQ(Render("{{ d.a.b[1] }}{{ d['a']['b'].0 }}{{ d.missing }}{{ d.missing.deeper }}", ctx),
            "2010");
  EXPECT_EQ(Render("{{ 'tab\\there' }}|{{ \"q\\\"\" }}|{{ '\\u00e9\\x41' }}|{{ 'a' 'b' }}"),
            "tab\there|q\"|éA|ab");
}

TEST(ChatTemplateOutput, ValueFormatting) {
  // @huggingface/jinja's conventions, which the conformance tests pin down.
  EXPECT_EQ(Render("[{{ none }}][{{ undefined }}][{{ true }}][{{ 1.0 }}][{{ [1, 'a', none] }}][{{ {'k': 'v'} }}]"),
            "[][][true][1.0][[1, \"a\", null]][{\"k\": \"v\"}]");
  EXPECT_EQ(Render("{{ x }}", R"({"x": 2.0})"), "2");  // integral JSON numbers are integers
}

TEST(ChatTemplateFilters, Strings) {
  EXPECT_EQ(Render("{{ '  a b \n' | trim }}|{{ 'xxaxx' | trim('x') }}|{{ 'hello world' | title }}|"
                   "{{ 'hELLO' | capitalize }}|{{ 'Ab' | upper }}{{ 'Ab' | lower }}"),
            "a b|a|Hello World|Hello|ABab");
  EXPECT_EQ(Render("{{ 'aaa' | replace('a', 'b', 2) }}|{{ 'one two  three' | wordcount }}|"
                   "{{ '<a&b>' | escape }}|{{ 'x' | safe }}|{{ 'héllo' | length }}"),
            "bba|3|&lt;a&amp;b&gt;|x|5");
  EXPECT_EQ(Render("{{ 'a\nb\n\nc' | indent(2) }}|{{ 'a\nb' | indent(2, true) }}|{{ 'a\n\nb' | indent('>', blank=true) }}"),
            "a\n  b\n\n  c|  a\n  b|a\n>\n>b");
  EXPECT_EQ(Render("{{ '%s=%d' | format('x', 3) }}|{{ 'abc' | reverse }}|{{ 'abc' | list | join('-') }}"),
            "x=3|cba|a-b-c");
}

TEST(ChatTemplateFilters, Numbers) {
  EXPECT_EQ(Render("{{ '42' | int }} {{ '4x' | int }} {{ '4x' | int(7) }} {{ 3.9 | int }} {{ -3.9 | int }}"
                   " {{ '1F' | int(0, 16) }} {{ '2.5' | float }} {{ 'no' | float }} {{ -4 | abs }} {{ -2.5 | abs }}"),
            "42 0 7 3 -3 31 2.5 0.0 4 2.5");
  EXPECT_EQ(Render("{{ 2.567 | round(2) }} {{ 2.5 | round }} {{ 2.1 | round(0, 'ceil') }} {{ 2.9 | round(method='floor') }}"),
            "2.57 2.0 3.0 2.0");
  EXPECT_EQ(Render("{{ [1, 2, 3] | sum }} {{ [1, 2.5] | sum }} {{ [3, 1, 2] | max }} {{ [3, 1, 2] | min }}"),
            "6 3.5 3 1");
}

TEST(ChatTemplateFilters, Collections) {
  const std::string ctx = R"({"users": [{"name": "bo", "age": 30, "admin": true},
                                        {"name": "al", "age": 25, "admin": false},
                                        {"name": "cy", "age": 35}]})";
  EXPECT_EQ(Render("{{ users | map(attribute='name') | join(',') }}|"
                   "{{ users | sort(attribute='age') | map(attribute='name') | join }}|"
                   "{{ users | sort(attribute='name', reverse=true) | map(attribute='name') | join }}|"
                   "{{ users | selectattr('admin') | map(attribute='name') | join }}|"
                   "{{ users | rejectattr('admin') | map(attribute='name') | join }}|"
                   "{{ users | selectattr('age', 'gt', 28) | map(attribute='name') | join }}|"
                   "{{ users | map(attribute='admin', default='?') | join }}|"
                   "{{ users | join(',', attribute='age') }}",
                   ctx),
            "bo,al,cy|albocy|cyboal|bo|alcy|bocy|truefalse?|30,25,35");
  EXPECT_EQ(Render("{{ [3, 1, 2] | sort }} {{ ['b', 'A', 'c'] | sort }} {{ ['b', 'A'] | sort(case_sensitive=true) }}"
                   " {{ [1, 2, 3, 4] | select('odd') }} {{ [1, 2, 3, 4] | reject('odd') }} {{ ['a', 'A', 'b'] | unique }}"),
            "[1, 2, 3] [\"A\", \"b\", \"c\"] [\"A\", \"b\"] [1, 3] [2, 4] [\"a\", \"b\"]");
  EXPECT_EQ(Render("{{ {'b': 1, 'a': 2} | dictsort }} {{ {'b': 1, 'a': 2} | dictsort(by='value', reverse=true) }}"
                   " {{ {'b': 1} | items }} {{ [1, 2, 3] | first }}{{ [1, 2, 3] | last }} {{ [] | first }}"
                   " {{ range(5) | batch(2) }} {{ ['1', '2'] | map('int') | sum }} {{ [1, 2] | reverse }}"),
            "[[\"a\", 2], [\"b\", 1]] [[\"a\", 2], [\"b\", 1]] [[\"b\", 1]] 13  [[0, 1], [2, 3], [4]] 3 [2, 1]");
  EXPECT_EQ(Render("{{ x | default('d') }} {{ '' | default('d') }} {{ '' | default('d', true) }} {{ none | d('n') }}"),
            "d  d ");
  EXPECT_EQ(Render("{{ [1, 2] | length }} {{ {'a': 1} | count }} {{ x | length }} {{ (1, 2) | list }}"),
            "2 1 0 [1, 2]");
}

TEST(ChatTemplateFilters, ToJson) {
  const std::string ctx = R"({"o": {"b": [1, {"c": null}], "a": "é\n\"", "e": [], "f": {}}})";
  EXPECT_EQ(Render("{{ o | tojson }}", ctx),
            R"({"b": [1, {"c": null}], "a": "é\n\"", "e": [], "f": {}})");
  EXPECT_EQ(Render("{{ o | tojson(indent=2) }}", ctx),
            "{\n  \"b\": [\n    1,\n    {\n      \"c\": null\n    }\n  ],\n  \"a\": \"é\\n\\\"\",\n"
            "  \"e\": [],\n  \"f\": {}\n}");
  EXPECT_EQ(Render("{{ o | tojson(sort_keys=true, separators=(',', ':')) }}", ctx),
            R"({"a":"é\n\"","b":[1,{"c":null}],"e":[],"f":{}})");
  EXPECT_EQ(Render("{{ '😀é' | tojson(ensure_ascii=true) }}"), R"("\ud83d\ude00\u00e9")");
  EXPECT_EQ(Render("{{ [1.5, 2.0, 1e21, true, none, '\x01'] | tojson }}"),
            R"([1.5, 2, 1e+21, true, null, "\u0001"])");
  // Key order follows the input with ordered_json; nlohmann::json input arrives sorted.
  absl::StatusOr<ChatTemplate> t = ChatTemplate::Parse("{{ o | tojson }}");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t->Render(nlohmann::json::parse(R"({"o": {"z": 1, "a": 2}})")), R"({"a": 2, "z": 1})");
  EXPECT_EQ(*t->Render(OJson::parse(R"({"o": {"z": 1, "a": 2}})")), R"({"z": 1, "a": 2})");
}

TEST(ChatTemplateTests, BuiltinTests) {
  const std::string ctx = R"({"n": 7, "f": 1.5, "s": "ab", "l": [1], "d": {"k": 1}, "z": null, "b": false})";
  EXPECT_EQ(Render("{{ n is defined }}{{ q is defined }}{{ q is undefined }}{{ z is none }}{{ z is defined }}"
                   "{{ n is none }}",
                   ctx),
            "truefalsetruetruetruefalse");
  EXPECT_EQ(Render("{{ n is number }}{{ n is integer }}{{ f is float }}{{ s is string }}{{ d is mapping }}"
                   "{{ l is iterable }}{{ s is sequence }}{{ b is boolean }}{{ b is false }}{{ b is true }}",
                   ctx),
            "truetruetruetruetruetruetruetruetruefalse");
  EXPECT_EQ(Render("{{ n is odd }}{{ n is even }}{{ 9 is divisibleby 3 }}{{ n is divisibleby(2) }}"
                   "{{ n is eq 7 }}{{ n is equalto(7) }}{{ n is ne 7 }}{{ s is in ['ab'] }}{{ n is not none }}"
                   "{{ 'AB' is upper }}{{ 'ab' is lower }}{{ range is callable }}{{ n is gt 3 }}{{ n is lt 3 }}",
                   ctx),
            "truefalsetruefalsetruetruefalsetruetruetruetruetruetruefalse");
  EXPECT_THAT(ErrorOf("{{ 1 is nonsense }}"), HasSubstr("unknown test 'nonsense'"));
}

TEST(ChatTemplateMethods, StringDictList) {
  EXPECT_EQ(Render("{{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a b c'.split(' ', 1) }} {{ 'x'.split('y') }}"),
            "[\"a\", \"b\", \"\", \"c\"] [\"a\", \"b\"] [\"a\", \"b c\"] [\"x\"]");
  EXPECT_EQ(Render("{{ '\n\nx\n '.lstrip('\n') }}|{{ ' x\n'.rstrip('\n') }}|{{ 'xyx'.strip('x') }}|{{ '  y '.strip() }}"),
            "x\n | x|y|y");
  EXPECT_EQ(Render("{{ 'hello'.startswith('he') }}{{ 'hello'.startswith(('x', 'h')) }}{{ 'hello'.endswith('x') }}"
                   "{{ 'Hello World'.upper() }}{{ 'they are'.title() }}{{ 'aXb'.replace('X', '-') }}"
                   "{{ 'abcb'.find('b') }}{{ 'abcb'.count('b') }}{{ '-'.join(['a', 'b']) }}"),
            "truetruefalseHELLO WORLDThey Area-b12a-b");
  EXPECT_EQ(Render("{{ '{} and {name}'.format(1, name='n') }} {{ '12'.isdigit() }} {{ 'a1'.isalpha() }}"),
            "1 and n true false");
  EXPECT_EQ(Render("{% set d = {'a': 1, 'b': 2} %}{{ d.get('a') }}{{ d.get('x') }}{{ d.get('x', 0) }}"
                   "{{ d.keys() }}{{ d.values() }}{{ d.items() }}"),
            "10[\"a\", \"b\"][1, 2][[\"a\", 1], [\"b\", 2]]");
  EXPECT_EQ(Render("{% set l = [] %}{% set _ = l.append(1) %}{% set _ = l.extend([2, 3]) %}{{ l.pop() }}{{ l }}"
                   "{{ l.index(2) }}{{ l.count(1) }}"),
            "3[1, 2]11");
}

TEST(ChatTemplateGlobals, RangeNamespaceDictStrftime) {
  EXPECT_EQ(Render("{{ range(3) }}{{ range(1, 7, 2) }}{{ range(3, 0, -1) }}{{ dict(a=1) }}"),
            "[0, 1, 2][1, 3, 5][3, 2, 1]{\"a\": 1}");
  const std::string year = Render("{{ strftime_now('%Y') }}");
  EXPECT_EQ(year.size(), 4u);
  EXPECT_EQ(Render("{% set ns = namespace({'a': 1}, b=2) %}{{ ns.a }}{{ ns.b }}"), "12");
}

TEST(ChatTemplateErrors, RaiseException) {
  absl::StatusOr<std::string> out =
      TryRender("line one\n{% if true %}{{ raise_exception('Only user and assistant roles!') }}{% endif %}");
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(out.status().message(), HasSubstr("raised an exception at line 2"));
  EXPECT_THAT(out.status().message(), HasSubstr("Only user and assistant roles!"));
}

TEST(ChatTemplateErrors, SyntaxErrorsNameLineAndColumn) {
  struct Case {
    const char* source;
    const char* fragment;
  };
  const Case cases[] = {
      {"ab\n{% for x in y %}", "line 2, column 17: unexpected end of template: expected 'else' or 'endfor'"},
      {"{{ x ", "unterminated expression"},
      {"{% if %}", "line 1, column 7: unexpected '%}' in expression"},
      {"x\n  {% frobnicate %}", "line 2, column 6: unknown statement 'frobnicate'"},
      {"{{ 'abc }}", "unterminated string"},
      {"{{ a $ b }}", "unexpected character '$'"},
      {"{# never closed", "unterminated comment"},
      {"{% endif %}", "unknown statement 'endif'"},
      {"{{ f(a=1, 2) }}", "positional argument after keyword argument"},
      {"{% for x in y %}{% endif %}", "unknown statement 'endif'"},
      {"{{ [1, 2 }}", "expected ']'"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<ChatTemplate> t = ChatTemplate::Parse(c.source);
    ASSERT_FALSE(t.ok()) << c.source;
    const std::string message(t.status().message());
    EXPECT_THAT(message, HasSubstr("syntax error")) << c.source;
    EXPECT_THAT(message, HasSubstr(c.fragment)) << c.source;
  }
}

TEST(ChatTemplateErrors, RenderErrorsNamePosition) {
  EXPECT_THAT(ErrorOf("a\n{{ nope() }}"), HasSubstr("line 2, column 4: 'nope' is not callable (it is undefined)"));
  EXPECT_THAT(ErrorOf("{{ 'x' | frob }}"), HasSubstr("unknown filter 'frob'"));
  EXPECT_THAT(ErrorOf("{% for x in 3 %}{% endfor %}"), HasSubstr("cannot iterate over a integer"));
  EXPECT_THAT(ErrorOf("{{ 1 < 'a' }}"), HasSubstr("cannot compare integer with string"));
  EXPECT_THAT(ErrorOf("{% set a, b = [1] %}"), HasSubstr("cannot unpack 1 values into 2"));
  // Undefined values print as empty, as Jinja's default Undefined does.
  EXPECT_EQ(Render("[{{ nothing }}{{ nothing.attr }}{{ nothing['k'] }}]"), "[]");
}

TEST(ChatTemplateErrors, LimitsStopRunawayTemplates) {
  EXPECT_THAT(ErrorOf("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}"), HasSubstr("recursion too deep"));
  EXPECT_THAT(ErrorOf("{% for i in range(100000000) %}{% endfor %}"), HasSubstr("too much work"));
  EXPECT_THAT(ErrorOf("{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}"),
              HasSubstr("too much work"));
  EXPECT_THAT(ErrorOf("{% set ns = namespace(s='xxxxxxxxxxxxxxxx') %}{% for i in range(40) %}"
                      "{% set ns.s = ns.s ~ ns.s %}{% endfor %}"),
              HasSubstr("exceeds the limit"));
  EXPECT_THAT(ErrorOf("{{ 'x' * 1000000000000 }}"), HasSubstr("exceeds the limit"));
  const std::string deep = "{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}";
  absl::StatusOr<ChatTemplate> t = ChatTemplate::Parse(deep);
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(t.status().message(), HasSubstr("nested too deeply"));
  std::string deep_ifs;
  for (int i = 0; i < 3000; ++i) deep_ifs += "{% if true %}";
  EXPECT_FALSE(ChatTemplate::Parse(deep_ifs).ok());
}

TEST(ChatTemplateErrors, DeepValuesAreRefused) {
  // Input: deeply nested JSON in a message fails cleanly instead of overflowing the stack.
  std::string deep_json = std::string(100000, '[') + std::string(100000, ']');
  absl::StatusOr<ChatTemplate> t = ChatTemplate::Parse("{{ x }}");
  ASSERT_TRUE(t.ok());
  OJson ctx;
  ctx["x"] = OJson::parse(deep_json);
  absl::StatusOr<std::string> out = t->Render(ctx);
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("nested deeper"));
  // Values the template builds.
  EXPECT_THAT(ErrorOf("{% set ns = namespace(x=[]) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}"
                      "{% endfor %}"),
              HasSubstr("nested deeper"));
  EXPECT_THAT(ErrorOf("{% set l = [] %}{% do l.append(l) %}"), HasSubstr("itself"));
  EXPECT_EQ(Render("{% set l = [[1]] %}{% do l.append([2]) %}{{ l }}"), "[[1], [2]]");
}

TEST(ChatTemplateErrors, GarbageNeverCrashes) {
  // Every prefix of a real template, and byte soup, must parse or fail cleanly.
  const std::string real =
      "{%- for m in messages %}{{ '<|' + m['role'] + '|>' + m.content | trim }}{% if loop.last %}"
      "{{ x | tojson(indent=2) }}{% endif %}{% endfor %}{% if add_generation_prompt %}A:{% endif %}";
  for (size_t n = 0; n <= real.size(); ++n) {
    absl::StatusOr<ChatTemplate> t = ChatTemplate::Parse(real.substr(0, n));
    if (t.ok()) (void)t->Render(OJson::parse(R"({"messages": [{"role": "u", "content": " c "}]})"));
  }
  uint32_t state = 12345;
  const char alphabet[] = "{}%#-+()[]|.,:'\"\\ \nabcifnorxyz0123=<>~*/";
  for (int i = 0; i < 300; ++i) {
    std::string s;
    for (int k = 0; k < 40; ++k) {
      state = state * 1664525u + 1013904223u;
      s.push_back(alphabet[(state >> 16) % (sizeof(alphabet) - 1)]);
    }
    absl::StatusOr<ChatTemplate> t = ChatTemplate::Parse(s);
    if (t.ok()) (void)t->Render(OJson::object());
  }
  // Invalid UTF-8 in data passes through untouched.
  absl::StatusOr<ChatTemplate> t = ChatTemplate::Parse("{{ s | upper }}{{ s | length }}");
  ASSERT_TRUE(t.ok());
  OJson ctx;
  ctx["s"] = std::string("a\xff\xfe");
  EXPECT_TRUE(t->Render(ctx).ok());
}

TEST(RenderChat, SetsTheUsualVariables) {
  absl::StatusOr<ChatTemplate> t = ChatTemplate::Parse(
      "{{ bos_token }}{% for m in messages %}[{{ m.role }}:{{ m.content }}]{% endfor %}"
      "{% if tools %}T{{ tools | length }}{% endif %}{% if add_generation_prompt %}>{% endif %}{{ eos_token }}");
  ASSERT_TRUE(t.ok()) << t.status();
  const nlohmann::json messages = nlohmann::json::parse(R"([{"role": "user", "content": "hi"}])");
  EXPECT_EQ(*RenderChat(*t, messages, true, "<s>", "</s>"), "<s>[user:hi]></s>");
  EXPECT_EQ(*RenderChat(*t, messages, false, "", "", nlohmann::json::parse(R"({"tools": [1, 2]})")),
            "[user:hi]T2");
  EXPECT_EQ(*RenderChat(*t, messages, false, "", "", nlohmann::json::parse(R"({"bos_token": "B"})")),
            "B[user:hi]");
  EXPECT_FALSE(RenderChat(*t, nlohmann::json::object(), false, "", "").ok());
  EXPECT_FALSE(RenderChat(*t, messages, false, "", "", nlohmann::json::array()).ok());
  EXPECT_FALSE(t->Render(nlohmann::json::array()).ok());
}

TEST(RenderChat, ConcurrentRendersOfOneTemplate) {
  absl::StatusOr<ChatTemplate> t = ChatTemplate::Parse(
      "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{{ m.content }}{% endfor %}{{ ns.n }}");
  ASSERT_TRUE(t.ok());
  const ChatTemplate copy = *t;  // copies share the parse tree
  std::vector<std::thread> threads;
  std::vector<std::string> results(4);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      OJson messages = OJson::array();
      for (int k = 0; k <= i; ++k) messages.push_back({{"role", "user"}, {"content", std::to_string(k)}});
      for (int rep = 0; rep < 50; ++rep) results[i] = *RenderChat(copy, messages, false, "", "");
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(results[0], "01");
  EXPECT_EQ(results[3], "01234");
}

}  // namespace
}  // namespace sparkstack
