# syntax=docker/dockerfile:1.10
FROM ghcr.io/astral-sh/uv:0.13.4 AS uv
FROM python:3.12-slim-bookworm


USER root


# uv for the later steps
COPY --from=uv /uv /usr/bin/uv

ARG VIRTUALENV=/opt/venv
ARG UV_PYTHON=$VIRTUALENV/bin/python

ENV UV_COMPILE_BYTECODE=1    UV_LINK_MODE=copy    VIRTUALENV=$VIRTUALENV    UV_PYTHON=$UV_PYTHON

RUN if [ ! -f "$UV_PYTHON" ]; then        uv venv $VIRTUALENV --python=3.12 && uv run --python=$UV_PYTHON python -m compileall $VIRTUALENV;    fi

ENV PATH="$VIRTUALENV/bin:$PATH"

RUN --mount=type=cache,sharing=locked,mode=0777,target=/var/cache/apt,id=apt        apt-get update && apt-get install -y --no-install-recommends    curl git
RUN --mount=type=cache,sharing=locked,mode=0777,target=/root/.cache/uv,id=uv    --mount=type=bind,target=uv.lock,src=proj/uv.lock,rw    --mount=type=bind,target=pyproject.toml,src=proj/pyproject.toml            VIRTUAL_ENV=${VIRTUAL_ENV-/opt/venv} uv sync --active --inexact  --no-install-project
RUN --mount=type=secret,id=7889420643531928051,env=MYTOKEN cat /etc/flyte/secrets/x || true
COPY --chown=flyte:flyte ./src /root/src
WORKDIR /root
ENV PYTHONPATH=/root/src:$PYTHONPATH
USER flyte
WORKDIR /home/flyte
