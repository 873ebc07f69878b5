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

ARG COMFYUI_TAG=v0.3.75
ARG COMFYUI_COMMIT=""
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    VIDFARM_COMFY_DIR=/opt/comfyui \
    VIDFARM_BASE_DIR=/workspace/comfy \
    VIDFARM_PYTHON=/opt/vidfarm/venv/bin/python \
    VIDFARM_COMFY_PORT=8188 \
    VIDFARM_PUBLIC_PORT=8288 \
    VIDFARM_IDLE_SHUTDOWN_S=1800

RUN apt-get update \
 && apt-get install -y --no-install-recommends git curl ca-certificates ffmpeg tini \
 && rm -rf /var/lib/apt/lists/*

# ComfyUI at a pinned tag (and commit, when given), in a venv that reuses the image's CUDA torch.
RUN git clone --depth 1 --branch "${COMFYUI_TAG}" https://github.com/comfyanonymous/ComfyUI /opt/comfyui/comfyui \
 && if [ -n "${COMFYUI_COMMIT}" ]; then test "$(git -C /opt/comfyui/comfyui rev-parse HEAD)" = "${COMFYUI_COMMIT}"; fi \
 && python -m venv --system-site-packages /opt/comfyui/venv \
 && grep -v -x -e torch -e torchvision -e torchaudio /opt/comfyui/comfyui/requirements.txt > /tmp/req.txt \
 && /opt/comfyui/venv/bin/pip install -r /tmp/req.txt requests websocket-client av

# The vidfarm core in its own small venv (no Jupyter on a worker): model fetcher, token proxy, watchdog.
COPY pyproject.toml README.md /opt/vidfarm/src-root/
COPY src /opt/vidfarm/src-root/src
RUN python -m venv /opt/vidfarm/venv \
 && /opt/vidfarm/venv/bin/pip install "aiohttp>=3.9" "huggingface_hub>=2.4" "requests>=2.31" \
        "websocket-client>=1.7" "av>=12" "pillow>=10" \
 && /opt/vidfarm/venv/bin/pip install --no-deps /opt/vidfarm/src-root

# The node pack, the workflows (their declarations list the models) and the start-up script.
COPY custom_nodes/vidfarm /opt/vidfarm/custom_nodes/vidfarm
COPY workflows /opt/vidfarm/workflows
COPY scripts/worker-start /opt/vidfarm/scripts/worker-start
RUN ln -s /opt/vidfarm/custom_nodes/vidfarm /opt/comfyui/comfyui/custom_nodes/vidfarm

EXPOSE 8288
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["/opt/vidfarm/scripts/worker-start"]
