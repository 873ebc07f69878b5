# syntax=docker/dockerfile:1.7
# The master: JupyterLab + papermill + the service + a head ComfyUI (CPU or a small GPU) with the node pack.
#   docker compose up -d       (see docker-compose.yml and docs/deploy.md)
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 VIDFARM_COMFY_DIR=/opt/comfyui VIDFARM_COMFY_SOURCE=auto
RUN apt-get update \
 && apt-get install -y --no-install-recommends git curl ca-certificates ffmpeg tini \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /srv/vidfarm
COPY . /srv/vidfarm
RUN scripts/setup && rm -rf /root/.cache/pip
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD [".venv/bin/jupyter", "lab", "--ip=0.0.0.0", "--port=8888", "--no-browser", "--allow-root", "notebooks/"]
