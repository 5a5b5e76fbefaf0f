#!/usr/bin/env node
// Test tool: converts a tiny Hugging Face checkpoint (config.json + model.safetensors, tensors in
// F32/BF16/F16) into a GGUF v3 file with every tensor stored as F32, so that llama.cpp can serve as an
// independent reference for sparkstack's forward pass. Written from the GGUF and safetensors specs.
//
// Usage: node hf_to_gguf.mjs HF_DIR OUT.gguf
//
// Supported: LlamaForCausalLM (arch "llama", optional llama3 rope scaling) and Qwen3ForCausalLM
// (arch "qwen3"). Only token ids matter to the harness, so the vocabulary written is a dummy
// SentencePiece-style ("llama") vocabulary with the right number of entries.
//
// Two layout facts this converter relies on (checked against the llama.cpp sources shipped inside
// node-llama-cpp 3.22.1, src/llama-model.cpp llama_model_rope_type and ggml-cpu rope):
//  * llama.cpp's "llama" arch uses NORM rope (rotates adjacent pairs 2i, 2i+1), while HF Llama rotates
//    halves (i, i + d/2). So the rows of q_proj/k_proj are permuted per head: GGUF row 2i+p of a head is
//    HF row p*d/2 + i. "qwen3" uses NEOX rope (halves), like HF, so no permutation there.
//  * llama3 rope scaling is expressed as a "rope_freqs.weight" tensor of n_rot/2 factors; ggml divides
//    each base angle by its factor (theta / ff[i]). We compute ff[i] = inv_freq[i] / scaled_inv_freq[i]
//    with HF's llama3 rule.

import fs from 'node:fs';
import path from 'node:path';
import { convertMoe, isMoeArch } from './moe_to_gguf.mjs';

// ---------------------------------------------------------------- safetensors reading

function bf16ToF32Array(u16) {
  const out = new Float32Array(u16.length);
  const u32 = new Uint32Array(out.buffer);
  for (let i = 0; i < u16.length; ++i) u32[i] = u16[i] << 16;
  return out;
}

function f16ToF32(h) {
  const s = (h & 0x8000) ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

export function readSafetensors(file) {
  const buf = fs.readFileSync(file);
  if (buf.length < 8) throw new Error(`${file}: too short for a safetensors header`);
  const headerLen = Number(buf.readBigUInt64LE(0));
  if (8 + headerLen > buf.length) throw new Error(`${file}: header length ${headerLen} exceeds file size ${buf.length}`);
  const header = JSON.parse(buf.subarray(8, 8 + headerLen).toString('utf8'));
  const dataStart = 8 + headerLen;
  const tensors = new Map();
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [begin, end] = info.data_offsets;
    const bytes = buf.subarray(dataStart + begin, dataStart + end);
    const count = info.shape.reduce((a, b) => a * b, 1);
    // Copy into an aligned buffer: the slice may start at any byte offset.
    const aligned = new Uint8Array(bytes.length);
    aligned.set(bytes);
    let data;
    if (info.dtype === 'F32') {
      data = new Float32Array(aligned.buffer);
    } else if (info.dtype === 'BF16') {
      data = bf16ToF32Array(new Uint16Array(aligned.buffer));
    } else if (info.dtype === 'F16') {
      const u16 = new Uint16Array(aligned.buffer);
      data = new Float32Array(u16.length);
      for (let i = 0; i < u16.length; ++i) data[i] = f16ToF32(u16[i]);
    } else {
      throw new Error(`${file}: tensor ${name} has dtype ${info.dtype}; only F32, BF16, F16 are supported`);
    }
    if (data.length !== count) {
      throw new Error(`${file}: tensor ${name} shape [${info.shape}] needs ${count} values, found ${data.length}`);
    }
    tensors.set(name, { shape: info.shape.slice(), data });
  }
  return tensors;
}

// model.safetensors, or the shards listed by model.safetensors.index.json.
export function readCheckpointTensors(hfDir) {
  const single = path.join(hfDir, 'model.safetensors');
  if (fs.existsSync(single)) return readSafetensors(single);
  const indexFile = path.join(hfDir, 'model.safetensors.index.json');
  if (!fs.existsSync(indexFile)) throw new Error(`${hfDir}: neither model.safetensors nor model.safetensors.index.json exists`);
  const index = JSON.parse(fs.readFileSync(indexFile, 'utf8'));
  const all = new Map();
  for (const shard of new Set(Object.values(index.weight_map ?? {}))) {
    for (const [name, t] of readSafetensors(path.join(hfDir, shard))) all.set(name, t);
  }
  return all;
}

// ---------------------------------------------------------------- GGUF writing

const GGUF = { U32: 4, I32: 5, F32: 6, BOOL: 7, STRING: 8, ARRAY: 9, U64: 10 };
const GGML_TYPE_F32 = 0;
const ALIGNMENT = 32;

class ByteWriter {
  constructor() { this.chunks = []; this.length = 0; }
  push(b) { this.chunks.push(b); this.length += b.length; }
  u32(v) { const b = Buffer.alloc(4); b.writeUInt32LE(v); this.push(b); }
  i32(v) { const b = Buffer.alloc(4); b.writeInt32LE(v); this.push(b); }
  u64(v) { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); this.push(b); }
  f32(v) { const b = Buffer.alloc(4); b.writeFloatLE(v); this.push(b); }
  str(s) { const b = Buffer.from(s, 'utf8'); this.u64(b.length); this.push(b); }
  pad(alignment) {
    const rem = this.length % alignment;
    if (rem) this.push(Buffer.alloc(alignment - rem));
  }
  buffer() { return Buffer.concat(this.chunks, this.length); }
}

// kv: array of [key, type, value]; for arrays value = {elemType, items}.
function writeValue(w, type, value) {
  switch (type) {
    case GGUF.U32: w.u32(value); break;
    case GGUF.I32: w.i32(value); break;
    case GGUF.F32: w.f32(value); break;
    case GGUF.BOOL: w.push(Buffer.from([value ? 1 : 0])); break;
    case GGUF.STRING: w.str(value); break;
    case GGUF.U64: w.u64(value); break;
    case GGUF.ARRAY:
      w.u32(value.elemType);
      w.u64(value.items.length);
      for (const item of value.items) writeValue(w, value.elemType, item);
      break;
    default: throw new Error(`unsupported GGUF value type ${type}`);
  }
}

// tensors: array of {name, dims (GGUF order: ne[0] innermost), data: Float32Array}
export function writeGguf(file, kv, tensors) {
  const w = new ByteWriter();
  w.push(Buffer.from('GGUF', 'ascii'));
  w.u32(3);
  w.u64(tensors.length);
  w.u64(kv.length);
  for (const [key, type, value] of kv) {
    w.str(key);
    w.u32(type);
    writeValue(w, type, value);
  }
  let offset = 0;
  const offsets = [];
  for (const t of tensors) {
    const count = t.dims.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) throw new Error(`tensor ${t.name}: dims [${t.dims}] need ${count} values, have ${t.data.length}`);
    w.str(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(GGML_TYPE_F32);
    w.u64(offset);
    offsets.push(offset);
    offset += t.data.length * 4;
    offset = Math.ceil(offset / ALIGNMENT) * ALIGNMENT;
  }
  w.pad(ALIGNMENT);
  const dataStart = w.length;
  for (let i = 0; i < tensors.length; ++i) {
    const t = tensors[i];
    const rel = w.length - dataStart;
    if (rel < offsets[i]) w.push(Buffer.alloc(offsets[i] - rel));
    w.push(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  w.pad(ALIGNMENT);
  fs.writeFileSync(file, w.buffer());
}

// ---------------------------------------------------------------- HF -> GGUF mapping

// HF rotate-half layout -> llama.cpp adjacent-pair layout, per head. rows x cols row-major.
export function permuteRopeRows(data, nHeads, rows, cols) {
  if (rows % nHeads !== 0) throw new Error(`cannot split ${rows} rows into ${nHeads} heads`);
  const hd = rows / nHeads;
  if (hd % 2 !== 0) throw new Error(`head dim ${hd} is odd; rope needs pairs`);
  const half = hd / 2;
  const out = new Float32Array(data.length);
  for (let h = 0; h < nHeads; ++h) {
    for (let i = 0; i < half; ++i) {
      for (let p = 0; p < 2; ++p) {
        const src = h * hd + p * half + i;
        const dst = h * hd + 2 * i + p;
        out.set(data.subarray(src * cols, (src + 1) * cols), dst * cols);
      }
    }
  }
  return out;
}

// HF's llama3 rule, returned as ggml divisors: ff[i] = inv_freq[i] / scaled_inv_freq[i].
export function llama3RopeFactors(headDim, base, scaling) {
  const factor = scaling.factor;
  const low = scaling.low_freq_factor ?? 1.0;
  const high = scaling.high_freq_factor ?? 4.0;
  const oldCtx = scaling.original_max_position_embeddings ?? 8192;
  const lowWavelen = oldCtx / low;
  const highWavelen = oldCtx / high;
  const out = new Float32Array(headDim / 2);
  for (let i = 0; i < headDim / 2; ++i) {
    const invFreq = 1.0 / Math.pow(base, (2 * i) / headDim);
    const wavelen = 2 * Math.PI / invFreq;
    let scaled;
    if (wavelen < highWavelen) {
      scaled = invFreq;
    } else if (wavelen > lowWavelen) {
      scaled = invFreq / factor;
    } else {
      const smooth = (oldCtx / wavelen - low) / (high - low);
      scaled = (1 - smooth) * invFreq / factor + smooth * invFreq;
    }
    out[i] = invFreq / scaled;
  }
  return out;
}

export function dummyVocab(n) {
  // "llama" (SentencePiece) vocab: <unk>=0, <s>=1, </s>=2, then byte tokens so llama.cpp finds a
  // newline token, then filler. Token types: 1 normal, 2 unknown, 3 control, 6 byte.
  const tokens = [], scores = [], types = [];
  for (let i = 0; i < n; ++i) {
    let tok, type;
    if (i === 0) { tok = '<unk>'; type = 2; }
    else if (i === 1) { tok = '<s>'; type = 3; }
    else if (i === 2) { tok = '</s>'; type = 3; }
    else if (i < 3 + 256) { tok = `<0x${(i - 3).toString(16).toUpperCase().padStart(2, '0')}>`; type = 6; }
    else { tok = `\u2581tok${i}`; type = 1; }
    tokens.push(tok); scores.push(-i); types.push(type);
  }
  return { tokens, scores, types };
}

function firstId(v, fallback) {
  if (Array.isArray(v)) return v.length ? v[0] : fallback;
  return v ?? fallback;
}

// The checkpoint's tensors with `get(name, shape)` (checked, marked used) and the GGUF tensor list
// with `add(ggufName, t, data)` (dims are the PyTorch shape reversed: ne[0] is the innermost,
// contiguous dimension).
function tensorReader(hfDir) {
  const st = readCheckpointTensors(hfDir);
  const used = new Set();
  const get = (name, shape) => {
    const t = st.get(name);
    if (!t) throw new Error(`${hfDir}/checkpoint: missing tensor ${name}`);
    if (shape && (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))) {
      throw new Error(`${hfDir}/checkpoint: tensor ${name} has shape [${t.shape}], expected [${shape}]`);
    }
    used.add(name);
    return t;
  };
  const tensors = [];
  const add = (ggufName, t, data = t.data) => tensors.push({ name: ggufName, dims: t.shape.slice().reverse(), data });
  return { st, used, get, tensors, add };
}

export function convert(hfDir, outFile) {
  const configPath = path.join(hfDir, 'config.json');
  const cfg = JSON.parse(fs.readFileSync(configPath, 'utf8'));
  const archName = (cfg.architectures ?? [])[0];
  let arch;
  if (archName === 'LlamaForCausalLM') arch = 'llama';
  else if (archName === 'Qwen3ForCausalLM') arch = 'qwen3';
  else if (isMoeArch(cfg.model_type)) return convertMoeCheckpoint(hfDir, cfg, configPath, outFile);
  else throw new Error(`${configPath}: architectures[0] is ${JSON.stringify(archName)}; expected LlamaForCausalLM, Qwen3ForCausalLM, Qwen3MoeForCausalLM, DeepseekV3ForCausalLM, Glm4MoeForCausalLM or MiniMaxM2ForCausalLM`);

  const need = (k) => {
    if (cfg[k] === undefined) throw new Error(`${configPath}: missing field ${k}`);
    return cfg[k];
  };
  const hidden = need('hidden_size');
  const nLayers = need('num_hidden_layers');
  const nHeads = need('num_attention_heads');
  const nKv = cfg.num_key_value_heads ?? nHeads;
  const headDim = cfg.head_dim ?? hidden / nHeads;
  const vocab = need('vocab_size');
  const ffn = need('intermediate_size');
  const eps = cfg.rms_norm_eps ?? 1e-6;
  const base = cfg.rope_theta ?? 10000.0;
  const ctx = cfg.max_position_embeddings ?? 2048;
  const tied = cfg.tie_word_embeddings ?? false;
  const ropeScaling = cfg.rope_scaling ?? null;
  const ropeType = ropeScaling ? (ropeScaling.rope_type ?? ropeScaling.type) : null;
  if (ropeType && ropeType !== 'default' && !(arch === 'llama' && ropeType === 'llama3')) {
    throw new Error(`${configPath}: rope_scaling type ${ropeType} not supported for ${arch} (only llama3 on llama)`);
  }

  const { st, used, get, tensors, add } = tensorReader(hfDir);

  add('token_embd.weight', get('model.embed_tokens.weight', [vocab, hidden]));
  add('output_norm.weight', get('model.norm.weight', [hidden]));
  if (!tied) {
    add('output.weight', get('lm_head.weight', [vocab, hidden]));
  } else if (st.has('lm_head.weight')) {
    used.add('lm_head.weight');
  }
  if (arch === 'llama' && ropeType === 'llama3') {
    const ff = llama3RopeFactors(headDim, base, ropeScaling);
    tensors.push({ name: 'rope_freqs.weight', dims: [ff.length], data: ff });
  }
  for (let l = 0; l < nLayers; ++l) {
    const p = `model.layers.${l}.`;
    const b = `blk.${l}.`;
    add(b + 'attn_norm.weight', get(p + 'input_layernorm.weight', [hidden]));
    const q = get(p + 'self_attn.q_proj.weight', [nHeads * headDim, hidden]);
    const k = get(p + 'self_attn.k_proj.weight', [nKv * headDim, hidden]);
    if (arch === 'llama') {
      add(b + 'attn_q.weight', q, permuteRopeRows(q.data, nHeads, nHeads * headDim, hidden));
      add(b + 'attn_k.weight', k, permuteRopeRows(k.data, nKv, nKv * headDim, hidden));
    } else {
      add(b + 'attn_q.weight', q);
      add(b + 'attn_k.weight', k);
      add(b + 'attn_q_norm.weight', get(p + 'self_attn.q_norm.weight', [headDim]));
      add(b + 'attn_k_norm.weight', get(p + 'self_attn.k_norm.weight', [headDim]));
    }
    add(b + 'attn_v.weight', get(p + 'self_attn.v_proj.weight', [nKv * headDim, hidden]));
    add(b + 'attn_output.weight', get(p + 'self_attn.o_proj.weight', [hidden, nHeads * headDim]));
    add(b + 'ffn_norm.weight', get(p + 'post_attention_layernorm.weight', [hidden]));
    add(b + 'ffn_gate.weight', get(p + 'mlp.gate_proj.weight', [ffn, hidden]));
    add(b + 'ffn_up.weight', get(p + 'mlp.up_proj.weight', [ffn, hidden]));
    add(b + 'ffn_down.weight', get(p + 'mlp.down_proj.weight', [hidden, ffn]));
  }
  const unused = [...st.keys()].filter((n) => !used.has(n) && !n.endsWith('rotary_emb.inv_freq'));
  if (unused.length) throw new Error(`${hfDir}/checkpoint: tensors not understood by the converter: ${unused.join(', ')}`);

  const v = dummyVocab(vocab);
  const U32 = GGUF.U32, F32 = GGUF.F32;
  const kv = [
    ['general.architecture', GGUF.STRING, arch],
    ['general.name', GGUF.STRING, `sparkstack-conformance-${arch}`],
    ['general.alignment', U32, ALIGNMENT],
    ['general.file_type', U32, 0],
    [`${arch}.context_length`, U32, ctx],
    [`${arch}.embedding_length`, U32, hidden],
    [`${arch}.block_count`, U32, nLayers],
    [`${arch}.feed_forward_length`, U32, ffn],
    [`${arch}.attention.head_count`, U32, nHeads],
    [`${arch}.attention.head_count_kv`, U32, nKv],
    [`${arch}.attention.key_length`, U32, headDim],
    [`${arch}.attention.value_length`, U32, headDim],
    [`${arch}.rope.dimension_count`, U32, headDim],
    [`${arch}.rope.freq_base`, F32, base],
    [`${arch}.attention.layer_norm_rms_epsilon`, F32, eps],
    [`${arch}.vocab_size`, U32, vocab],
    ['tokenizer.ggml.model', GGUF.STRING, 'llama'],
    ['tokenizer.ggml.tokens', GGUF.ARRAY, { elemType: GGUF.STRING, items: v.tokens }],
    ['tokenizer.ggml.scores', GGUF.ARRAY, { elemType: F32, items: v.scores }],
    ['tokenizer.ggml.token_type', GGUF.ARRAY, { elemType: GGUF.I32, items: v.types }],
    ['tokenizer.ggml.bos_token_id', U32, firstId(cfg.bos_token_id, 1)],
    ['tokenizer.ggml.eos_token_id', U32, firstId(cfg.eos_token_id, 2)],
    ['tokenizer.ggml.add_bos_token', GGUF.BOOL, false],
  ];
  writeGguf(outFile, kv, tensors);
  return { arch, tensors: tensors.length };
}

// The MoE families (moe_to_gguf.mjs): the same embedding/output tensors and vocabulary as above.
function convertMoeCheckpoint(hfDir, cfg, configPath, outFile) {
  const { st, used, get, tensors, add } = tensorReader(hfDir);
  const H = cfg.hidden_size;
  add('token_embd.weight', get('model.embed_tokens.weight', [cfg.vocab_size, H]));
  add('output_norm.weight', get('model.norm.weight', [H]));
  if (!cfg.tie_word_embeddings) add('output.weight', get('lm_head.weight', [cfg.vocab_size, H]));
  const { arch, kv } = convertMoe(cfg, configPath, get, add, tensors);
  const mtpFrom = cfg.num_hidden_layers;
  const unused = [...st.keys()].filter((n) => {
    if (used.has(n) || n.endsWith('rotary_emb.inv_freq')) return false;
    const m = n.match(/^model\.layers\.(\d+)\./);
    return !(m && Number(m[1]) >= mtpFrom);  // multi-token-prediction layers are skipped
  });
  if (unused.length) throw new Error(`${hfDir}/checkpoint: tensors not understood by the converter: ${unused.join(', ')}`);
  const v = dummyVocab(cfg.vocab_size);
  writeGguf(outFile, [
    ['general.architecture', GGUF.STRING, arch],
    ['general.name', GGUF.STRING, `sparkstack-conformance-${arch}`],
    ['general.alignment', GGUF.U32, ALIGNMENT],
    ['general.file_type', GGUF.U32, 0],
    ...kv,
    ['tokenizer.ggml.model', GGUF.STRING, 'llama'],
    ['tokenizer.ggml.tokens', GGUF.ARRAY, { elemType: GGUF.STRING, items: v.tokens }],
    ['tokenizer.ggml.scores', GGUF.ARRAY, { elemType: GGUF.F32, items: v.scores }],
    ['tokenizer.ggml.token_type', GGUF.ARRAY, { elemType: GGUF.I32, items: v.types }],
    ['tokenizer.ggml.bos_token_id', GGUF.U32, firstId(cfg.bos_token_id, 1)],
    ['tokenizer.ggml.eos_token_id', GGUF.U32, firstId(cfg.eos_token_id, 2)],
    ['tokenizer.ggml.add_bos_token', GGUF.BOOL, false],
  ], tensors);
  return { arch, tensors: tensors.length };
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('hf_to_gguf.mjs')) {
  const [hfDir, out] = process.argv.slice(2);
  if (!hfDir || !out) {
    console.error('usage: node hf_to_gguf.mjs HF_DIR OUT.gguf');
    process.exit(2);
  }
  try {
    const r = convert(hfDir, out);
    console.error(`hf_to_gguf: wrote ${out} (${r.arch}, ${r.tensors} tensors)`);
  } catch (e) {
    console.error(`hf_to_gguf: ${e.message}`);
    process.exit(1);
  }
}
