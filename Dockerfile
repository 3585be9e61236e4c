# toolgate worker / approval API image. The same image runs either role:
#   docker run ... toolgate node --import tsx src/cli/main.ts worker
#   docker run ... toolgate node --import tsx src/cli/main.ts api
# TypeScript runs through tsx (a devDependency), so dev dependencies are installed too.
FROM node:24-bookworm-slim

WORKDIR /app

# Install scripts are skipped: the `node` devDependency would download a second Node binary (the
# image already has one), and esbuild / @swc/core find their platform binaries through their
# optional dependencies without them.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund \
  && rm -f node_modules/.bin/node \
  && npm cache clean --force

COPY tsconfig.json ./
COPY bin ./bin
COPY src ./src
COPY workflows ./workflows
COPY activities ./activities
COPY policies ./policies

# State (keys, local files) lives under .toolgate; the non-root user must own it.
RUN mkdir -p /app/.toolgate && chown -R node:node /app/.toolgate

ENV NODE_ENV=production \
    TOOLGATE_POLICY=/app/policies \
    TOOLGATE_STATE_DIR=/app/.toolgate

USER node

CMD ["node", "--import", "tsx", "src/cli/main.ts", "worker"]
