// Test tool: writes a tiny random mixture-of-experts checkpoint in the Hugging Face layout of its
// family (Qwen3MoeForCausalLM, DeepseekV3ForCausalLM, Glm4MoeForCausalLM, MiniMaxM2ForCausalLM),
// from a complete config.json object, independently of sparkstack. Used by the harness self-test
// (llama.cpp vs the float64 reference) and as the source of configs: `moeConfig(arch, overrides)`
// gives the config both this writer and `sparkstack make-tiny-model --config-overrides` start from.

import fs from 'node:fs';
import path from 'node:path';
import { writeSafetensors } from './make_test_checkpoint.mjs';

const CLASS = {
  qwen3_moe: 'Qwen3MoeForCausalLM',
  deepseek_v3: 'DeepseekV3ForCausalLM',
  glm4_moe: 'Glm4MoeForCausalLM',
  minimax_m2: 'MiniMaxM2ForCausalLM',
};

// Small defaults per family; `overrides` (Hugging Face keys) win.
export function moeConfig(arch, overrides = {}) {
  const common = {
    architectures: [CLASS[arch]], model_type: arch, hidden_size: 64, num_hidden_layers: 2,
    num_attention_heads: 4, num_key_value_heads: 2, head_dim: 16, vocab_size: 300,
    max_position_embeddings: 2048, rms_norm_eps: 1e-6, tie_word_embeddings: false, bos_token_id: 1,
    eos_token_id: 2, hidden_act: 'silu', torch_dtype: 'float32', rope_scaling: null,
  };
  const family = {
    qwen3_moe: {
      intermediate_size: 96, num_experts: 6, num_experts_per_tok: 2, moe_intermediate_size: 32,
      norm_topk_prob: true, decoder_sparse_step: 1, mlp_only_layers: [], rope_theta: 1e6,
      attention_bias: false, use_sliding_window: false,
    },
    deepseek_v3: {
      num_hidden_layers: 3, num_key_value_heads: 4, intermediate_size: 96, n_routed_experts: 8,
      num_experts_per_tok: 3, moe_intermediate_size: 32, n_shared_experts: 1, norm_topk_prob: true,
      routed_scaling_factor: 2.5, n_group: 4, topk_group: 2, first_k_dense_replace: 1,
      moe_layer_freq: 1, scoring_func: 'sigmoid', topk_method: 'noaux_tc', q_lora_rank: 48,
      kv_lora_rank: 32, qk_nope_head_dim: 16, qk_rope_head_dim: 8, v_head_dim: 16,
      rope_interleave: true, rope_theta: 10000, attention_bias: false, num_nextn_predict_layers: 0,
    },
    glm4_moe: {
      num_hidden_layers: 3, intermediate_size: 96, n_routed_experts: 6, num_experts_per_tok: 2,
      moe_intermediate_size: 32, n_shared_experts: 1, norm_topk_prob: true,
      routed_scaling_factor: 2.5, n_group: 1, topk_group: 1, first_k_dense_replace: 1,
      partial_rotary_factor: 0.5, use_qk_norm: true, attention_bias: true, rope_theta: 1e6,
      rms_norm_eps: 1e-5, num_nextn_predict_layers: 0,
    },
    minimax_m2: {
      intermediate_size: 32, num_local_experts: 6, num_experts_per_tok: 2, scoring_func: 'sigmoid',
      use_routing_bias: true, rotary_dim: 8, use_qk_norm: true, qk_norm_type: 'per_layer',
      shared_intermediate_size: 0, rope_theta: 5e6, use_mtp: false, num_mtp_modules: 0,
    },
  }[arch];
  if (!family) throw new Error(`moeConfig: unknown MoE family ${arch}`);
  const cfg = { ...common, ...family, ...overrides };
  if (arch === 'deepseek_v3') delete cfg.head_dim;
  if (arch === 'minimax_m2') cfg.attn_type_list = Array(cfg.num_hidden_layers).fill(1);
  return cfg;
}

// The facts about a MoE config that the writer, converter and reference share.
export function moeFacts(cfg) {
  const arch = cfg.model_type;
  const L = cfg.num_hidden_layers;
  const f = {
    arch, L,
    experts: cfg.num_experts ?? cfg.n_routed_experts ?? cfg.num_local_experts,
    topK: cfg.num_experts_per_tok,
    width: arch === 'minimax_m2' ? cfg.intermediate_size : cfg.moe_intermediate_size,
    shared: cfg.n_shared_experts ?? 0,
    sigmoid: arch !== 'qwen3_moe',
    bias: arch === 'deepseek_v3' || arch === 'glm4_moe' || (arch === 'minimax_m2' && cfg.use_routing_bias !== false),
    normTopk: arch === 'minimax_m2' ? true : !!cfg.norm_topk_prob,
    scale: cfg.routed_scaling_factor ?? 1.0,
    nGroup: cfg.n_group ?? 1,
    topkGroup: cfg.topk_group ?? 1,
    mla: arch === 'deepseek_v3',
    mtp: cfg.num_nextn_predict_layers ?? 0,
  };
  if (arch === 'minimax_m2') f.scale = 1.0;
  if (arch === 'qwen3_moe') f.shared = 0;
  const dense = cfg.first_k_dense_replace ?? 0;
  f.isMoe = (l) => {
    if (arch === 'qwen3_moe') {
      return !(cfg.mlp_only_layers ?? []).includes(l) && (l + 1) % (cfg.decoder_sparse_step ?? 1) === 0;
    }
    if (arch === 'deepseek_v3') return l >= dense && l % (cfg.moe_layer_freq ?? 1) === 0;
    if (arch === 'glm4_moe') return l >= dense;
    return true;
  };
  const hd = cfg.head_dim ?? cfg.hidden_size / cfg.num_attention_heads;
  if (f.mla) {
    f.headDim = cfg.qk_nope_head_dim + cfg.qk_rope_head_dim;
    f.rotaryDim = cfg.qk_rope_head_dim;
  } else {
    f.headDim = hd;
    f.rotaryDim = cfg.rotary_dim ?? Math.floor(hd * (cfg.partial_rotary_factor ?? 1) + 1e-9);
  }
  f.qkNorm = arch === 'qwen3_moe' ? 'head' : (cfg.use_qk_norm ? (arch === 'minimax_m2' ? 'all' : 'head') : 'none');
  f.attnBias = arch === 'glm4_moe' && !!cfg.attention_bias;
  f.routerPrefix = (l) => `model.layers.${l}.${arch === 'minimax_m2' ? 'block_sparse_moe' : 'mlp'}.`;
  f.biasName = (l) => arch === 'minimax_m2' ? `model.layers.${l}.block_sparse_moe.e_score_correction_bias`
    : `model.layers.${l}.mlp.gate.e_score_correction_bias`;
  f.expertNames = arch === 'minimax_m2' ? ['w1', 'w3', 'w2'] : ['gate_proj', 'up_proj', 'down_proj'];
  return f;
}

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

export function makeMoeCheckpoint({ cfg, out, seed = 1, dtype = 'f32' }) {
  const f = moeFacts(cfg);
  const rnd = mulberry32(seed);
  const uni = (n, scale) => { const a = new Float32Array(n); for (let i = 0; i < n; ++i) a[i] = (rnd() * 2 - 1) * scale; return a; };
  const norm = (n) => { const a = new Float32Array(n); for (let i = 0; i < n; ++i) a[i] = 1 + (rnd() * 2 - 1) * 0.2; return a; };
  const H = cfg.hidden_size, NH = cfg.num_attention_heads, NKV = cfg.num_key_value_heads ?? NH, D = f.headDim;
  const t = [];
  const lin = (name, o, i) => t.push([name, [o, i], uni(o * i, Math.sqrt(3 / i))]);
  const mlp = (p, w) => { lin(p + 'gate_proj.weight', w, H); lin(p + 'up_proj.weight', w, H); lin(p + 'down_proj.weight', H, w); };
  t.push(['model.embed_tokens.weight', [cfg.vocab_size, H], uni(cfg.vocab_size * H, 1.0)]);
  for (let l = 0; l < f.L; ++l) {
    const p = `model.layers.${l}.`;
    const a = p + 'self_attn.';
    t.push([p + 'input_layernorm.weight', [H], norm(H)]);
    if (f.mla) {
      const qw = NH * (cfg.qk_nope_head_dim + cfg.qk_rope_head_dim);
      if (cfg.q_lora_rank) {
        lin(a + 'q_a_proj.weight', cfg.q_lora_rank, H);
        t.push([a + 'q_a_layernorm.weight', [cfg.q_lora_rank], norm(cfg.q_lora_rank)]);
        lin(a + 'q_b_proj.weight', qw, cfg.q_lora_rank);
      } else {
        lin(a + 'q_proj.weight', qw, H);
      }
      lin(a + 'kv_a_proj_with_mqa.weight', cfg.kv_lora_rank + cfg.qk_rope_head_dim, H);
      t.push([a + 'kv_a_layernorm.weight', [cfg.kv_lora_rank], norm(cfg.kv_lora_rank)]);
      lin(a + 'kv_b_proj.weight', NH * (cfg.qk_nope_head_dim + cfg.v_head_dim), cfg.kv_lora_rank);
      lin(a + 'o_proj.weight', H, NH * cfg.v_head_dim);
    } else {
      lin(a + 'q_proj.weight', NH * D, H);
      lin(a + 'k_proj.weight', NKV * D, H);
      lin(a + 'v_proj.weight', NKV * D, H);
      if (f.attnBias) {
        t.push([a + 'q_proj.bias', [NH * D], uni(NH * D, 0.5)]);
        t.push([a + 'k_proj.bias', [NKV * D], uni(NKV * D, 0.5)]);
        t.push([a + 'v_proj.bias', [NKV * D], uni(NKV * D, 0.5)]);
      }
      lin(a + 'o_proj.weight', H, NH * D);
      if (f.qkNorm === 'head') {
        t.push([a + 'q_norm.weight', [D], norm(D)]);
        t.push([a + 'k_norm.weight', [D], norm(D)]);
      } else if (f.qkNorm === 'all') {
        t.push([a + 'q_norm.weight', [NH * D], norm(NH * D)]);
        t.push([a + 'k_norm.weight', [NKV * D], norm(NKV * D)]);
      }
    }
    t.push([p + 'post_attention_layernorm.weight', [H], norm(H)]);
    if (!f.isMoe(l)) {
      mlp(p + 'mlp.', cfg.intermediate_size);
      continue;
    }
    const r = f.routerPrefix(l);
    lin(r + 'gate.weight', f.experts, H);
    // The correction bias is float32 in every release; it must stay F32 in a bf16 checkpoint too.
    if (f.bias) t.push([f.biasName(l), [f.experts], uni(f.experts, 0.05), 'f32']);
    for (let e = 0; e < f.experts; ++e) {
      const [g, u, d] = f.expertNames.map((n) => `${r}experts.${e}.${n}.weight`);
      lin(g, f.width, H); lin(u, f.width, H); lin(d, H, f.width);
    }
    if (f.shared > 0) mlp(r + 'shared_experts.', f.shared * f.width);
  }
  t.push(['model.norm.weight', [H], norm(H)]);
  if (!cfg.tie_word_embeddings) lin('lm_head.weight', cfg.vocab_size, H);
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'config.json'), JSON.stringify({ ...cfg, torch_dtype: dtype === 'bf16' ? 'bfloat16' : 'float32' }, null, 2));
  writeSafetensors(path.join(out, 'model.safetensors'), t, dtype);
}
