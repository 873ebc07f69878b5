"""A job from request to result: its options, the pipeline notebook helpers, batch runs, the demo, progress."""
