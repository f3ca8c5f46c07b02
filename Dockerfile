# The HQ console: built with npm from package-lock.json into bot/console/static.
FROM node:20-slim AS console
WORKDIR /src/console
COPY console/package.json console/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY console ./
RUN npm run build

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY --from=console /src/bot/console/static ./bot/console/static
COPY handlers ./handlers
COPY sop ./sop
RUN pip install . && useradd --create-home --uid 10001 assistant && mkdir -p /data && chown assistant /data

USER assistant
WORKDIR /data
EXPOSE 8080
# No HEALTHCHECK here: the same image runs workers, which serve no HTTP. docker-compose.yml gives
# the web services theirs (GET /healthz).
CMD ["wecom-assistant", "serve"]
