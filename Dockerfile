# syntax=docker/dockerfile:1
# The service's image: `serve` by default (the API on port 8000); the same image runs
# `cloud-image-service worker` and `init` (docker-compose.yml; ECS: docs/deploy.md).
# Checked offline by deploy/check.sh (checkov, dockerfile framework).

# Build: install the package and its locked dependencies into a virtualenv.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
# .dockerignore lets in only pyproject.toml, constraints.txt, README.md and src/.
COPY . .
RUN /opt/venv/bin/pip install -c constraints.txt .

# Runtime: the virtualenv only, no sources, no build tools, not root.
FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# Numeric, so that orchestrators can verify "non-root" (Kubernetes runAsNonRoot).
USER 10001:10001
EXPOSE 8000
# Liveness only (/health calls no store); slim has no curl, so Python's urllib.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"]
CMD ["cloud-image-service", "serve", "--host", "0.0.0.0", "--port", "8000"]
