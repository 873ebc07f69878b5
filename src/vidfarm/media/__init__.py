"""Media files: decode and upload checks, joins and previews, tiling geometry, VR metadata."""
