#!/usr/bin/env bash
# Serve one chat model for ragent with vLLM's OpenAI-compatible server.
#
#   MODEL=Qwen/Qwen2.5-7B-Instruct deploy/vllm/serve.sh          # the large tier (default)
#   MODEL=Qwen/Qwen2.5-1.5B-Instruct PORT=8001 deploy/vllm/serve.sh  # the small tier
#
# Every flag is explained in deploy/vllm/README.md. Needs vllm on a machine with a GPU and
# the model's weights (downloaded on first start into $HF_HOME, or already there).
set -euo pipefail

MODEL="${MODEL:-Qwen/Qwen2.5-7B-Instruct}"
PORT="${PORT:-8000}"
MAX_MODEL_LEN="${MAX_MODEL_LEN:-32768}"          # = llm.context_window in app/configs/production.yaml
GPU_MEMORY_UTILIZATION="${GPU_MEMORY_UTILIZATION:-0.90}"
TOOL_CALL_PARSER="${TOOL_CALL_PARSER:-hermes}"   # Qwen2.5 emits Hermes-style <tool_call> blocks
TENSOR_PARALLEL_SIZE="${TENSOR_PARALLEL_SIZE:-1}"

args=(
    serve "$MODEL"
    --host 0.0.0.0
    --port "$PORT"
    --served-model-name "$MODEL"
    --max-model-len "$MAX_MODEL_LEN"
    --gpu-memory-utilization "$GPU_MEMORY_UTILIZATION"
    --tensor-parallel-size "$TENSOR_PARALLEL_SIZE"
    --enable-prefix-caching
    --enable-auto-tool-choice
    --tool-call-parser "$TOOL_CALL_PARSER"
    --generation-config vllm
)
if [[ -n "${VLLM_API_KEY:-}" ]]; then
    args+=(--api-key "$VLLM_API_KEY")  # then set RAGENT_LLM_API_KEY to the same value
fi
exec vllm "${args[@]}" "$@"
