"""The phone: a FastAPI + Telegram service that runs the pipeline notebook for every request."""
