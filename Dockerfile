# Production image: one stateless Tornado node running `collab serve`.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY setup.cfg pyproject.toml README.md ./
COPY core core
COPY server server
COPY handlers handlers
COPY bus bus
COPY live live
COPY models models
COPY services services
COPY ops ops
# Pango and fonts: WeasyPrint prints the PDF export with them.
RUN apt-get update && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 \
    fonts-dejavu-core && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir ".[sentry]" && useradd --system --uid 10001 collab
USER collab
EXPOSE 8000
# No debug mode exists to switch off: `collab serve` never enables Tornado's debug/autoreload.
# `collab serve` refuses to start without DATABASE_URL, NATS_URL, REDIS_URL, COLLAB_JWT_SECRET.
CMD ["collab", "serve", "--host", "0.0.0.0", "--port", "8000", "--no-migrate"]
