#!/usr/bin/env node
// Float64 reference forward pass in Hugging Face semantics (rotate-half rope, llama3 inv_freq rule,
// Qwen3 per-head q/k RMSNorm), read straight from the HF checkpoint. Used by the harness self-test to
// validate hf_to_gguf.mjs + run_llamacpp.mjs independently of sparkstack, and to localise
// disagreements (it can dump per-layer hidden states).
//
// Usage: node reference_forward.mjs HF_DIR --prompt-ids 1,2,3 [--max-tokens 16]
// Prints {"last_logits": [...], "output_ids": [...]} (greedy, full recompute each step).

import fs from 'node:fs';
import path from 'node:path';
import { readCheckpointTensors } from './hf_to_gguf.mjs';
import { isMoeArch } from './moe_to_gguf.mjs';
import { MoeReferenceModel } from './moe_reference.mjs';

function invFreqs(cfg, hd) {
  const base = cfg.rope_theta ?? 10000.0;
  const out = new Float64Array(hd / 2);
  const rs = cfg.rope_scaling;
  const type = rs ? (rs.rope_type ?? rs.type) : null;
  for (let i = 0; i < hd / 2; ++i) {
    const f = 1.0 / Math.pow(base, (2 * i) / hd);
    if (type === 'llama3') {
      const factor = rs.factor, low = rs.low_freq_factor ?? 1, high = rs.high_freq_factor ?? 4;
      const old = rs.original_max_position_embeddings ?? 8192;
      const wl = 2 * Math.PI / f;
      if (wl < old / high) out[i] = f;
      else if (wl > old / low) out[i] = f / factor;
      else {
        const s = (old / wl - low) / (high - low);
        out[i] = (1 - s) * f / factor + s * f;
      }
    } else {
      out[i] = f;
    }
  }
  return out;
}

function rmsnorm(x, w, eps, off = 0, n = x.length) {
  let ss = 0;
  for (let i = 0; i < n; ++i) ss += x[off + i] * x[off + i];
  const r = 1 / Math.sqrt(ss / n + eps);
  const out = new Float64Array(n);
  for (let i = 0; i < n; ++i) out[i] = x[off + i] * r * w[i];
  return out;
}

function matvec(W, rows, cols, x) {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; ++r) {
    let s = 0;
    const o = r * cols;
    for (let c = 0; c < cols; ++c) s += W[o + c] * x[c];
    out[r] = s;
  }
  return out;
}

export class ReferenceModel {
  // options.brokenRouting: see moe_reference.mjs (MoE configs only).
  constructor(hfDir, options = {}) {
    this.cfg = JSON.parse(fs.readFileSync(path.join(hfDir, 'config.json'), 'utf8'));
    if (isMoeArch(this.cfg.model_type)) {
      this.moe = new MoeReferenceModel(hfDir, options);
      return;
    }
    const st = readCheckpointTensors(hfDir);
    this.w = (n) => {
      const t = st.get(n);
      if (!t) throw new Error(`reference: missing tensor ${n}`);
      return t.data;
    };
    const c = this.cfg;
    this.qwen3 = c.architectures[0] === 'Qwen3ForCausalLM';
    this.H = c.hidden_size; this.NH = c.num_attention_heads; this.NKV = c.num_key_value_heads ?? this.NH;
    this.HD = c.head_dim ?? this.H / this.NH; this.V = c.vocab_size; this.F = c.intermediate_size;
    this.L = c.num_hidden_layers; this.eps = c.rms_norm_eps ?? 1e-6;
    this.inv = invFreqs(c, this.HD);
    this.lmHead = c.tie_word_embeddings ? this.w('model.embed_tokens.weight') : this.w('lm_head.weight');
  }

  rope(v, pos) {
    const half = this.HD / 2;
    for (let i = 0; i < half; ++i) {
      const a = pos * this.inv[i], c = Math.cos(a), s = Math.sin(a);
      const x1 = v[i], x2 = v[i + half];
      v[i] = x1 * c - x2 * s;
      v[i + half] = x2 * c + x1 * s;
    }
  }

  // Returns logits (Float64Array) at the last position of ids. layerOut, if given, receives the
  // residual stream after each layer for the last position.
  forward(ids, layerOut) {
    if (this.moe) return this.moe.forward(ids);
    const { H, NH, NKV, HD, V, F, L, eps } = this;
    const T = ids.length;
    const emb = this.w('model.embed_tokens.weight');
    let xs = ids.map((id) => Float64Array.from(emb.subarray(id * H, (id + 1) * H)));
    for (let l = 0; l < L; ++l) {
      const p = `model.layers.${l}.`;
      const qs = [], ks = [], vs = [];
      for (let t = 0; t < T; ++t) {
        const h = rmsnorm(xs[t], this.w(p + 'input_layernorm.weight'), eps);
        const q = matvec(this.w(p + 'self_attn.q_proj.weight'), NH * HD, H, h);
        const k = matvec(this.w(p + 'self_attn.k_proj.weight'), NKV * HD, H, h);
        const v = matvec(this.w(p + 'self_attn.v_proj.weight'), NKV * HD, H, h);
        const heads = (vec, n, normName) => {
          const out = [];
          for (let j = 0; j < n; ++j) {
            let hv = vec.slice(j * HD, (j + 1) * HD);
            if (this.qwen3) hv = rmsnorm(hv, this.w(p + normName), eps);
            this.rope(hv, t);
            out.push(hv);
          }
          return out;
        };
        qs.push(heads(q, NH, 'self_attn.q_norm.weight'));
        ks.push(heads(k, NKV, 'self_attn.k_norm.weight'));
        vs.push(v);
      }
      const group = NH / NKV;
      const next = [];
      for (let t = 0; t < T; ++t) {
        const att = new Float64Array(NH * HD);
        for (let h = 0; h < NH; ++h) {
          const kvh = Math.floor(h / group);
          const sc = new Float64Array(t + 1);
          let mx = -Infinity;
          for (let s = 0; s <= t; ++s) {
            let d = 0;
            for (let i = 0; i < HD; ++i) d += qs[t][h][i] * ks[s][kvh][i];
            sc[s] = d / Math.sqrt(HD);
            mx = Math.max(mx, sc[s]);
          }
          let sum = 0;
          for (let s = 0; s <= t; ++s) { sc[s] = Math.exp(sc[s] - mx); sum += sc[s]; }
          for (let s = 0; s <= t; ++s) {
            const wgt = sc[s] / sum;
            for (let i = 0; i < HD; ++i) att[h * HD + i] += wgt * vs[s][kvh * HD + i];
          }
        }
        const o = matvec(this.w(p + 'self_attn.o_proj.weight'), H, NH * HD, att);
        const x = Float64Array.from(xs[t], (val, i) => val + o[i]);
        const h2 = rmsnorm(x, this.w(p + 'post_attention_layernorm.weight'), eps);
        const g = matvec(this.w(p + 'mlp.gate_proj.weight'), F, H, h2);
        const u = matvec(this.w(p + 'mlp.up_proj.weight'), F, H, h2);
        for (let i = 0; i < F; ++i) g[i] = g[i] / (1 + Math.exp(-g[i])) * u[i];
        const d = matvec(this.w(p + 'mlp.down_proj.weight'), H, F, g);
        for (let i = 0; i < H; ++i) x[i] += d[i];
        next.push(x);
      }
      xs = next;
      if (layerOut) layerOut.push(Array.from(xs[T - 1]));
    }
    const hf = rmsnorm(xs[T - 1], this.w('model.norm.weight'), eps);
    return matvec(this.lmHead, V, H, hf);
  }

  generate(promptIds, maxTokens) {
    const ids = promptIds.slice();
    let logits = this.forward(ids);
    const last = Array.from(logits);
    const out = [];
    for (let i = 0; i < maxTokens; ++i) {
      let best = 0;
      for (let j = 1; j < logits.length; ++j) if (logits[j] > logits[best]) best = j;
      out.push(best);
      ids.push(best);
      if (i + 1 < maxTokens) logits = this.forward(ids);
    }
    return { last_logits: last, output_ids: out };
  }
}

if (process.argv[1] && path.basename(process.argv[1]) === 'reference_forward.mjs') {
  const a = process.argv.slice(2);
  const dir = a[0];
  let ids, max = 16;
  for (let i = 1; i < a.length; ++i) {
    if (a[i] === '--prompt-ids') ids = a[++i].split(',').map(Number);
    else if (a[i] === '--max-tokens') max = Number(a[++i]);
  }
  const m = new ReferenceModel(dir);
  process.stdout.write(JSON.stringify(m.generate(ids, max)) + '\n');
}
