FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY api api
COPY worker worker
COPY ledger_core ledger_core
COPY ledgerflow ledgerflow
COPY benchmarks benchmarks
RUN pip install --no-cache-dir .
ENV LEDGERFLOW_PARTITIONS=16
CMD ["ledgerflow", "serve", "--host", "0.0.0.0", "--port", "8000"]
