// The mixture-of-experts configs of the llama.cpp conformance check: several per family, at odd
// sizes (expert counts not powers of two, GQA ratios, partial rotary widths), covering groups,
// shared experts, leading dense layers, q-LoRA on and off, YaRN, and unnormalised routing weights.
// `moe` names the family, `overrides` are config.json keys over moe_checkpoint.mjs's defaults. MoE
// rows are held to 1e-4 relative (the bar). `brokenRoutingCheck`: the float64 reference
// with a deliberately wrong group score must disagree with llama.cpp (and sparkstack), showing the
// check would catch a routing bug. Vocabularies stay above 259 entries: the GGUF's dummy vocabulary
// needs its 256 byte tokens, or llama.cpp fails to load it.

export const MOE_REL_TOL = 1e-4;

export const MOE_CONFIGS = [
  { name: 'qwen3moe-e7k3', moe: 'qwen3_moe', seed: 31, promptLen: 37,
    overrides: { hidden_size: 80, num_attention_heads: 5, num_key_value_heads: 1, head_dim: 16, vocab_size: 313,
      num_experts: 7, num_experts_per_tok: 3, moe_intermediate_size: 24, intermediate_size: 120 } },
  { name: 'qwen3moe-e5k1', moe: 'qwen3_moe', seed: 32,
    overrides: { hidden_size: 48, num_attention_heads: 3, num_key_value_heads: 3, head_dim: 16, num_hidden_layers: 3,
      vocab_size: 269, num_experts: 5, num_experts_per_tok: 1, moe_intermediate_size: 40 } },
  { name: 'deepseek-groups-qlora', moe: 'deepseek_v3', seed: 33, promptLen: 37, brokenRoutingCheck: true,
    overrides: { vocab_size: 301, n_routed_experts: 12, n_group: 4, topk_group: 2, num_experts_per_tok: 4 } },
  { name: 'deepseek-no-qlora', moe: 'deepseek_v3', seed: 34,
    overrides: { q_lora_rank: null, hidden_size: 56, num_attention_heads: 3, num_key_value_heads: 3, n_routed_experts: 9,
      n_group: 3, topk_group: 2, num_experts_per_tok: 5, n_shared_experts: 2, first_k_dense_replace: 0,
      num_hidden_layers: 2, qk_nope_head_dim: 24, qk_rope_head_dim: 8, v_head_dim: 20, kv_lora_rank: 48,
      vocab_size: 263 } },
  { name: 'deepseek-yarn', moe: 'deepseek_v3', seed: 35, promptLen: 37,
    overrides: { max_position_embeddings: 128, vocab_size: 271, routed_scaling_factor: 1.7, norm_topk_prob: false,
      n_group: 1, topk_group: 1,
      rope_scaling: { type: 'yarn', factor: 8, original_max_position_embeddings: 16, beta_fast: 32, beta_slow: 1,
        mscale: 0.707, mscale_all_dim: 0.707 } } },
  { name: 'glm4moe-shared-dense', moe: 'glm4_moe', seed: 36, promptLen: 37,
    overrides: { vocab_size: 331 } },
  { name: 'glm4moe-groups-no-qknorm', moe: 'glm4_moe', seed: 37,
    overrides: { use_qk_norm: false, n_routed_experts: 10, n_group: 5, topk_group: 2, num_experts_per_tok: 3,
      n_shared_experts: 2, first_k_dense_replace: 2, num_hidden_layers: 3, partial_rotary_factor: 0.375,
      hidden_size: 72, num_attention_heads: 6, num_key_value_heads: 2, head_dim: 16, vocab_size: 277 } },
  { name: 'minimax-m2', moe: 'minimax_m2', seed: 38, promptLen: 37,
    overrides: { vocab_size: 311 } },
  { name: 'minimax-m2-e9k4', moe: 'minimax_m2', seed: 39,
    overrides: { hidden_size: 96, num_attention_heads: 6, num_key_value_heads: 2, head_dim: 24, rotary_dim: 12,
      num_local_experts: 9, num_experts_per_tok: 4, intermediate_size: 40, num_hidden_layers: 3, vocab_size: 283 } },
];
