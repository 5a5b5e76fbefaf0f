// Float64 reference forward pass of the mixture-of-experts families in Hugging Face semantics,
// read straight from the checkpoint (used by reference_forward.mjs for MoE configs):
//  * attention: GQA with optional q/k/v biases (GLM), per-head q/k RMSNorm (Qwen3-MoE, GLM) or one
//    RMSNorm over the whole q / k projection (MiniMax-M2), rotate-half RoPE on the first rotary_dim
//    dims of each head (partial rotary); or DeepSeek MLA in its plain (non-absorbed) form: q from
//    q_a -> norm -> q_b (or q_proj), [c_kv | k_pe] = kv_a(x), c_kv normed, per head
//    [k_nope | v] = kv_b(c_kv), RoPE on q_pe and the shared k_pe turning adjacent pairs, YaRN
//    frequencies and attention factor, softmax scale 1/sqrt(nope + rope) * mscale(factor,
//    mscale_all_dim)^2.
//  * MoE: scores softmax or sigmoid of the router logits; choice = scores + e_score_correction_bias;
//    group-limited (top-2 sums, kept groups by a stable sort, dropped groups never chosen); top-k by
//    a stable sort (ties: lower id); weights = unbiased scores, optionally / sum, * scaling; plus
//    the shared expert. Dense layers as the family's rule says.
// `brokenRouting` (tests only) replaces the group score by the group's single best score, so that
// the harness can show it catches a wrong routing rule.

import fs from 'node:fs';
import path from 'node:path';
import { readCheckpointTensors } from './hf_to_gguf.mjs';
import { moeFacts } from './moe_checkpoint.mjs';

function rmsnorm(x, w, eps) {
  let ss = 0;
  for (let i = 0; i < x.length; ++i) ss += x[i] * x[i];
  const r = 1 / Math.sqrt(ss / x.length + eps);
  return Float64Array.from(x, (v, i) => v * r * w[i]);
}

function matvec(W, rows, cols, x, bias) {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; ++r) {
    let s = bias ? bias[r] : 0;
    const o = r * cols;
    for (let c = 0; c < cols; ++c) s += W[o + c] * x[c];
    out[r] = s;
  }
  return out;
}

const yarnMscale = (s, m) => (s <= 1 ? 1 : 0.1 * m * Math.log(s) + 1);

// transformers' _compute_default_rope_parameters / _compute_yarn_parameters over `dim` dims.
export function ropeParameters(cfg, dim) {
  const base = cfg.rope_theta ?? 10000;
  const inv = Float64Array.from({ length: dim / 2 }, (_, i) => 1 / Math.pow(base, (2 * i) / dim));
  const rs = cfg.rope_scaling;
  const type = rs ? (rs.rope_type ?? rs.type) : null;
  if (type !== 'yarn') return { inv, attention: 1 };
  const factor = rs.factor;
  const orig = rs.original_max_position_embeddings ?? cfg.max_position_embeddings;
  const corr = (rot) => (dim * Math.log(orig / (rot * 2 * Math.PI))) / (2 * Math.log(base));
  let low = corr(rs.beta_fast ?? 32), high = corr(rs.beta_slow ?? 1);
  if (rs.truncate !== false) { low = Math.floor(low); high = Math.ceil(high); }
  low = Math.max(low, 0); high = Math.min(high, dim - 1);
  if (low === high) high += 0.001;
  for (let i = 0; i < dim / 2; ++i) {
    const ramp = Math.min(1, Math.max(0, (i - low) / (high - low)));
    inv[i] = (inv[i] / factor) * ramp + inv[i] * (1 - ramp);
  }
  let attention = rs.attention_factor;
  if (attention == null) {
    attention = rs.mscale && rs.mscale_all_dim
      ? yarnMscale(factor, rs.mscale) / yarnMscale(factor, rs.mscale_all_dim)
      : yarnMscale(factor, 1);
  }
  return { inv, attention };
}

export class MoeReferenceModel {
  constructor(hfDir, { brokenRouting = false } = {}) {
    this.cfg = JSON.parse(fs.readFileSync(path.join(hfDir, 'config.json'), 'utf8'));
    this.f = moeFacts(this.cfg);
    this.t = readCheckpointTensors(hfDir);
    this.broken = brokenRouting;
    this.eps = this.cfg.rms_norm_eps ?? 1e-6;
    this.rope = ropeParameters(this.cfg, this.f.rotaryDim);
    this.lmHead = this.cfg.tie_word_embeddings ? this.w('model.embed_tokens.weight') : this.w('lm_head.weight');
  }

  w(name) {
    const t = this.t.get(name);
    if (!t) throw new Error(`reference: missing tensor ${name}`);
    return t.data;
  }

  // Rotates v[off, off + dim) at position `pos`: halves (i, i + dim/2), or pairs (2i, 2i+1).
  applyRope(v, off, pos, interleaved) {
    const { inv, attention } = this.rope;
    const half = inv.length;
    for (let i = 0; i < half; ++i) {
      const a = pos * Math.fround(inv[i]);
      const c = Math.cos(a) * attention, s = Math.sin(a) * attention;
      const i1 = interleaved ? off + 2 * i : off + i;
      const i2 = interleaved ? off + 2 * i + 1 : off + i + half;
      const x1 = v[i1], x2 = v[i2];
      v[i1] = x1 * c - x2 * s;
      v[i2] = x2 * c + x1 * s;
    }
  }

  // Per token: {q: [NH][Dq], k: [NKV][Dq], v: [NKV][Dv]} for all tokens of `hs`.
  qkv(l, hs) {
    const c = this.cfg, f = this.f, eps = this.eps;
    const H = c.hidden_size, NH = c.num_attention_heads, NKV = c.num_key_value_heads ?? NH;
    const a = `model.layers.${l}.self_attn.`;
    return hs.map((h, t) => {
      if (f.mla) {
        const nope = c.qk_nope_head_dim, rope = c.qk_rope_head_dim, vd = c.v_head_dim, kvr = c.kv_lora_rank;
        const Dq = nope + rope;
        let q;
        if (c.q_lora_rank) {
          const cq = rmsnorm(matvec(this.w(a + 'q_a_proj.weight'), c.q_lora_rank, H, h), this.w(a + 'q_a_layernorm.weight'), eps);
          q = matvec(this.w(a + 'q_b_proj.weight'), NH * Dq, c.q_lora_rank, cq);
        } else {
          q = matvec(this.w(a + 'q_proj.weight'), NH * Dq, H, h);
        }
        const ckvpe = matvec(this.w(a + 'kv_a_proj_with_mqa.weight'), kvr + rope, H, h);
        const ckv = rmsnorm(ckvpe.subarray(0, kvr), this.w(a + 'kv_a_layernorm.weight'), eps);
        const kpe = Float64Array.from(ckvpe.subarray(kvr));
        this.applyRope(kpe, 0, t, true);
        const kv = matvec(this.w(a + 'kv_b_proj.weight'), NH * (nope + vd), kvr, ckv);
        const qs = [], ks = [], vs = [];
        for (let j = 0; j < NH; ++j) {
          const qh = Float64Array.from(q.subarray(j * Dq, (j + 1) * Dq));
          this.applyRope(qh, nope, t, true);
          qs.push(qh);
          const kh = new Float64Array(Dq);
          kh.set(kv.subarray(j * (nope + vd), j * (nope + vd) + nope));
          kh.set(kpe, nope);
          ks.push(kh);
          vs.push(Float64Array.from(kv.subarray(j * (nope + vd) + nope, (j + 1) * (nope + vd))));
        }
        return { q: qs, k: ks, v: vs };
      }
      const D = f.headDim;
      const bias = (x) => (f.attnBias ? this.w(a + `${x}_proj.bias`) : null);
      let q = matvec(this.w(a + 'q_proj.weight'), NH * D, H, h, bias('q'));
      let k = matvec(this.w(a + 'k_proj.weight'), NKV * D, H, h, bias('k'));
      const v = matvec(this.w(a + 'v_proj.weight'), NKV * D, H, h, bias('v'));
      if (f.qkNorm === 'all') {
        q = rmsnorm(q, this.w(a + 'q_norm.weight'), eps);
        k = rmsnorm(k, this.w(a + 'k_norm.weight'), eps);
      }
      const heads = (vec, n, normName) => Array.from({ length: n }, (_, j) => {
        let hv = Float64Array.from(vec.subarray(j * D, (j + 1) * D));
        if (f.qkNorm === 'head') hv = rmsnorm(hv, this.w(a + normName), eps);
        this.applyRope(hv, 0, t, false);
        return hv;
      });
      return {
        q: heads(q, NH, 'q_norm.weight'),
        k: heads(k, NKV, 'k_norm.weight'),
        v: Array.from({ length: NKV }, (_, j) => v.subarray(j * D, (j + 1) * D)),
      };
    });
  }

  softmaxScale() {
    const c = this.cfg;
    if (!this.f.mla) return 1 / Math.sqrt(this.f.headDim);
    let s = 1 / Math.sqrt(c.qk_nope_head_dim + c.qk_rope_head_dim);
    const rs = c.rope_scaling;
    if (rs && (rs.rope_type ?? rs.type) === 'yarn' && rs.mscale_all_dim) {
      const m = yarnMscale(rs.factor, rs.mscale_all_dim);
      s *= m * m;
    }
    return s;
  }

  mlp(p, width, x) {
    const H = this.cfg.hidden_size;
    const g = matvec(this.w(p + 'gate_proj.weight'), width, H, x);
    const u = matvec(this.w(p + 'up_proj.weight'), width, H, x);
    for (let i = 0; i < width; ++i) g[i] = g[i] / (1 + Math.exp(-g[i])) * u[i];
    return matvec(this.w(p + 'down_proj.weight'), H, width, g);
  }

  // The routed experts chosen for x and their weights.
  route(l, x) {
    const f = this.f, H = this.cfg.hidden_size, E = f.experts;
    const logits = matvec(this.w(f.routerPrefix(l) + 'gate.weight'), E, H, x);
    let s;
    if (f.sigmoid) {
      s = logits.map((v) => 1 / (1 + Math.exp(-v)));
    } else {
      const m = Math.max(...logits);
      const e = logits.map((v) => Math.exp(v - m));
      const sum = e.reduce((a, b) => a + b, 0);
      s = e.map((v) => v / sum);
    }
    const bias = f.bias ? this.w(f.biasName(l)) : null;
    const choice = Array.from(s, (v, e) => v + (bias ? bias[e] : 0));
    const eligible = new Array(E).fill(true);
    if (f.nGroup > 1 && f.topkGroup < f.nGroup) {
      const per = E / f.nGroup;
      const scores = Array.from({ length: f.nGroup }, (_, g) => {
        const m = choice.slice(g * per, (g + 1) * per).sort((a, b) => b - a);
        return this.broken ? m[0] : m[0] + m[1];
      });
      const order = scores.map((v, g) => [v, g]).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
      const kept = new Set(order.slice(0, f.topkGroup).map((o) => o[1]));
      for (let e = 0; e < E; ++e) eligible[e] = kept.has(Math.floor(e / per));
    }
    const ids = choice.map((v, e) => [v, e]).filter((o) => eligible[o[1]])
      .sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, f.topK).map((o) => o[1]);
    let w = ids.map((e) => s[e]);
    if (f.normTopk) {
      const sum = w.reduce((a, b) => a + b, 0) + 1e-20;
      w = w.map((v) => v / sum);
    }
    return { ids, weights: w.map((v) => v * f.scale) };
  }

  moe(l, x) {
    const f = this.f, H = this.cfg.hidden_size;
    const { ids, weights } = this.route(l, x);
    const y = new Float64Array(H);
    const r = f.routerPrefix(l);
    ids.forEach((e, j) => {
      const [gn, un, dn] = f.expertNames.map((n) => this.w(`${r}experts.${e}.${n}.weight`));
      const g = matvec(gn, f.width, H, x);
      const u = matvec(un, f.width, H, x);
      for (let i = 0; i < f.width; ++i) g[i] = g[i] / (1 + Math.exp(-g[i])) * u[i];
      const d = matvec(dn, H, f.width, g);
      for (let i = 0; i < H; ++i) y[i] += weights[j] * d[i];
    });
    if (f.shared > 0) {
      const s = this.mlp(r + 'shared_experts.', f.shared * f.width, x);
      for (let i = 0; i < H; ++i) y[i] += s[i];
    }
    return y;
  }

  forward(ids) {
    const c = this.cfg, f = this.f, eps = this.eps;
    const H = c.hidden_size, NH = c.num_attention_heads, NKV = f.mla ? NH : (c.num_key_value_heads ?? NH);
    const T = ids.length;
    const emb = this.w('model.embed_tokens.weight');
    let xs = ids.map((id) => Float64Array.from(emb.subarray(id * H, (id + 1) * H)));
    const scale = this.softmaxScale();
    const vd = f.mla ? c.v_head_dim : f.headDim;
    for (let l = 0; l < f.L; ++l) {
      const p = `model.layers.${l}.`;
      const hs = xs.map((x) => rmsnorm(x, this.w(p + 'input_layernorm.weight'), eps));
      const qkv = this.qkv(l, hs);
      const group = NH / NKV;
      xs = xs.map((x0, t) => {
        const att = new Float64Array(NH * vd);
        for (let h = 0; h < NH; ++h) {
          const kvh = Math.floor(h / group);
          const sc = new Float64Array(t + 1);
          let mx = -Infinity;
          for (let s = 0; s <= t; ++s) {
            let d = 0;
            const qh = qkv[t].q[h], kh = qkv[s].k[kvh];
            for (let i = 0; i < qh.length; ++i) d += qh[i] * kh[i];
            sc[s] = d * scale;
            mx = Math.max(mx, sc[s]);
          }
          let sum = 0;
          for (let s = 0; s <= t; ++s) { sc[s] = Math.exp(sc[s] - mx); sum += sc[s]; }
          for (let s = 0; s <= t; ++s) {
            const vh = qkv[s].v[kvh];
            for (let i = 0; i < vd; ++i) att[h * vd + i] += sc[s] / sum * vh[i];
          }
        }
        const o = matvec(this.w(p + 'self_attn.o_proj.weight'), H, NH * vd, att);
        const x = Float64Array.from(x0, (v, i) => v + o[i]);
        const h2 = rmsnorm(x, this.w(p + 'post_attention_layernorm.weight'), eps);
        const y = f.isMoe(l) ? this.moe(l, h2) : this.mlp(p + 'mlp.', c.intermediate_size, h2);
        for (let i = 0; i < H; ++i) x[i] += y[i];
        return x;
      });
    }
    const hf = rmsnorm(xs[T - 1], this.w('model.norm.weight'), eps);
    return matvec(this.lmHead, c.vocab_size, H, hf);
  }
}
