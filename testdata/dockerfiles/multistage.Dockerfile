ARG PYTHON=3.12
ARG BASE=python:${PYTHON}-slim

FROM --platform=$BUILDPLATFORM ${BASE} AS builder
ARG TARGETARCH
WORKDIR /build
COPY requirements.txt .
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir \
        -r requirements.txt
COPY [ "src/", "/build/src/" ]

FROM ${BASE}
LABEL org.opencontainers.image.source="https://example.com/app" \
      maintainer="team@example.com"
RUN groupadd -r app && useradd -r -g app -d /app app
COPY --from=builder --chown=app:app /opt/venv /opt/venv
COPY --from=builder --chmod=0755 /build/src /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1
EXPOSE 8000/tcp
VOLUME ["/data"]
USER app
WORKDIR /app
HEALTHCHECK --interval=30s --timeout=3s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://localhost:8000/health')"
STOPSIGNAL SIGINT
ENTRYPOINT ["python", "-m", "app"]
CMD ["--port", "8000"]
