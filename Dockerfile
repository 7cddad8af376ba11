# Multi-stage build of the QKD module on node:20-slim, running as a non-root user.
# Configure with QKDM_* environment variables (no file edits needed); secrets via *_FILE.
FROM node:20-slim AS build
WORKDIR /app
# better-sqlite3 builds from source when no prebuilt binary matches.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json tsconfig.json ./
COPY src ./src
COPY scripts ./scripts
COPY bench ./bench
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

FROM node:20-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
RUN groupadd --system qkdm && useradd --system --gid qkdm --home /app qkdm \
 && mkdir -p /app/data && chown qkdm:qkdm /app/data
COPY --from=build --chown=qkdm:qkdm /app/node_modules ./node_modules
COPY --from=build --chown=qkdm:qkdm /app/dist ./dist
COPY --chown=qkdm:qkdm package.json configM.yaml ./
COPY --chown=qkdm:qkdm sql ./sql
USER qkdm
ENV QKDM_MODULE_DATA_DIR=/app/data
VOLUME ["/app/data"]
EXPOSE 5000
CMD ["node", "dist/src/main.js", "--config", "configM.yaml"]
