FROM python:3.11-slim
# The service runs as a dedicated system user with a fixed uid and gid (10001), so that
# volume permissions and orchestrator policies (Kubernetes' runAsNonRoot needs a numeric
# USER) can name it. It owns nothing in the image: the code stays root's and read-only to
# it, because the service writes only to PostgreSQL and Redis.
RUN groupadd --system --gid 10001 ledgerflow \
    && useradd --system --uid 10001 --gid ledgerflow --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin ledgerflow
WORKDIR /app
COPY pyproject.toml README.md ./
COPY api api
COPY worker worker
COPY runtime runtime
COPY ledger_core ledger_core
COPY ledgerflow ledgerflow
COPY benchmarks benchmarks
RUN pip install --no-cache-dir .
ENV LEDGERFLOW_PARTITIONS=16
USER 10001:10001
CMD ["ledgerflow", "serve", "--host", "0.0.0.0", "--port", "8000"]
