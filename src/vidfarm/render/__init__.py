"""Rendering a long video: the plan, the dispatcher that runs its tasks on workers, joins and continuity."""
