// The mixture-of-experts part of hf_to_gguf.mjs: Qwen3MoeForCausalLM -> llama.cpp "qwen3moe",
// DeepseekV3ForCausalLM -> "deepseek2" (MLA: kv_b_proj split into attn_k_b, transposed per head,
// and attn_v_b, as llama.cpp's convert_hf_to_gguf.py does for the absorbed form),
// Glm4MoeForCausalLM -> "glm4moe", MiniMaxM2ForCausalLM -> "minimax-m2". Tensor names and metadata
// keys are those of llama.cpp as shipped in node-llama-cpp 3.22.1 (src/llama-arch.cpp,
// src/models/{qwen3moe,deepseek2,glm4-moe,minimax-m2}.cpp, conversion/{qwen,deepseek,glm,minimax}.py,
// gguf-py/gguf/constants.py). Everything is written as F32.
//
// Layout facts this relies on:
//  * Experts are stacked into one 3-D tensor per projection: HF experts.E.gate_proj [I, H] for
//    E = 0..n-1 -> ffn_gate_exps with GGUF dims [H, I, n] (ne0 innermost), i.e. the expert
//    matrices concatenated in expert order. Same for up; down [H, I] -> ffn_down_exps [I, H, n].
//  * Rope: qwen3moe, glm4moe and minimax-m2 use NEOX rope (rotate-half, like HF), so q/k rows are
//    not permuted; rope.dimension_count is the rotary width (partial rotary: GLM, MiniMax).
//    deepseek2 uses NORM rope (adjacent pairs), which is DeepSeek's rope_interleave: no permutation
//    either (HF's interleaved form only reorders the roped pairs, identically in q and k).
//  * The router's correction bias is exp_probs_b.bias; expert_gating_func 2 = sigmoid, 1 = softmax.
//  * llama.cpp's qwen3moe and minimax-m2 always renormalise the top-k weights and qwen3moe has no
//    dense layers: configs outside that are refused here rather than converted wrongly.
//  * Multi-token-prediction layers are skipped (as the deepseek2 converter does).

import { moeFacts } from './moe_checkpoint.mjs';

const GGUF = { U32: 4, I32: 5, F32: 6, BOOL: 7, STRING: 8, ARRAY: 9 };
const GGUF_ARCH = { qwen3_moe: 'qwen3moe', deepseek_v3: 'deepseek2', glm4_moe: 'glm4moe', minimax_m2: 'minimax-m2' };

export function isMoeArch(modelType) {
  return modelType in GGUF_ARCH;
}

// Returns {arch, kv (without the vocabulary), tensors}; `get(name, shape)` reads a checkpoint
// tensor (marking it used), `add(ggufName, t, data?)` appends it with reversed dims.
export function convertMoe(cfg, configPath, get, add, tensors) {
  const f = moeFacts(cfg);
  const arch = GGUF_ARCH[f.arch];
  const H = cfg.hidden_size, NH = cfg.num_attention_heads, NKV = cfg.num_key_value_heads ?? NH;
  const D = f.headDim;
  const fail = (why) => { throw new Error(`${configPath}: ${why} (llama.cpp's ${arch} cannot express it)`); };
  if (arch === 'qwen3moe') {
    if (!f.normTopk) fail('norm_topk_prob false');
    for (let l = 0; l < f.L; ++l) if (!f.isMoe(l)) fail(`dense layer ${l} (mlp_only_layers / decoder_sparse_step)`);
  }
  if (f.mla && cfg.rope_interleave === false) fail('rope_interleave false');
  if (arch !== 'deepseek2' && arch !== 'glm4moe' && (cfg.first_k_dense_replace ?? 0) > 0) fail('first_k_dense_replace');

  const stack = (names, shape) => {
    const parts = names.map((n) => get(n, shape));
    const per = parts[0].data.length;
    const data = new Float32Array(per * parts.length);
    parts.forEach((p, i) => data.set(p.data, i * per));
    return { shape: [parts.length, ...shape], data };
  };
  const mlp = (b, p, w) => {
    add(b + 'gate.weight', get(p + 'gate_proj.weight', [w, H]));
    add(b + 'up.weight', get(p + 'up_proj.weight', [w, H]));
    add(b + 'down.weight', get(p + 'down_proj.weight', [H, w]));
  };
  for (let l = 0; l < f.L; ++l) {
    const p = `model.layers.${l}.`;
    const a = p + 'self_attn.';
    const b = `blk.${l}.`;
    add(b + 'attn_norm.weight', get(p + 'input_layernorm.weight', [H]));
    if (f.mla) {
      const nope = cfg.qk_nope_head_dim, rope = cfg.qk_rope_head_dim, v = cfg.v_head_dim, kvr = cfg.kv_lora_rank;
      if (cfg.q_lora_rank) {
        add(b + 'attn_q_a.weight', get(a + 'q_a_proj.weight', [cfg.q_lora_rank, H]));
        add(b + 'attn_q_a_norm.weight', get(a + 'q_a_layernorm.weight', [cfg.q_lora_rank]));
        add(b + 'attn_q_b.weight', get(a + 'q_b_proj.weight', [NH * D, cfg.q_lora_rank]));
      } else {
        add(b + 'attn_q.weight', get(a + 'q_proj.weight', [NH * D, H]));
      }
      add(b + 'attn_kv_a_mqa.weight', get(a + 'kv_a_proj_with_mqa.weight', [kvr + rope, H]));
      add(b + 'attn_kv_a_norm.weight', get(a + 'kv_a_layernorm.weight', [kvr]));
      // kv_b_proj [NH * (nope + v), kvr]: per head nope key rows, then v value rows.
      const kvb = get(a + 'kv_b_proj.weight', [NH * (nope + v), kvr]).data;
      const kb = new Float32Array(NH * kvr * nope);  // torch [NH, kvr, nope]: k rows transposed
      const vb = new Float32Array(NH * v * kvr);     // torch [NH, v, kvr]
      for (let h = 0; h < NH; ++h) {
        const base = h * (nope + v);
        for (let i = 0; i < nope; ++i) {
          for (let c = 0; c < kvr; ++c) kb[(h * kvr + c) * nope + i] = kvb[(base + i) * kvr + c];
        }
        vb.set(kvb.subarray((base + nope) * kvr, (base + nope + v) * kvr), h * v * kvr);
      }
      tensors.push({ name: b + 'attn_k_b.weight', dims: [nope, kvr, NH], data: kb });
      tensors.push({ name: b + 'attn_v_b.weight', dims: [kvr, v, NH], data: vb });
      add(b + 'attn_output.weight', get(a + 'o_proj.weight', [H, NH * v]));
    } else {
      for (const [x, rows] of [['q', NH * D], ['k', NKV * D], ['v', NKV * D]]) {
        add(b + `attn_${x}.weight`, get(a + `${x}_proj.weight`, [rows, H]));
        if (f.attnBias) add(b + `attn_${x}.bias`, get(a + `${x}_proj.bias`, [rows]));
      }
      add(b + 'attn_output.weight', get(a + 'o_proj.weight', [H, NH * D]));
      if (f.qkNorm !== 'none') {
        const all = f.qkNorm === 'all';
        add(b + 'attn_q_norm.weight', get(a + 'q_norm.weight', [all ? NH * D : D]));
        add(b + 'attn_k_norm.weight', get(a + 'k_norm.weight', [all ? NKV * D : D]));
      }
    }
    add(b + (arch === 'glm4moe' ? 'post_attention_norm.weight' : 'ffn_norm.weight'),
      get(p + 'post_attention_layernorm.weight', [H]));
    if (!f.isMoe(l)) {
      mlp(b + 'ffn_', p + 'mlp.', cfg.intermediate_size);
      continue;
    }
    const r = f.routerPrefix(l);
    add(b + 'ffn_gate_inp.weight', get(r + 'gate.weight', [f.experts, H]));
    if (f.bias) add(b + 'exp_probs_b.bias', get(f.biasName(l), [f.experts]));
    const names = (k) => Array.from({ length: f.experts }, (_, e) => `${r}experts.${e}.${f.expertNames[k]}.weight`);
    add(b + 'ffn_gate_exps.weight', stack(names(0), [f.width, H]));
    add(b + 'ffn_up_exps.weight', stack(names(1), [f.width, H]));
    add(b + 'ffn_down_exps.weight', stack(names(2), [H, f.width]));
    if (f.shared > 0) mlp(b + 'ffn_', r + 'shared_experts.', f.shared * f.width), renameShared(tensors, b);
  }

  const U32 = GGUF.U32, F32 = GGUF.F32;
  const kv = [
    [`${arch}.context_length`, U32, cfg.max_position_embeddings ?? 2048],
    [`${arch}.embedding_length`, U32, H],
    [`${arch}.block_count`, U32, f.L],
    [`${arch}.feed_forward_length`, U32, cfg.intermediate_size],
    [`${arch}.attention.head_count`, U32, NH],
    [`${arch}.rope.freq_base`, F32, cfg.rope_theta ?? 10000],
    [`${arch}.attention.layer_norm_rms_epsilon`, F32, cfg.rms_norm_eps ?? 1e-6],
    [`${arch}.vocab_size`, U32, cfg.vocab_size],
    [`${arch}.expert_count`, U32, f.experts],
    [`${arch}.expert_used_count`, U32, f.topK],
    [`${arch}.expert_feed_forward_length`, U32, f.width],
    [`${arch}.expert_gating_func`, U32, f.sigmoid ? 2 : 1],
    [`${arch}.rope.dimension_count`, U32, f.rotaryDim],
  ];
  if (f.nGroup > 1) {
    kv.push([`${arch}.expert_group_count`, U32, f.nGroup], [`${arch}.expert_group_used_count`, U32, f.topkGroup]);
  }
  if (arch === 'deepseek2' || arch === 'glm4moe') {
    kv.push([`${arch}.leading_dense_block_count`, U32, cfg.first_k_dense_replace ?? 0],
      [`${arch}.expert_shared_count`, U32, f.shared],
      [`${arch}.expert_weights_scale`, F32, f.scale]);
    if (f.normTopk) kv.push([`${arch}.expert_weights_norm`, GGUF.BOOL, true]);
  }
  if (f.mla) {
    const kvr = cfg.kv_lora_rank, rope = cfg.qk_rope_head_dim;
    kv.push([`${arch}.attention.head_count_kv`, U32, 1],
      [`${arch}.attention.q_lora_rank`, U32, cfg.q_lora_rank ?? 0],
      [`${arch}.attention.kv_lora_rank`, U32, kvr],
      [`${arch}.attention.key_length`, U32, kvr + rope],
      [`${arch}.attention.value_length`, U32, kvr],
      [`${arch}.attention.key_length_mla`, U32, cfg.qk_nope_head_dim + rope],
      [`${arch}.attention.value_length_mla`, U32, cfg.v_head_dim]);
  } else {
    kv.push([`${arch}.attention.head_count_kv`, U32, NKV],
      [`${arch}.attention.key_length`, U32, D],
      [`${arch}.attention.value_length`, U32, D]);
  }
  const rs = cfg.rope_scaling;
  const ropeType = rs ? (rs.rope_type ?? rs.type) : null;
  if (ropeType === 'yarn') {
    kv.push([`${arch}.rope.scaling.type`, GGUF.STRING, 'yarn'],
      [`${arch}.rope.scaling.factor`, F32, rs.factor],
      [`${arch}.rope.scaling.original_context_length`, U32, rs.original_max_position_embeddings ?? cfg.max_position_embeddings]);
    if (rs.beta_fast != null) kv.push([`${arch}.rope.scaling.yarn_beta_fast`, F32, rs.beta_fast]);
    if (rs.beta_slow != null) kv.push([`${arch}.rope.scaling.yarn_beta_slow`, F32, rs.beta_slow]);
    if (rs.attention_factor != null) kv.push([`${arch}.rope.scaling.yarn_attn_factor`, F32, rs.attention_factor]);
    // deepseek2's legacy convention (TAG_DEEPSEEK2_YARN_LOG_MUL_FIX): 0.1 * mscale_all_dim.
    if (arch === 'deepseek2' && rs.mscale_all_dim != null) kv.push([`${arch}.rope.scaling.yarn_log_multiplier`, F32, 0.1 * rs.mscale_all_dim]);
  } else if (ropeType && ropeType !== 'default') {
    throw new Error(`${configPath}: rope_scaling type ${ropeType} is not converted for ${arch}`);
  }
  return { arch, kv };
}

// mlp() named the shared expert's tensors ffn_{gate,up,down}.weight; llama.cpp calls them *_shexp.
function renameShared(tensors, b) {
  for (const t of tensors.slice(-3)) t.name = t.name.replace(/^(blk\.\d+\.ffn_(gate|up|down))\.weight$/, '$1_shexp.weight');
}
