# ---- builder: the project's wheel plus wheels of all its dependencies ------
FROM python:3.11-slim AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /src

# Only what the wheel is built from (see [tool.hatch.build] in pyproject.toml):
# the two packages and the data the wheel carries in gateway/_data/.
COPY pyproject.toml README.md ./
COPY gateway/ gateway/
COPY adapters/ adapters/
COPY schemas/ schemas/
COPY contracts/ contracts/
COPY config/ config/

RUN pip wheel --wheel-dir /wheels .

# ---- runtime -----------------------------------------------------------------
FROM python:3.11-slim

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# A fixed, unprivileged user (numeric, so orchestrators can verify runAsNonRoot).
RUN groupadd --system --gid 10001 vtgw \
 && useradd --system --uid 10001 --gid vtgw --home-dir /var/lib/vt-gateway \
            --create-home --shell /usr/sbin/nologin vtgw

# COPY rather than a BuildKit bind mount, so that the legacy builder (docker-compose
# v1) builds this file too; the wheels are a few MB.
COPY --from=builder /wheels /tmp/wheels
RUN pip install --no-index --find-links=/tmp/wheels vt-gateway \
 && rm -rf /tmp/wheels

# Default settings; mount your own file over /etc/vt-gateway/gateway.toml.
COPY config/ /etc/vt-gateway/

USER 10001:10001
WORKDIR /var/lib/vt-gateway

EXPOSE 8080

# The HTTP side serves /healthz on port 8080 (bind 0.0.0.0 in the container: deploy/gateway.toml).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; r = urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4); sys.exit(0 if r.status == 200 else 1)"]

ENTRYPOINT ["vt-gateway"]
CMD ["run", "--config", "/etc/vt-gateway/gateway.toml"]
