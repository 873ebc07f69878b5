# syntax=docker/dockerfile:1.7
# The rented GPU worker: pinned ComfyUI + the vidfarm node pack + the vidfarm core (model fetcher, token proxy,
# watchdog). Models are NOT baked in: scripts/worker-start downloads what $VIDFARM_WORKFLOWS declares at start.
#
#   docker build -f docker/worker.Dockerfile -t ghcr.io/YOU/vidfarm-worker:0.1 .
#   docker push ghcr.io/YOU/vidfarm-worker:0.1        # then VIDFARM_WORKER_IMAGE=ghcr.io/YOU/vidfarm-worker:0.1
#
# Only port 8288 (the token proxy) is published; ComfyUI listens on 127.0.0.1:8188 inside the container.
ARG BASE_IMAGE=pytorch/pytorch:2.7.1-cuda12.8-cudnn9-runtime
FROM ${BASE_IMAGE}

ARG COMFYUI_TAG=v0.45.2
ARG COMFYUI_COMMIT=""
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    VIDFARM_COMFY_DIR=/opt/comfyui \
    VIDFARM_BASE_DIR=/workspace/comfy \
    VIDFARM_PYTHON=/opt/comfyui/venv/bin/python \
    VIDFARM_COMFY_PORT=8188 \
    VIDFARM_PUBLIC_PORT=8288 \
    VIDFARM_IDLE_SHUTDOWN_S=1800

RUN apt-get update \
 && apt-get install -y --no-install-recommends git curl ca-certificates ffmpeg tini \
 && rm -rf /var/lib/apt/lists/*

# One venv for ComfyUI, the node pack and the vidfarm core (token proxy, model fetcher, watchdog): the same
# scripts/install-worker the tests run. --system-site-packages reuses the base image's CUDA torch.
COPY pyproject.toml README.md /opt/vidfarm/
COPY src /opt/vidfarm/src
COPY service /opt/vidfarm/service
COPY custom_nodes/vidfarm /opt/vidfarm/custom_nodes/vidfarm
COPY workflows /opt/vidfarm/workflows
COPY scripts/install-worker scripts/check-node-pack scripts/comfyui.tag scripts/worker-start /opt/vidfarm/scripts/
RUN /opt/vidfarm/scripts/install-worker /opt/comfyui --tag "${COMFYUI_TAG}" --commit "${COMFYUI_COMMIT}" \
        --system-site-packages --no-check
# The build fails here when the pack does not import or a Vidfarm* node is missing from its node list.
RUN /opt/comfyui/venv/bin/python /opt/vidfarm/scripts/check-node-pack /opt/comfyui/comfyui /opt/comfyui/custom_nodes/vidfarm

EXPOSE 8288
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["/opt/vidfarm/scripts/worker-start"]
