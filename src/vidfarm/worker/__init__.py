"""What runs on a worker beside ComfyUI: model download at start, the token proxy, the idle watchdog."""
