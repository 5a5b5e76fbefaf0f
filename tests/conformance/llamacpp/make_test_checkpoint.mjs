#!/usr/bin/env node
// Dev/self-test tool: writes a tiny random Hugging Face checkpoint (config.json + model.safetensors)
// for LlamaForCausalLM or Qwen3ForCausalLM, independent of sparkstack, so the converter and the
// llama.cpp runner can be validated against reference_forward.mjs without the sparkstack binary.
//
// Usage: node make_test_checkpoint.mjs --arch llama|qwen3 --out DIR --hidden N --intermediate N
//   --layers N --heads N --kv-heads N --head-dim N --vocab N [--tie-embeddings]
//   [--rope-scaling llama3] [--seed S] [--dtype f32|bf16]

import fs from 'node:fs';
import path from 'node:path';

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

function f32ToBf16(x) {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0];
  const rounding = 0x7fff + ((u >> 16) & 1);
  return ((u + rounding) >>> 16) & 0xffff;
}

export function writeSafetensors(file, tensors, dtype) {
  // tensors: array of [name, shape, Float32Array, optional dtype overriding `dtype`]
  const header = {};
  let offset = 0;
  const bufs = [];
  for (const [name, shape, data, own] of tensors) {
    const dt = own ?? dtype;
    let bytes;
    if (dt === 'f32') {
      bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    } else if (dt === 'bf16') {
      const u16 = new Uint16Array(data.length);
      for (let i = 0; i < data.length; ++i) u16[i] = f32ToBf16(data[i]);
      bytes = Buffer.from(u16.buffer);
    } else {
      throw new Error(`unsupported dtype ${dt}`);
    }
    header[name] = { dtype: dt.toUpperCase(), shape, data_offsets: [offset, offset + bytes.length] };
    offset += bytes.length;
    bufs.push(bytes);
  }
  let json = JSON.stringify(header);
  while ((json.length + 8) % 8 !== 0) json += ' ';
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  fs.writeFileSync(file, Buffer.concat([len, Buffer.from(json), ...bufs]));
}

export function makeCheckpoint(o) {
  const rnd = mulberry32(o.seed ?? 1);
  const uni = (n, scale) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; ++i) a[i] = (rnd() * 2 - 1) * scale;
    return a;
  };
  const norm = (n) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; ++i) a[i] = 1 + (rnd() * 2 - 1) * 0.2;
    return a;
  };
  const { hidden: H, intermediate: F, layers: L, heads: NH, kvHeads: NKV, headDim: HD, vocab: V } = o;
  const t = [];
  const lin = (name, out, inp) => t.push([name, [out, inp], uni(out * inp, Math.sqrt(3 / inp))]);
  t.push(['model.embed_tokens.weight', [V, H], uni(V * H, 1.0)]);
  for (let l = 0; l < L; ++l) {
    const p = `model.layers.${l}.`;
    t.push([p + 'input_layernorm.weight', [H], norm(H)]);
    lin(p + 'self_attn.q_proj.weight', NH * HD, H);
    lin(p + 'self_attn.k_proj.weight', NKV * HD, H);
    lin(p + 'self_attn.v_proj.weight', NKV * HD, H);
    lin(p + 'self_attn.o_proj.weight', H, NH * HD);
    if (o.arch === 'qwen3') {
      t.push([p + 'self_attn.q_norm.weight', [HD], norm(HD)]);
      t.push([p + 'self_attn.k_norm.weight', [HD], norm(HD)]);
    }
    t.push([p + 'post_attention_layernorm.weight', [H], norm(H)]);
    lin(p + 'mlp.gate_proj.weight', F, H);
    lin(p + 'mlp.up_proj.weight', F, H);
    lin(p + 'mlp.down_proj.weight', H, F);
  }
  t.push(['model.norm.weight', [H], norm(H)]);
  if (!o.tieEmbeddings) lin('lm_head.weight', V, H);
  const cfg = {
    architectures: [o.arch === 'qwen3' ? 'Qwen3ForCausalLM' : 'LlamaForCausalLM'],
    model_type: o.arch,
    hidden_size: H, intermediate_size: F, num_hidden_layers: L, num_attention_heads: NH,
    num_key_value_heads: NKV, head_dim: HD, vocab_size: V, rms_norm_eps: 1e-5,
    rope_theta: o.arch === 'qwen3' ? 1000000.0 : 500000.0, max_position_embeddings: 4096,
    tie_word_embeddings: !!o.tieEmbeddings, bos_token_id: 1, eos_token_id: 2,
    hidden_act: 'silu', attention_bias: false, torch_dtype: o.dtype === 'bf16' ? 'bfloat16' : 'float32',
  };
  if (o.ropeScaling === 'llama3') {
    // original_max_position_embeddings small enough that, with head_dim 32, all three llama3 regimes
    // (kept, divided, smoothed) occur.
    cfg.rope_scaling = { rope_type: 'llama3', factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0,
      original_max_position_embeddings: 256 };
  }
  fs.mkdirSync(o.out, { recursive: true });
  fs.writeFileSync(path.join(o.out, 'config.json'), JSON.stringify(cfg, null, 2));
  writeSafetensors(path.join(o.out, 'model.safetensors'), t, o.dtype ?? 'f32');
}

if (process.argv[1] && path.basename(process.argv[1]) === 'make_test_checkpoint.mjs') {
  const a = process.argv.slice(2);
  const o = { arch: 'llama', seed: 1, dtype: 'f32' };
  const num = { '--hidden': 'hidden', '--intermediate': 'intermediate', '--layers': 'layers', '--heads': 'heads',
    '--kv-heads': 'kvHeads', '--head-dim': 'headDim', '--vocab': 'vocab', '--seed': 'seed' };
  for (let i = 0; i < a.length; ++i) {
    if (num[a[i]]) o[num[a[i]]] = Number(a[++i]);
    else if (a[i] === '--arch') o.arch = a[++i];
    else if (a[i] === '--out') o.out = a[++i];
    else if (a[i] === '--dtype') o.dtype = a[++i];
    else if (a[i] === '--rope-scaling') o.ropeScaling = a[++i];
    else if (a[i] === '--tie-embeddings') o.tieEmbeddings = true;
    else { console.error(`make_test_checkpoint: unknown argument ${a[i]}`); process.exit(2); }
  }
  makeCheckpoint(o);
}
