// Deterministic tokenizer conformance corpus (seeded PRNG, no external data).
// Usage as a module: import { makeCorpus } from './make_corpus.mjs'; makeCorpus(seed) -> string[]
// Usage as a script: node make_corpus.mjs [seed] > corpus.jsonl (one JSON string per line).
// Categories: English prose, source code, CJK, emoji/ZWJ, mixed scripts (incl. decomposed
// accents for NFC), whitespace runs, digits/numbers, contractions, special tokens inside text,
// very long words, random Unicode soup.

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = ('the of and to in is was for on that with as by at from his her they their this ' +
  'have had not are but be which one all were when there been would she an we can more if out ' +
  'so said what up its about into than them only other time new some could these two may first ' +
  'then do any like my now over such our man me even most made after also did many before must ' +
  'through back years where much your way well down should because each just those people how ' +
  'too little state good very make world still own see men work long get here between both life ' +
  'being under never day same another know while last might us great old year off come since ' +
  'against go came right used take three tokenizer throughput latency inference distributed ' +
  'quantization Transformer Hugging Face NVIDIA Spark München naïve café résumé coöperate').split(' ');

const CODE = [
  'def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n',
  '#include <vector>\nint main() {\n\tstd::vector<int> v{1, 2, 3};\n\treturn v.size() == 3 ? 0 : 1;\n}\n',
  'const x = await fetch(`https://example.com/api?q=${encodeURIComponent(q)}`);\n',
  '{"name": "sparkstack", "version": "0.1.0", "deps": ["absl", "re2"], "ok": true}',
  'for (let i = 0; i < 10; ++i) { console.log(i * i); } // squares',
  'SELECT id, name FROM users WHERE age >= 18 AND name LIKE \'%son\' ORDER BY id DESC;',
  '    if (x != nullptr && *x == \'\\n\') {\r\n        return -1;\r\n    }\r\n',
  'fn main() -> Result<(), Box<dyn Error>> {\n    println!("{:?}", vec![1u8, 2, 3]);\n    Ok(())\n}',
  '<div class="a b">&nbsp;&lt;tag&gt;</div>\n<!-- comment -->',
  'x = [i**2 for i in range(100) if i % 3 == 0]  # list comprehension',
  '$ git commit -m "Fix: handle \\r\\n" && echo $?',
  'a_b_c = __init__.__dict__["__name__"]; CamelCaseName; snake_case_name; kebab-case-name',
];

const CJK = ['我们今天去公园散步，天气非常好。', '人工智能正在改变世界！', '東京タワーは赤いです。',
  'ひらがなとカタカナ、そして漢字。', '안녕하세요, 만나서 반갑습니다.', '中文，English，日本語。混合',
  '「引用」『二重』（括弧）【見出し】', '一二三四五六七八九十百千万亿', 'ｆｕｌｌｗｉｄｔｈ　ＡＢＣ　１２３',
  '繁體中文與简体中文', '한국어 문장입니다 123 테스트', 'ｶﾀｶﾅ半角'];

const EMOJI = ['😀', '👍🏽', '👨‍👩‍👧‍👦', '🏳️‍🌈', '🇺🇸', '🇯🇵', '❤️', '🧑🏿‍💻', '👩‍❤️‍💋‍👨', '🤷‍♀️', '✨',
  '🔥🔥🔥', '©️', '#️⃣', '🫠', '🐈‍⬛', '1️⃣', '🏴󠁧󠁢󠁳󠁣󠁴󠁿'];

const SCRIPTS = ['Привет, мир! Как дела?', 'Γειά σου Κόσμε', 'مرحبا بالعالم', 'שלום עולם',
  'नमस्ते दुनिया', 'สวัสดีชาวโลก', 'Xin chào thế giới', 'Ελληνικά και русский и English',
  'e\u0301cole cafe\u0301 n\u0303 A\u030A', 'Zalgo: Z\u0351\u036b\u0343a\u0310\u0313l\u0357g\u0344o',
  'ﬁ ﬂ ﬀ Ǆ ǅ ǆ ß ẞ İ ı', 'tiếng Việt có dấu', 'ქართული ენა', 'Հայերեն', 'አማርኛ', 'ᠮᠣᠩᠭᠣᠯ',
  'Ωμέγα ohm Ω Kelvin K Å', '\u00a0nbsp\u2009thin\u3000ideographic\u200bzwsp\u2028ls'];

const SPECIALS = ['<|begin_of_text|>', '<|end_of_text|>', '<|eot_id|>', '<|start_header_id|>',
  '<|end_header_id|>', '<|reserved_special_token_5|>', '<|im_start|>', '<|im_end|>',
  '<|endoftext|>', '<think>', '</think>', '<tool_call>', '<|fim_prefix|>',
  '<｜begin▁of▁sentence｜>', '<｜end▁of▁sentence｜>', '<｜User｜>', '<｜Assistant｜>',
  '<|im_start', 'im_end|>', '<|', '|>', '<s>', '</s>', '[INST]', '<unk>'];

const SPACES = [' ', '  ', '   ', '\t', '\t\t', '\n', '\n\n', '\r\n', ' \n ', '\u00a0', '\u3000',
  '\u2009', '\u000b', '\u000c', '    \n    ', '\n\n\n\n', ' \t \t', '\u0085', '\u2028'];

const CONTRACTIONS = ["I'm", "you're", "they've", "she'll", "he'd", "it's", "don't", "CAN'T",
  "WE'LL", "It'S", "o'clock", "rock'n'roll", "’s", "l’homme", "''", "'''", "'S'T", "y'all'd've"];

export function makeCorpus(seed = 20261122, count = 2400) {
  const rnd = mulberry32(seed);
  const int = (n) => Math.floor(rnd() * n);
  const pick = (arr) => arr[int(arr.length)];
  const words = (n) => Array.from({length: n}, () => pick(WORDS)).join(' ');
  const sentence = () => {
    const s = words(3 + int(15));
    return s[0].toUpperCase() + s.slice(1) + pick(['.', '!', '?', ',', ';', ':', '...', ' —', '']);
  };
  const number = () => {
    switch (int(8)) {
      case 0: return String(int(10 ** (1 + int(9))));
      case 1: return (rnd() * 10 ** int(7)).toFixed(int(5));
      case 2: return int(1e9).toLocaleString('en-US');
      case 3: return '٠١٢٣٤٥٦٧٨٩'.slice(0, 1 + int(10));
      case 4: return '１２３４５';
      case 5: return Array.from({length: 20 + int(60)}, () => int(10)).join('');
      case 6: return `${int(256)}.${int(256)}.${int(256)}.${int(256)}`;
      default: return `-${int(1000)}e${int(40)} ½ ² ³ Ⅻ ①`;
    }
  };
  const longWord = () => {
    const len = 200 + int(3000);
    switch (int(6)) {
      case 0: return 'a'.repeat(len);
      case 1: return Array.from({length: len}, () => String.fromCharCode(97 + int(26))).join('');
      case 2: return Array.from({length: len}, () => pick(['A', 'b', '0', '+', '/', '='])).join('');
      case 3: return 'https://example.com/' + Array.from({length: len / 8}, () => pick(WORDS)).join('/');
      case 4: return '漢字'.repeat(len / 4);
      default: return pick(EMOJI).repeat(len / 20);
    }
  };
  const unicodeSoup = () => {
    const n = 1 + int(40);
    let s = '';
    for (let i = 0; i < n; ++i) {
      let cp;
      switch (int(4)) {
        case 0: cp = 0x20 + int(0x5f); break;
        case 1: cp = 0xa0 + int(0x2000); break;
        case 2: cp = 0x3000 + int(0x7000); break;
        default: cp = 0x10000 + int(0x20000); break;
      }
      if (cp >= 0xd800 && cp <= 0xdfff) cp = 0x41;
      s += String.fromCodePoint(cp);
    }
    return s;
  };
  const piece = () => {
    switch (int(11)) {
      case 0: return sentence();
      case 1: return pick(CODE);
      case 2: return pick(CJK);
      case 3: return pick(EMOJI);
      case 4: return pick(SCRIPTS);
      case 5: return pick(SPACES).repeat(1 + int(6));
      case 6: return number();
      case 7: return pick(CONTRACTIONS);
      case 8: return pick(SPECIALS);
      case 9: return unicodeSoup();
      default: return words(1 + int(4));
    }
  };
  const glue = () => pick(['', ' ', ' ', ' ', '\n', '  ', '\t', '']);

  const corpus = ['', ' ', '\n', 'a', 'Hello world', ' Hello', 'Hello ', '  Hello  world  ',
    'hello\n\nworld', '\t\tindented', '   \n', 'x  \ny', "I'm here, you're there.",
    '<|begin_of_text|>Hello<|eot_id|>', '<|im_start|>user\nhi<|im_end|>', '12345678901234567890'];
  // Each category on its own, then random mixtures of 1..8 pieces.
  for (const list of [WORDS.slice(0, 40), CODE, CJK, EMOJI, SCRIPTS, SPACES, CONTRACTIONS, SPECIALS]) {
    for (const item of list) corpus.push(item);
  }
  let longWords = 0;
  while (corpus.length < count) {
    if (int(40) === 0 && longWords < 60) {
      ++longWords;
      corpus.push(pick(['', ' ', 'x ']) + longWord() + pick(['', ' end', '!']));
      continue;
    }
    const n = 1 + int(8);
    let s = '';
    for (let i = 0; i < n; ++i) s += (i ? glue() : pick(['', '', ' ', '\n'])) + piece();
    corpus.push(s);
  }
  return corpus;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const seed = process.argv[2] ? Number(process.argv[2]) : undefined;
  for (const s of makeCorpus(seed)) process.stdout.write(JSON.stringify(s) + '\n');
}
